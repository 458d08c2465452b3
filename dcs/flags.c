/* etcd-style flag and ETCD_* environment parsing for appliance-dcs (see flags.h). */
#include "dcs/flags.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char dcs_flags_usage[] =
    "usage: appliance-dcs [flags]   (each flag also as ETCD_<NAME> in the environment)\n"
    "  --name NAME                          member name (default \"default\")\n"
    "  --data-dir DIR                       data directory (default NAME.etcd)\n"
    "  --initial-cluster N1=URL,N2=URL      initial members and their peer URLs\n"
    "  --initial-cluster-token TOKEN        cluster token (default \"etcd-cluster\")\n"
    "  --initial-cluster-state new|existing (default new)\n"
    "  --listen-client-urls URLS            (default http://localhost:2379)\n"
    "  --advertise-client-urls URLS         (default http://localhost:2379)\n"
    "  --listen-peer-urls URLS              (default http://localhost:2380)\n"
    "  --initial-advertise-peer-urls URLS   (default http://localhost:2380)\n"
    "  --heartbeat-interval MS              (default 100)\n"
    "  --election-timeout MS                (default 1000)\n"
    "  --enable-v2[=true|false]             serve the v2 keys API (default false)\n"
    "  --snapshot-count N                   applied entries between snapshots (default "
    "10000)\n"
    "  --auto-compaction-mode revision|periodic  (default revision)\n"
    "  --auto-compaction-retention N|DURATION    revisions to keep (revision mode, default\n"
    "                                       1000) or history age (periodic: 1h, 30m, 90s, a\n"
    "                                       bare number is hours; default 1h); 0 = off\n";

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

uint64_t dcs_member_id(const char *name, const char *peer_url, const char *token)
{
    uint64_t h = 1469598103934665603ull;
    const char *parts[3] = {name, peer_url, token};
    for (int i = 0; i < 3; i++) {
        for (const unsigned char *p = (const unsigned char *)parts[i]; *p; p++) {
            h ^= *p;
            h *= 1099511628211ull;
        }
        h ^= 0xff; /* separator, so ("ab","c") and ("a","bc") differ */
        h *= 1099511628211ull;
    }
    return h ? h : 1;
}

/* "http://host:port" -> url. Only plain http: the appliance has no TLS on its DCS ports. */
static int parse_url(const char *s, size_t n, dcs_url *u, const char *what, char *err,
                     size_t errlen)
{
    if (n >= sizeof(u->text)) {
        set_err(err, errlen, "%s: URL too long", what);
        return -1;
    }
    memcpy(u->text, s, n);
    u->text[n] = 0;
    const char *p = u->text;
    if (strncmp(p, "https://", 8) == 0 || strncmp(p, "unix", 4) == 0) {
        set_err(err, errlen, "%s: %s: only http:// URLs are supported (no TLS)", what, u->text);
        return -1;
    }
    if (strncmp(p, "http://", 7) != 0) {
        set_err(err, errlen, "%s: %s: URL must start with http://", what, u->text);
        return -1;
    }
    p += 7;
    const char *hs = p, *he;
    if (*p == '[') {
        hs = p + 1;
        he = strchr(hs, ']');
        if (!he || he[1] != ':') {
            set_err(err, errlen, "%s: %s: bad IPv6 address (want http://[addr]:port)", what,
                    u->text);
            return -1;
        }
        p = he + 1;
    } else {
        he = strchr(p, ':');
        if (!he) {
            set_err(err, errlen, "%s: %s: missing port (want http://host:port)", what, u->text);
            return -1;
        }
        p = he;
    }
    size_t hl = (size_t)(he - hs);
    if (hl == 0 || hl >= sizeof(u->host)) {
        set_err(err, errlen, "%s: %s: bad host", what, u->text);
        return -1;
    }
    memcpy(u->host, hs, hl);
    u->host[hl] = 0;
    p++; /* ':' */
    size_t pl = 0;
    while (isdigit((unsigned char)p[pl]))
        pl++;
    const char *rest = p + pl;
    if (*rest == '/' && rest[1] == 0)
        rest++;
    long port = pl && pl < 6 ? strtol(p, NULL, 10) : 0;
    if (*rest != 0 || port < 1 || port > 65535) {
        set_err(err, errlen, "%s: %s: bad port (want http://host:1..65535)", what, u->text);
        return -1;
    }
    memcpy(u->port, p, pl);
    u->port[pl] = 0;
    return 0;
}

static int parse_url_list(const char *v, dcs_url *out, size_t *n, const char *what, char *err,
                          size_t errlen)
{
    *n = 0;
    const char *p = v;
    while (1) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (len == 0) {
            set_err(err, errlen, "%s: empty URL in \"%s\"", what, v);
            return -1;
        }
        if (*n == DCS_MAX_URLS) {
            set_err(err, errlen, "%s: more than %d URLs in \"%s\"", what, DCS_MAX_URLS, v);
            return -1;
        }
        if (parse_url(p, len, &out[*n], what, err, errlen) != 0)
            return -1;
        (*n)++;
        if (!c)
            return 0;
        p = c + 1;
    }
}

static int parse_cluster(dcs_flags *f, const char *v, char *err, size_t errlen)
{
    f->nmembers = 0;
    const char *p = v;
    while (1) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (!eq || eq == p) {
            set_err(err, errlen, "--initial-cluster: \"%.*s\" is not NAME=URL", (int)len, p);
            return -1;
        }
        size_t nl = (size_t)(eq - p);
        /* etcd allows a member to list several peer URLs (one NAME=URL item each); we
         * keep the first and accept the repeats */
        size_t k;
        for (k = 0; k < f->nmembers; k++)
            if (strlen(f->members[k].name) == nl && memcmp(f->members[k].name, p, nl) == 0)
                break;
        if (k == f->nmembers) {
            if (f->nmembers == DCS_MAX_MEMBERS) {
                set_err(err, errlen, "--initial-cluster: more than %d members", DCS_MAX_MEMBERS);
                return -1;
            }
            dcs_member_cfg *m = &f->members[f->nmembers];
            if (nl >= sizeof(m->name)) {
                set_err(err, errlen, "--initial-cluster: member name too long");
                return -1;
            }
            memcpy(m->name, p, nl);
            m->name[nl] = 0;
            if (parse_url(eq + 1, len - nl - 1, &m->peer, "--initial-cluster", err, errlen) != 0)
                return -1;
            f->nmembers++;
        } else {
            dcs_url tmp;
            if (parse_url(eq + 1, len - nl - 1, &tmp, "--initial-cluster", err, errlen) != 0)
                return -1;
        }
        if (!c)
            return 0;
        p = c + 1;
    }
}

int dcs_url_parse(const char *s, dcs_url *u, const char *what, char *err, size_t errlen)
{
    return parse_url(s, strlen(s), u, what, err, errlen);
}

static int parse_u32(const char *flag, const char *v, uint32_t min, uint32_t max, uint32_t *out,
                     char *err, size_t errlen)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (!isdigit((unsigned char)*v) || *end || errno || x < min || x > max) {
        set_err(err, errlen, "%s: invalid value \"%s\" (want an integer in %u..%u)", flag, v, min,
                max);
        return -1;
    }
    *out = (uint32_t)x;
    return 0;
}

/* etcd's periodic retention: a Go-style duration ("1h30m", "90s", "500ms") or a bare
 * integer meaning hours. */
static int parse_retention_ms(const char *flag, const char *v, uint64_t *out, char *err,
                              size_t errlen)
{
    const uint64_t max = 10ull * 365 * 24 * 3600 * 1000;
    uint64_t total = 0;
    const char *p = v;
    bool bare = true;
    for (const char *q = v; *q; q++)
        if (!isdigit((unsigned char)*q))
            bare = false;
    if (bare && *v) {
        uint32_t h;
        if (parse_u32(flag, v, 0, 87600, &h, err, errlen) != 0)
            return -1;
        *out = (uint64_t)h * 3600 * 1000;
        return 0;
    }
    while (*p) {
        char *end;
        errno = 0;
        unsigned long long x = strtoull(p, &end, 10);
        if (!isdigit((unsigned char)*p) || errno || x > max)
            goto bad;
        uint64_t unit;
        if (strncmp(end, "ms", 2) == 0) {
            unit = 1;
            end += 2;
        } else if (*end == 'h' || *end == 'm' || *end == 's') {
            unit = *end == 'h' ? 3600000 : *end == 'm' ? 60000 : 1000;
            end++;
        } else {
            goto bad;
        }
        if (x > (max - total) / unit)
            goto bad;
        total += x * unit;
        p = end;
    }
    if (!*v)
        goto bad;
    *out = total;
    return 0;
bad:
    set_err(err, errlen,
            "%s: invalid value \"%s\" (want a duration such as 1h, 30m, 90s or a number of "
            "hours)",
            flag, v);
    return -1;
}

static int parse_bool(const char *flag, const char *v, bool *out, char *err, size_t errlen)
{
    /* Go's strconv.ParseBool, as etcd's flag package accepts */
    static const char *const t[] = {"1", "t", "T", "true", "TRUE", "True"};
    static const char *const fl[] = {"0", "f", "F", "false", "FALSE", "False"};
    for (size_t i = 0; i < 6; i++) {
        if (strcmp(v, t[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcmp(v, fl[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    set_err(err, errlen, "%s: invalid boolean value \"%s\"", flag, v);
    return -1;
}

enum flag_id {
    F_NAME,
    F_DATA_DIR,
    F_CLUSTER,
    F_TOKEN,
    F_STATE,
    F_LCLIENT,
    F_ACLIENT,
    F_LPEER,
    F_APEER,
    F_HEARTBEAT,
    F_ELECTION,
    F_V2,
    F_SNAPCOUNT,
    F_ACMODE,
    F_ACRET,
    F_COUNT
};

static const struct {
    const char *flag, *env;
    bool is_bool;
} flag_table[F_COUNT] = {
    [F_NAME] = {"name", "ETCD_NAME", false},
    [F_DATA_DIR] = {"data-dir", "ETCD_DATA_DIR", false},
    [F_CLUSTER] = {"initial-cluster", "ETCD_INITIAL_CLUSTER", false},
    [F_TOKEN] = {"initial-cluster-token", "ETCD_INITIAL_CLUSTER_TOKEN", false},
    [F_STATE] = {"initial-cluster-state", "ETCD_INITIAL_CLUSTER_STATE", false},
    [F_LCLIENT] = {"listen-client-urls", "ETCD_LISTEN_CLIENT_URLS", false},
    [F_ACLIENT] = {"advertise-client-urls", "ETCD_ADVERTISE_CLIENT_URLS", false},
    [F_LPEER] = {"listen-peer-urls", "ETCD_LISTEN_PEER_URLS", false},
    [F_APEER] = {"initial-advertise-peer-urls", "ETCD_INITIAL_ADVERTISE_PEER_URLS", false},
    [F_HEARTBEAT] = {"heartbeat-interval", "ETCD_HEARTBEAT_INTERVAL", false},
    [F_ELECTION] = {"election-timeout", "ETCD_ELECTION_TIMEOUT", false},
    [F_V2] = {"enable-v2", "ETCD_ENABLE_V2", true},
    [F_SNAPCOUNT] = {"snapshot-count", "ETCD_SNAPSHOT_COUNT", false},
    [F_ACMODE] = {"auto-compaction-mode", "ETCD_AUTO_COMPACTION_MODE", false},
    [F_ACRET] = {"auto-compaction-retention", "ETCD_AUTO_COMPACTION_RETENTION", false},
};

static int find_flag(const char *name, size_t n)
{
    for (int i = 0; i < F_COUNT; i++)
        if (strlen(flag_table[i].flag) == n && memcmp(flag_table[i].flag, name, n) == 0)
            return i;
    return -1;
}

static int copy_str(char *dst, size_t cap, const char *flag, const char *v, char *err,
                    size_t errlen)
{
    if (strlen(v) >= cap) {
        set_err(err, errlen, "--%s: value too long", flag);
        return -1;
    }
    strcpy(dst, v);
    return 0;
}

int dcs_flags_parse(dcs_flags *f, int argc, char **argv, char **env, char *err, size_t errlen)
{
    const char *val[F_COUNT] = {0};
    const char *src[F_COUNT] = {0}; /* for error messages: "--name" or "ETCD_NAME" */
    char srcbuf[F_COUNT][64];
    memset(f, 0, sizeof(*f));
    /* environment first, flags override */
    for (char **e = env; e && *e; e++) {
        if (strncmp(*e, "ETCD_", 5) != 0)
            continue;
        const char *eq = strchr(*e, '=');
        if (!eq)
            continue;
        size_t n = (size_t)(eq - *e);
        int k = -1;
        for (int i = 0; i < F_COUNT; i++)
            if (strlen(flag_table[i].env) == n && memcmp(flag_table[i].env, *e, n) == 0)
                k = i;
        if (k < 0) {
            /* etcd refuses unrecognized ETCD_* variables too ("unrecognized environment
             * variable"); ETCDCTL_* belongs to the client and is not ours */
            if (strncmp(*e, "ETCDCTL_", 8) == 0)
                continue;
            set_err(err, errlen, "unrecognized environment variable %.*s", (int)n, *e);
            return -1;
        }
        val[k] = eq + 1;
        src[k] = flag_table[k].env;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0 || strcmp(a, "-help") == 0) {
            set_err(err, errlen, "%s", dcs_flags_usage);
            return 1;
        }
        if (strcmp(a, "--version") == 0 || strcmp(a, "-version") == 0) {
            set_err(err, errlen, "appliance-dcs (etcd API 3.4.23 compatible)\n");
            return 1;
        }
        if (a[0] != '-') {
            set_err(err, errlen, "unexpected argument \"%s\" (flags start with --)", a);
            return -1;
        }
        const char *name = a + 1 + (a[1] == '-');
        const char *eq = strchr(name, '=');
        size_t nl = eq ? (size_t)(eq - name) : strlen(name);
        int k = find_flag(name, nl);
        if (k < 0) {
            set_err(err, errlen, "unknown flag: %.*s", (int)(nl + (size_t)(name - a)), a);
            return -1;
        }
        const char *v;
        if (eq) {
            v = eq + 1;
        } else if (flag_table[k].is_bool) {
            v = "true";
        } else if (i + 1 < argc) {
            v = argv[++i];
        } else {
            set_err(err, errlen, "flag needs an argument: --%s", flag_table[k].flag);
            return -1;
        }
        val[k] = v;
        snprintf(srcbuf[k], sizeof(srcbuf[k]), "--%s", flag_table[k].flag);
        src[k] = srcbuf[k];
    }

    const char *name = val[F_NAME] ? val[F_NAME] : "default";
    if (!*name || copy_str(f->name, sizeof(f->name), "name", name, err, errlen) != 0) {
        if (!*name)
            set_err(err, errlen, "%s: empty member name", src[F_NAME]);
        return -1;
    }
    if (val[F_DATA_DIR]) {
        if (!*val[F_DATA_DIR]) {
            set_err(err, errlen, "%s: empty data directory", src[F_DATA_DIR]);
            return -1;
        }
        if (copy_str(f->data_dir, sizeof(f->data_dir), "data-dir", val[F_DATA_DIR], err, errlen) !=
            0)
            return -1;
    } else {
        snprintf(f->data_dir, sizeof(f->data_dir), "%s.etcd", f->name);
    }
    const char *token = val[F_TOKEN] ? val[F_TOKEN] : "etcd-cluster";
    if (!*token ||
        copy_str(f->token, sizeof(f->token), "initial-cluster-token", token, err, errlen) != 0) {
        if (!*token)
            set_err(err, errlen, "%s: empty cluster token", src[F_TOKEN]);
        return -1;
    }
    const char *state = val[F_STATE] ? val[F_STATE] : "new";
    if (strcmp(state, "new") == 0) {
        f->state_new = true;
    } else if (strcmp(state, "existing") == 0) {
        f->state_new = false;
    } else {
        set_err(err, errlen, "%s: invalid value \"%s\" (want new or existing)", src[F_STATE],
                state);
        return -1;
    }
    const char *def_c = "http://localhost:2379", *def_p = "http://localhost:2380";
#define URLS(id, arr, n, def)                                                                      \
    do {                                                                                           \
        const char *v_ = val[id] ? val[id] : (def);                                                \
        if (parse_url_list(v_, f->arr, &f->n, val[id] ? src[id] : "default URL", err, errlen) !=   \
            0)                                                                                     \
            return -1;                                                                             \
    } while (0)
    URLS(F_LCLIENT, listen_client, nlisten_client, def_c);
    URLS(F_ACLIENT, advertise_client, nadvertise_client, def_c);
    URLS(F_LPEER, listen_peer, nlisten_peer, def_p);
    URLS(F_APEER, advertise_peer, nadvertise_peer, def_p);
#undef URLS
    char defcluster[DCS_MAX_STR * 2];
    snprintf(defcluster, sizeof(defcluster), "%s=%s", f->name, f->advertise_peer[0].text);
    if (parse_cluster(f, val[F_CLUSTER] ? val[F_CLUSTER] : defcluster, err, errlen) != 0)
        return -1;
    f->self = f->nmembers;
    for (size_t i = 0; i < f->nmembers; i++)
        if (strcmp(f->members[i].name, f->name) == 0)
            f->self = i;
    if (f->self == f->nmembers) {
        set_err(err, errlen, "--initial-cluster: member \"%s\" (--name) is not in \"%s\"", f->name,
                val[F_CLUSTER] ? val[F_CLUSTER] : defcluster);
        return -1;
    }
    /* etcd checks that the advertised peer URL of this member matches its entry */
    bool match = false;
    for (size_t i = 0; i < f->nadvertise_peer; i++)
        if (strcmp(f->advertise_peer[i].text, f->members[f->self].peer.text) == 0)
            match = true;
    if (!match) {
        set_err(err, errlen,
                "--initial-cluster has %s=%s but --initial-advertise-peer-urls is %s (they must "
                "match)",
                f->name, f->members[f->self].peer.text, f->advertise_peer[0].text);
        return -1;
    }
    f->heartbeat_ms = 100;
    f->election_ms = 1000;
    if (val[F_HEARTBEAT] &&
        parse_u32(src[F_HEARTBEAT], val[F_HEARTBEAT], 1, 60000, &f->heartbeat_ms, err, errlen) != 0)
        return -1;
    if (val[F_ELECTION] &&
        parse_u32(src[F_ELECTION], val[F_ELECTION], 1, 600000, &f->election_ms, err, errlen) != 0)
        return -1;
    if (f->election_ms < 5 * f->heartbeat_ms) {
        /* etcd's own rule; it also keeps our election timeout >= 5 ticks */
        set_err(err, errlen,
                "--election-timeout (%u) must be at least 5 times --heartbeat-interval (%u)",
                f->election_ms, f->heartbeat_ms);
        return -1;
    }
    if (val[F_V2] && parse_bool(src[F_V2], val[F_V2], &f->enable_v2, err, errlen) != 0)
        return -1;
    f->snapshot_count = 10000;
    if (val[F_SNAPCOUNT]) {
        uint32_t sc;
        if (parse_u32(src[F_SNAPCOUNT], val[F_SNAPCOUNT], 1, 100000000, &sc, err, errlen) != 0)
            return -1;
        f->snapshot_count = sc;
    }
    /* history compaction: on by default (etcd's is off), see flags.h */
    f->compaction_periodic = false;
    if (val[F_ACMODE]) {
        if (strcmp(val[F_ACMODE], "periodic") == 0) {
            f->compaction_periodic = true;
        } else if (strcmp(val[F_ACMODE], "revision") != 0) {
            set_err(err, errlen, "%s: invalid value \"%s\" (want revision or periodic)",
                    src[F_ACMODE], val[F_ACMODE]);
            return -1;
        }
    }
    f->compaction_retention = f->compaction_periodic ? 3600 * 1000 : 1000;
    if (val[F_ACRET]) {
        if (f->compaction_periodic) {
            if (parse_retention_ms(src[F_ACRET], val[F_ACRET], &f->compaction_retention, err,
                                   errlen) != 0)
                return -1;
        } else {
            uint32_t r;
            if (parse_u32(src[F_ACRET], val[F_ACRET], 0, 1000000000, &r, err, errlen) != 0)
                return -1;
            f->compaction_retention = r;
        }
    }
    for (size_t i = 0; i < f->nmembers; i++)
        f->members[i].id = dcs_member_id(f->members[i].name, f->members[i].peer.text, f->token);
    for (size_t i = 0; i < f->nmembers; i++)
        for (size_t j = i + 1; j < f->nmembers; j++)
            if (f->members[i].id == f->members[j].id) {
                set_err(err, errlen, "--initial-cluster: duplicate member %s", f->members[j].name);
                return -1;
            }
    /* cluster ID: the token and the sorted member IDs (etcd hashes the member IDs too) */
    uint64_t ids[DCS_MAX_MEMBERS];
    for (size_t i = 0; i < f->nmembers; i++) {
        ids[i] = f->members[i].id;
        for (size_t j = i; j > 0 && ids[j - 1] > ids[j]; j--) {
            uint64_t t = ids[j];
            ids[j] = ids[j - 1];
            ids[j - 1] = t;
        }
    }
    char idbuf[DCS_MAX_MEMBERS * 17 + 1];
    size_t off = 0;
    for (size_t i = 0; i < f->nmembers; i++)
        off += (size_t)snprintf(idbuf + off, sizeof(idbuf) - off, "%016llx",
                                (unsigned long long)ids[i]);
    idbuf[off] = 0;
    f->cluster_id = dcs_member_id("cluster", idbuf, f->token);
    return 0;
}
