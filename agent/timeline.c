/* Timeline history parsing and the divergence decision (pure; see timeline.h). */
#include "agent/timeline.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void seterr(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errsz, const char *fmt, ...)
{
    if (!err || errsz == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
}

void tl_format_lsn(int64_t lsn, char *out, size_t outsz)
{
    uint64_t v = (uint64_t)lsn;
    snprintf(out, outsz, "%" PRIX64 "/%" PRIX64, v >> 32, v & 0xFFFFFFFFu);
}

/* Unsigned number in base 10 or 16 from p[0..end); at most maxval. Returns the first byte
 * after the digits, or NULL when there is no digit or it overflows. */
static const char *number(const char *p, const char *end, int base, uint64_t maxval, uint64_t *out)
{
    uint64_t v = 0;
    const char *s = p;
    for (; p < end; p++) {
        unsigned d;
        if (*p >= '0' && *p <= '9')
            d = (unsigned)(*p - '0');
        else if (base == 16 && *p >= 'A' && *p <= 'F')
            d = (unsigned)(*p - 'A' + 10);
        else if (base == 16 && *p >= 'a' && *p <= 'f')
            d = (unsigned)(*p - 'a' + 10);
        else
            break;
        if (v > (maxval - d) / (uint64_t)base)
            return NULL;
        v = v * (uint64_t)base + d;
    }
    if (p == s)
        return NULL;
    *out = v;
    return p;
}

/* A short, printable excerpt of a bad line for the error message. */
static void excerpt(const char *p, const char *end, char *out, size_t outsz)
{
    size_t o = 0;
    for (; p < end && o + 1 < outsz && o < 40; p++)
        out[o++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
    out[o] = '\0';
}

int tl_history_parse(const char *text, size_t len, tl_switch *out, size_t max, size_t *n, char *err,
                     size_t errsz)
{
    *n = 0;
    if (!text) {
        seterr(err, errsz, "timeline history: no content");
        return -1;
    }
    const char *p = text, *stop = text + len;
    int lineno = 0, prev_tl = 0;
    while (p < stop) {
        const char *eol = memchr(p, '\n', (size_t)(stop - p));
        const char *line_end = eol ? eol : stop;
        lineno++;
        const char *q = p;
        while (q < line_end && (*q == ' ' || *q == '\t' || *q == '\r'))
            q++;
        char ex[48];
        if (q == line_end || *q == '#') { /* blank line or comment */
            p = eol ? eol + 1 : stop;
            continue;
        }
        uint64_t tl, hi, lo;
        const char *r = number(q, line_end, 10, 0x7fffffff, &tl);
        if (!r || tl == 0 || (r < line_end && *r != '\t' && *r != ' ')) {
            excerpt(q, line_end, ex, sizeof(ex));
            seterr(err, errsz, "timeline history line %d: expected a timeline ID, got \"%s\"",
                   lineno, ex);
            return -1;
        }
        while (r < line_end && (*r == '\t' || *r == ' '))
            r++;
        const char *s = number(r, line_end, 16, 0xFFFFFFFFu, &hi);
        if (s && s < line_end && *s == '/')
            s = number(s + 1, line_end, 16, 0xFFFFFFFFu, &lo);
        else
            s = NULL;
        if (!s || (s < line_end && *s != '\t' && *s != ' ' && *s != '\r')) {
            excerpt(q, line_end, ex, sizeof(ex));
            seterr(err, errsz,
                   "timeline history line %d: expected a switchpoint location X/X after the "
                   "timeline ID, got \"%s\"",
                   lineno, ex);
            return -1;
        }
        if ((int)tl <= prev_tl) {
            seterr(err, errsz,
                   "timeline history line %d: timeline %d does not follow timeline %d (IDs must "
                   "increase)",
                   lineno, (int)tl, prev_tl);
            return -1;
        }
        if (*n >= max) {
            seterr(err, errsz, "timeline history: more than %zu timelines", max);
            return -1;
        }
        out[*n].parent_tl = (int)tl;
        out[*n].switchpoint = (int64_t)((hi << 32) | lo);
        (*n)++;
        prev_tl = (int)tl;
        p = eol ? eol + 1 : stop;
    }
    return 0;
}

enum tl_verdict tl_diverged(const tl_switch *h, size_t n, int leader_tl, const tl_position *me,
                            int64_t *switchpoint, char *why, size_t whysz)
{
    *switchpoint = -1;
    char mine[24], sp[24];
    if (!me || me->timeline <= 0 || me->lsn < 0 || leader_tl <= 0 || (n > 0 && !h)) {
        seterr(why, whysz, "no usable position or timeline to compare");
        return TL_INVALID;
    }
    tl_format_lsn(me->lsn, mine, sizeof(mine));
    const char *what = me->in_recovery ? "position" : "checkpoint";
    if (me->timeline > leader_tl) {
        seterr(why, whysz, "my timeline %d is newer than the leader's timeline %d (%s %s)",
               me->timeline, leader_tl, what, mine);
        return TL_DIVERGED;
    }
    if (me->timeline == leader_tl) {
        seterr(why, whysz, "same timeline %d as the leader (%s %s)", me->timeline, what, mine);
        return TL_NOT_DIVERGED;
    }
    for (size_t i = 0; i < n; i++) {
        if (h[i].parent_tl > leader_tl - 1) {
            seterr(why, whysz, "the leader's history for timeline %d names timeline %d", leader_tl,
                   h[i].parent_tl);
            return TL_INVALID;
        }
        if (h[i].parent_tl == me->timeline) {
            *switchpoint = h[i].switchpoint;
            tl_format_lsn(h[i].switchpoint, sp, sizeof(sp));
            int past = me->in_recovery ? me->lsn > h[i].switchpoint : me->lsn >= h[i].switchpoint;
            seterr(why, whysz,
                   "timeline %d forked off into timeline %d at %s; my %s on timeline %d is %s "
                   "(%s the switchpoint; leader on timeline %d)",
                   me->timeline, i + 1 < n ? h[i + 1].parent_tl : leader_tl, sp, what, me->timeline,
                   mine, past ? "past" : "not past", leader_tl);
            return past ? TL_DIVERGED : TL_NOT_DIVERGED;
        }
        if (h[i].parent_tl > me->timeline) {
            seterr(why, whysz,
                   "my timeline %d is not in the leader's history (it went from timeline %d to "
                   "%d; leader on timeline %d; my %s %s)",
                   me->timeline, i > 0 ? h[i - 1].parent_tl : 0, h[i].parent_tl, leader_tl, what,
                   mine);
            return TL_DIVERGED;
        }
    }
    if (n == 0) {
        seterr(why, whysz, "the leader on timeline %d sent an empty history", leader_tl);
        return TL_INVALID;
    }
    seterr(why, whysz,
           "my timeline %d is not in the leader's history (last switch from timeline %d; leader "
           "on timeline %d; my %s %s)",
           me->timeline, h[n - 1].parent_tl, leader_tl, what, mine);
    return TL_DIVERGED;
}
