/* Line-oriented parse of pg_controldata's "Label:   value" output. */
#include "agent/controldata.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t controldata_lsn(const char *s)
{
    char *end;
    unsigned long long hi = strtoull(s, &end, 16);
    if (end == s || *end != '/' || hi > 0xFFFFFFFFull)
        return -1;
    const char *lo_s = end + 1;
    unsigned long long lo = strtoull(lo_s, &end, 16);
    if (end == lo_s || (*end && *end != '\n' && *end != ' ') || lo > 0xFFFFFFFFull)
        return -1;
    return (int64_t)((hi << 32) | lo);
}

/* value of "label:" at the start of a line, copied into out (trimmed); 0 found */
static int field(const char *text, const char *label, char *out, size_t outsz)
{
    size_t ll = strlen(label);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, label, ll) != 0 || p[ll] != ':')
            continue;
        const char *v = p + ll + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        size_t n = strcspn(v, "\n");
        while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\r'))
            n--;
        if (n >= outsz)
            return -1;
        memcpy(out, v, n);
        out[n] = '\0';
        return 0;
    }
    return -1;
}

int controldata_parse(const char *text, pg_controldata *out)
{
    memset(out, 0, sizeof(*out));
    char buf[64];
    int bad = 0;
    if (field(text, "Database system identifier", out->sysid, sizeof(out->sysid)) != 0 ||
        !out->sysid[0] || strspn(out->sysid, "0123456789") != strlen(out->sysid))
        bad = 1;
    if (field(text, "Database cluster state", out->state, sizeof(out->state)) != 0)
        bad = 1;
    if (field(text, "Latest checkpoint location", buf, sizeof(buf)) != 0 ||
        (out->checkpoint_lsn = controldata_lsn(buf)) < 0)
        bad = 1;
    if (field(text, "Latest checkpoint's TimeLineID", buf, sizeof(buf)) != 0) {
        bad = 1;
    } else {
        char *end;
        long tl = strtol(buf, &end, 10);
        if (end == buf || *end || tl <= 0 || tl > 0x7fffffffL)
            bad = 1;
        else
            out->timeline = (int)tl;
    }
    /* optional (older pg_controldata output may lack them); malformed counts as absent */
    out->min_recovery_lsn = -1;
    if (field(text, "Minimum recovery ending location", buf, sizeof(buf)) == 0)
        out->min_recovery_lsn = controldata_lsn(buf);
    if (field(text, "Min recovery ending loc's timeline", buf, sizeof(buf)) == 0) {
        char *end;
        long tl = strtol(buf, &end, 10);
        if (end != buf && !*end && tl >= 0 && tl <= 0x7fffffffL)
            out->min_recovery_timeline = (int)tl;
    }
    return bad ? -1 : 0;
}

int controldata_was_primary(const pg_controldata *c)
{
    return strcmp(c->state, "in production") == 0 || strcmp(c->state, "shut down") == 0;
}
