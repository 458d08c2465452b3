/* Router configuration: one table of scalar keys shared by the YAML loader and the
 * ROUTER_* environment, plus the backend list (YAML sequence or ROUTER_BACKENDS). */
#include "router/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

extern char **environ;

/* K_NAME: a backend name or host (letters, digits, . - _ :), non-empty. K_PORT: 1..65535
 * into a uint16_t. K_LIST: dcs.endpoints, parsed by set_dcs_list. */
enum key_type { K_STR, K_U32, K_BOOL, K_ADDR, K_LIST, K_NAME, K_PORT, K_SPLICE, K_FORWARD };

/* One settable key: where its value goes (offset into router_config, or into
 * router_backend_conf for the backend keys) and how it is checked. */
struct key_def {
    const char *key;
    enum key_type type;
    size_t off;
    size_t size;  /* K_STR/K_ADDR/K_NAME: buffer size */
    uint32_t min; /* K_U32 bounds */
    uint32_t max;
};

#define OFF(f) offsetof(router_config, f)
#define SZ(f)  sizeof(((router_config *)0)->f)
#define STR(k, f)                                                                                  \
    {                                                                                              \
        k, K_STR, OFF(f), SZ(f), 0, 0                                                              \
    }
#define ADDR(k, f)                                                                                 \
    {                                                                                              \
        k, K_ADDR, OFF(f), SZ(f), 0, 0                                                             \
    }
#define U32(k, f, lo, hi)                                                                          \
    {                                                                                              \
        k, K_U32, OFF(f), 0, lo, hi                                                                \
    }
#define BOOL(k, f)                                                                                 \
    {                                                                                              \
        k, K_BOOL, OFF(f), 0, 0, 0                                                                 \
    }

static const struct key_def keys[] = {
    STR("scope", scope),
    STR("namespace", namespace_),
    ADDR("listen.primary", listen_primary),
    ADDR("listen.replicas", listen_replicas),
    ADDR("listen.stats", listen_stats),
    BOOL("listen.reuseport", reuseport),
    {"dcs.endpoints", K_LIST, 0, 0, 0, 0},
    U32("dcs.retry_min_ms", dcs_retry_min_ms, 10, 60000),
    U32("dcs.retry_max_ms", dcs_retry_max_ms, 10, 600000),
    U32("dcs.resync_ms", dcs_resync_ms, 100, 3600000),
    U32("dcs.grace_ms", dcs_grace_ms, 0, 3600000),
    U32("checks.interval_ms", check_interval_ms, 10, 600000),
    U32("checks.fast_interval_ms", check_fast_interval_ms, 5, 600000),
    U32("checks.timeout_ms", check_timeout_ms, 10, 600000),
    U32("checks.rise", check_rise, 1, 100),
    U32("checks.fall", check_fall, 1, 100),
    STR("checks.primary_path", primary_check_path),
    BOOL("checks.primary_role", primary_check_role),
    STR("checks.replica_path", replica_check_path),
    U32("limits.max_connections", max_connections, 1, 1000000),
    U32("limits.connect_timeout_ms", connect_timeout_ms, 10, 600000),
    U32("limits.idle_timeout_ms", idle_timeout_ms, 0, 86400000),
    U32("limits.hold_ms", hold_ms, 0, 600000),
    U32("limits.hold_max", hold_max, 0, 1000000),
    U32("limits.buffer_size", buffer_size, 1024, 1048576),
    U32("limits.retries", retries, 0, 10),
    BOOL("limits.connect_on_first_byte", connect_on_first_byte),
    BOOL("replicas.fallback_to_primary", replicas_fallback_to_primary),
    {"data_path.splice", K_SPLICE, OFF(splice), 0, 0, 0},
    {"data_path.forward", K_FORWARD, OFF(forward), 0, 0, 0},
    U32("data_path.loops", loops, 0, ROUTER_MAX_LOOPS),
};

#define BOFF(f) offsetof(router_backend_conf, f)
#define BSZ(f)  sizeof(((router_backend_conf *)0)->f)

static const struct key_def backend_keys[] = {
    {"name", K_NAME, BOFF(name), BSZ(name), 0, 0},
    {"host", K_NAME, BOFF(host), BSZ(host), 0, 0},
    {"check_host", K_NAME, BOFF(check_host), BSZ(check_host), 0, 0},
    {"port", K_PORT, BOFF(port), 0, 1, 65535},
    {"check_port", K_PORT, BOFF(check_port), 0, 1, 65535},
    {"noloadbalance", K_BOOL, BOFF(noloadbalance), 0, 0, 0},
};

/* The enum-valued keys: a name per value, in enum order. */
static const char *const splice_names[] = {"userspace", "pipe", "sockmap", "auto"};
static const char *const forward_names[] = {"proxy", "nat", "auto"};

static const char *name_of(const char *const *names, int n, int v)
{
    return v >= 0 && v < n ? names[v] : "?";
}

static int index_of(const char *const *names, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

const char *router_splice_name(int v)
{
    return name_of(splice_names, ROUTER_SPLICE_AUTO + 1, v);
}

int router_splice_parse(const char *s)
{
    return index_of(splice_names, ROUTER_SPLICE_AUTO + 1, s);
}

const char *router_forward_name(int v)
{
    return name_of(forward_names, ROUTER_FORWARD_AUTO + 1, v);
}

int router_forward_parse(const char *s)
{
    return index_of(forward_names, ROUTER_FORWARD_AUTO + 1, s);
}

static int fail(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errsz, const char *fmt, ...)
{
    if (err && errsz) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errsz, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void router_config_defaults(router_config *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->scope, sizeof(c->scope), "pg-cluster");
    snprintf(c->namespace_, sizeof(c->namespace_), "/service");
    snprintf(c->listen_primary, sizeof(c->listen_primary), "0.0.0.0:5000");
    snprintf(c->listen_replicas, sizeof(c->listen_replicas), "0.0.0.0:5001");
    snprintf(c->listen_stats, sizeof(c->listen_stats), "0.0.0.0:8404");
    c->dcs_retry_min_ms = 100;
    c->dcs_retry_max_ms = 2000;
    c->dcs_resync_ms = 5000;
    c->dcs_grace_ms = 10000;
    /* Faster than HAProxy's inter 3s fall 3 rise 2 (the Patroni template): the DCS watch
     * moves writes at once, these checks are the second opinion and the replica view. */
    c->check_interval_ms = 1000;
    c->check_fast_interval_ms = 25;
    c->check_timeout_ms = 1000;
    c->check_rise = 2;
    c->check_fall = 2;
    c->primary_check_role = 1;
    snprintf(c->primary_check_path, sizeof(c->primary_check_path), "/primary");
    snprintf(c->replica_check_path, sizeof(c->replica_check_path), "/replica");
    c->max_connections = 10000;
    c->connect_timeout_ms = 2000;
    c->idle_timeout_ms = 30u * 60u * 1000u; /* HAProxy template: timeout client/server 30m */
    c->hold_ms = 2000;
    c->hold_max = 1024;
    c->buffer_size = 16384;
    c->retries = 2;
    /* PostgreSQL clients always speak first (startup packet), so waiting for it costs one
     * loopback handshake at most and spares the database connections from port probes
     * and clients that never send anything. */
    c->connect_on_first_byte = 1;
    c->replicas_fallback_to_primary = 1;
    /* User space by default: the kernel path moves the bytes with less CPU, but its TPS on
     * 2 shared cores was worse under CPU contention (bench/router/sockmap-notes.md). */
    c->splice = ROUTER_SPLICE_USERSPACE;
    c->forward = ROUTER_FORWARD_PROXY;
    c->loops = 1;
}

int router_split_hostport(const char *s, char *host, size_t hostsz, uint16_t *port)
{
    const char *colon;
    size_t hlen;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return -1;
        hlen = (size_t)(close - s - 1);
        s++;
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -1;
        hlen = (size_t)(colon - s);
    }
    if (hlen >= hostsz)
        return -1;
    for (size_t i = 0; i < hlen; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr(".-_:%", s[i]))
            return -1;
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    const char *p = colon + 1;
    if (!*p || strlen(p) > 5)
        return -1;
    unsigned long v = 0;
    for (; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return -1;
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (v == 0 || v > 65535)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

static int parse_u32(const char *v, uint32_t *out)
{
    if (!*v || strlen(v) > 10)
        return -1;
    uint64_t x = 0;
    for (const char *p = v; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return -1;
        x = x * 10 + (uint64_t)(*p - '0');
    }
    if (x > UINT32_MAX)
        return -1;
    *out = (uint32_t)x;
    return 0;
}

static int parse_bool(const char *v, int *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0)
            return *out = 1, 0;
        if (strcasecmp(v, no[i]) == 0)
            return *out = 0, 0;
    }
    return -1;
}

static int printable(const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

static int add_dcs_endpoint(router_config *c, const char *v, char *err, size_t errsz)
{
    while (*v == ' ')
        v++;
    if (!*v)
        return 0;
    if (c->n_dcs >= ROUTER_MAX_DCS)
        return fail(err, errsz, "dcs.endpoints: more than %d endpoints", ROUTER_MAX_DCS);
    char url[ROUTER_URL_MAX];
    /* Patroni's etcd3.hosts style "host:port" is accepted and means http://host:port. */
    const char *rest = v;
    if (strncmp(v, "http://", 7) == 0)
        rest = v + 7;
    else if (strstr(v, "://"))
        return fail(err, errsz, "dcs.endpoints: '%s': only http:// is supported", v);
    char host[ROUTER_HOST_MAX];
    uint16_t port;
    size_t rl = strcspn(rest, "/");
    char hp[ROUTER_ADDR_MAX];
    if (rl >= sizeof(hp) || (rest[rl] && strcmp(rest + rl, "/") != 0))
        return fail(err, errsz, "dcs.endpoints: '%s' is not http://host:port", v);
    memcpy(hp, rest, rl);
    hp[rl] = '\0';
    if (router_split_hostport(hp, host, sizeof(host), &port) < 0)
        return fail(err, errsz, "dcs.endpoints: '%s' is not http://host:port", v);
    snprintf(url, sizeof(url), "http://%s", hp);
    memcpy(c->dcs_endpoints[c->n_dcs++], url, sizeof(url));
    return 0;
}

/* A comma/space separated list replaces the current endpoints. */
static int set_dcs_list(router_config *c, const char *v, char *err, size_t errsz)
{
    char buf[ROUTER_URL_MAX * ROUTER_MAX_DCS];
    if (strlen(v) >= sizeof(buf))
        return fail(err, errsz, "dcs.endpoints: value too long");
    snprintf(buf, sizeof(buf), "%s", v);
    c->n_dcs = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save))
        if (add_dcs_endpoint(c, tok, err, errsz) < 0)
            return -1;
    return 0;
}

static const struct key_def *find_key(const struct key_def *table, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(table[i].key, key) == 0)
            return &table[i];
    return NULL;
}

/* Checks value against k and stores it at base + k->off. label names the key in errors
 * ("checks.rise", "backends[1].port"). */
static int set_field(void *base, const struct key_def *k, const char *label, const char *value,
                     char *err, size_t errsz)
{
    char *field = (char *)base + k->off;
    if (!printable(value))
        return fail(err, errsz, "%s: value contains control characters", label);
    switch (k->type) {
    case K_STR:
        if (strlen(value) >= k->size)
            return fail(err, errsz, "%s: '%s' is longer than %zu bytes", label, value, k->size - 1);
        break;
    case K_ADDR: {
        char host[ROUTER_HOST_MAX];
        uint16_t port;
        if (value[0] && router_split_hostport(value, host, sizeof(host), &port) < 0)
            return fail(err, errsz, "%s: '%s' is not host:port (port 1-65535)", label, value);
        if (strlen(value) >= k->size)
            return fail(err, errsz, "%s: '%s' is too long", label, value);
        break;
    }
    case K_NAME:
        if (!*value || strlen(value) >= k->size)
            return fail(err, errsz, "%s: '%s' is empty or too long", label, value);
        for (const char *p = value; *p; p++)
            if (!isalnum((unsigned char)*p) && !strchr(".-_:", *p))
                return fail(err, errsz, "%s: '%s' has a bad character", label, value);
        break;
    case K_U32:
    case K_PORT: {
        uint32_t v;
        if (parse_u32(value, &v) < 0 || (k->type == K_PORT && (v < k->min || v > k->max)))
            return fail(err, errsz,
                        k->type == K_PORT ? "%s: '%s' is not a port (1-65535)"
                                          : "%s: '%s' is not a non-negative integer",
                        label, value);
        if (v < k->min || v > k->max)
            return fail(err, errsz, "%s: %u is outside %u..%u", label, v, k->min, k->max);
        if (k->type == K_PORT) {
            uint16_t p16 = (uint16_t)v;
            memcpy(field, &p16, sizeof(p16));
        } else {
            memcpy(field, &v, sizeof(v));
        }
        return 0;
    }
    case K_BOOL: {
        int b;
        if (parse_bool(value, &b) < 0)
            return fail(err, errsz, "%s: '%s' is not a boolean (true/false)", label, value);
        memcpy(field, &b, sizeof(b));
        return 0;
    }
    case K_SPLICE: {
        int b, v = router_splice_parse(value);
        if (v < 0 && parse_bool(value, &b) == 0) /* the boolean of earlier versions */
            v = b ? ROUTER_SPLICE_PIPE : ROUTER_SPLICE_USERSPACE;
        if (v < 0)
            return fail(err, errsz, "%s: '%s' is not one of auto, sockmap, userspace, pipe", label,
                        value);
        memcpy(field, &v, sizeof(v));
        return 0;
    }
    case K_FORWARD: {
        int v = router_forward_parse(value);
        if (v < 0)
            return fail(err, errsz, "%s: '%s' is not one of proxy, nat, auto", label, value);
        memcpy(field, &v, sizeof(v));
        return 0;
    }
    case K_LIST:
        return fail(err, errsz, "%s: not a scalar key", label);
    }
    snprintf(field, k->size, "%s", value); /* the string kinds, checked above */
    return 0;
}

int router_config_set(router_config *c, const char *key, const char *value, char *err, size_t errsz)
{
    const struct key_def *k = find_key(keys, sizeof(keys) / sizeof(keys[0]), key);
    if (!k)
        return fail(err, errsz, "unknown key '%s'", key);
    if (k->type == K_LIST) {
        if (!printable(value))
            return fail(err, errsz, "%s: value contains control characters", key);
        return set_dcs_list(c, value, err, errsz);
    }
    return set_field(c, k, key, value, err, errsz);
}

/* ---- backends ---- */

static int backend_set(router_backend_conf *b, const char *key, const char *v, char *err,
                       size_t errsz, size_t idx)
{
    const struct key_def *k =
        find_key(backend_keys, sizeof(backend_keys) / sizeof(backend_keys[0]), key);
    if (!k)
        return fail(err, errsz, "backends[%zu]: unknown key '%s'", idx, key);
    char label[ROUTER_NAME_MAX];
    snprintf(label, sizeof(label), "backends[%zu].%s", idx, key);
    return set_field(b, k, label, v, err, errsz);
}

/* Adds " (line N)" to an error from a YAML value, room permitting. */
static int at_line(char *err, size_t errsz, unsigned long line)
{
    size_t l = strlen(err);
    if (l + 16 < errsz)
        snprintf(err + l, errsz - l, " (line %lu)", line);
    return -1;
}

/* ROUTER_BACKENDS="pg-0=127.0.20.10:5432:8008,pg-1=host:5432:8008[:noloadbalance]" */
static int set_backends_env(router_config *c, const char *v, char *err, size_t errsz)
{
    char buf[4096];
    if (strlen(v) >= sizeof(buf))
        return fail(err, errsz, "ROUTER_BACKENDS: value too long");
    snprintf(buf, sizeof(buf), "%s", v);
    c->n_backends = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        if (c->n_backends >= ROUTER_MAX_BACKENDS)
            return fail(err, errsz, "ROUTER_BACKENDS: more than %d backends", ROUTER_MAX_BACKENDS);
        size_t idx = c->n_backends;
        router_backend_conf *b = &c->backends[idx];
        memset(b, 0, sizeof(*b));
        char *eq = strchr(tok, '=');
        char *f[4] = {0};
        size_t nf = 0;
        if (!eq)
            return fail(err, errsz, "ROUTER_BACKENDS: '%s' is not name=host:port:check_port", tok);
        *eq = '\0';
        char *save2 = NULL;
        for (char *p = strtok_r(eq + 1, ":", &save2); p && nf < 4; p = strtok_r(NULL, ":", &save2))
            f[nf++] = p;
        if (nf < 3 || (nf == 4 && strcmp(f[3], "noloadbalance") != 0))
            return fail(err, errsz, "ROUTER_BACKENDS: '%s' is not name=host:port:check_port", tok);
        if (backend_set(b, "name", tok, err, errsz, idx) < 0 ||
            backend_set(b, "host", f[0], err, errsz, idx) < 0 ||
            backend_set(b, "port", f[1], err, errsz, idx) < 0 ||
            backend_set(b, "check_port", f[2], err, errsz, idx) < 0)
            return -1;
        b->noloadbalance = nf == 4;
        c->n_backends++;
    }
    return 0;
}

/* ---- YAML ---- */

static const char *scalar(yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int yaml_backends(router_config *c, yaml_document_t *doc, yaml_node_t *seq, char *err,
                         size_t errsz)
{
    if (seq->type != YAML_SEQUENCE_NODE)
        return fail(err, errsz, "backends: expected a list (line %lu)",
                    (unsigned long)seq->start_mark.line + 1);
    c->n_backends = 0;
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top;
         it++) {
        yaml_node_t *m = yaml_document_get_node(doc, *it);
        if (c->n_backends >= ROUTER_MAX_BACKENDS)
            return fail(err, errsz, "backends: more than %d entries", ROUTER_MAX_BACKENDS);
        size_t idx = c->n_backends;
        if (!m || m->type != YAML_MAPPING_NODE)
            return fail(err, errsz, "backends[%zu]: expected a mapping (line %lu)", idx,
                        m ? (unsigned long)m->start_mark.line + 1 : 0UL);
        router_backend_conf *b = &c->backends[idx];
        memset(b, 0, sizeof(*b));
        for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top;
             p++) {
            yaml_node_t *kn = yaml_document_get_node(doc, p->key);
            yaml_node_t *vn = yaml_document_get_node(doc, p->value);
            const char *k = scalar(kn), *v = scalar(vn);
            if (!k || !v)
                return fail(err, errsz, "backends[%zu]: keys and values must be scalars (line %lu)",
                            idx, kn ? (unsigned long)kn->start_mark.line + 1 : 0UL);
            if (backend_set(b, k, v, err, errsz, idx) < 0)
                return at_line(err, errsz, (unsigned long)vn->start_mark.line + 1);
        }
        c->n_backends++;
    }
    return 0;
}

static int yaml_walk(router_config *c, yaml_document_t *doc, yaml_node_t *map, const char *prefix,
                     int depth, char *err, size_t errsz)
{
    if (map->type != YAML_MAPPING_NODE)
        return fail(err, errsz, "%s: expected a mapping (line %lu)", *prefix ? prefix : "top level",
                    (unsigned long)map->start_mark.line + 1);
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *kn = yaml_document_get_node(doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(doc, p->value);
        const char *k = scalar(kn);
        if (!k || !vn)
            return fail(err, errsz, "non-scalar key (line %lu)",
                        kn ? (unsigned long)kn->start_mark.line + 1 : 0UL);
        char full[128];
        if ((size_t)snprintf(full, sizeof(full), "%s%s%s", prefix, *prefix ? "." : "", k) >=
            sizeof(full))
            return fail(err, errsz, "key '%s.%s' too long", prefix, k);
        unsigned long line = (unsigned long)vn->start_mark.line + 1;
        if (depth == 0 && strcmp(k, "backends") == 0) {
            if (yaml_backends(c, doc, vn, err, errsz) < 0)
                return -1;
            continue;
        }
        if (strcmp(full, "dcs.endpoints") == 0 && vn->type == YAML_SEQUENCE_NODE) {
            c->n_dcs = 0;
            for (yaml_node_item_t *it = vn->data.sequence.items.start;
                 it < vn->data.sequence.items.top; it++) {
                const char *v = scalar(yaml_document_get_node(doc, *it));
                if (!v)
                    return fail(err, errsz, "dcs.endpoints: entries must be strings (line %lu)",
                                line);
                if (add_dcs_endpoint(c, v, err, errsz) < 0)
                    return -1;
            }
            continue;
        }
        if (vn->type == YAML_MAPPING_NODE) {
            if (depth >= 1)
                return fail(err, errsz, "%s: unexpected nested mapping (line %lu)", full, line);
            if (yaml_walk(c, doc, vn, full, depth + 1, err, errsz) < 0)
                return -1;
            continue;
        }
        const char *v = scalar(vn);
        if (!v)
            return fail(err, errsz, "%s: expected a scalar value (line %lu)", full, line);
        if (router_config_set(c, full, v, err, errsz) < 0)
            return at_line(err, errsz, line);
    }
    return 0;
}

int router_config_load_yaml(router_config *c, const char *yaml, size_t len, char *err, size_t errsz)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser))
        return fail(err, errsz, "yaml: out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    if (!yaml_parser_load(&parser, &doc)) {
        fail(err, errsz, "yaml: %s at line %lu column %lu",
             parser.problem ? parser.problem : "syntax error",
             (unsigned long)parser.problem_mark.line + 1,
             (unsigned long)parser.problem_mark.column + 1);
        yaml_parser_delete(&parser);
        return -1;
    }
    int rc = 0;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root) /* an empty file is an empty config */
        rc = yaml_walk(c, &doc, root, "", 0, err, errsz);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}

static int apply_env(router_config *c, char *const *envp, char *err, size_t errsz)
{
    for (char *const *e = envp; e && *e; e++) {
        if (strncmp(*e, "ROUTER_", 7) != 0)
            continue;
        const char *eq = strchr(*e, '=');
        if (!eq)
            continue;
        size_t nlen = (size_t)(eq - *e);
        const char *val = eq + 1;
        if (nlen == 15 && strncmp(*e, "ROUTER_BACKENDS", 15) == 0) {
            if (set_backends_env(c, val, err, errsz) < 0)
                return -1;
            continue;
        }
        if (nlen == 13 && strncmp(*e, "ROUTER_CONFIG", 13) == 0)
            continue; /* the file path itself, read by main */
        int matched = 0;
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]) && !matched; i++) {
            char envname[96] = "ROUTER_";
            size_t j = 7;
            for (const char *k = keys[i].key; *k && j + 1 < sizeof(envname); k++)
                envname[j++] = *k == '.' ? '_' : (char)toupper((unsigned char)*k);
            envname[j] = '\0';
            if (strlen(envname) != nlen || strncmp(envname, *e, nlen) != 0)
                continue;
            matched = 1;
            if (router_config_set(c, keys[i].key, val, err, errsz) < 0) {
                char tmp[ROUTER_ERR_MAX];
                snprintf(tmp, sizeof(tmp), "%s", err);
                return fail(err, errsz, "%s (from environment %s)", tmp, envname);
            }
        }
        /* Unknown ROUTER_* names are ignored: the container env is shared with other
         * tools; a typo still shows up in the effective config printed at start. */
    }
    return 0;
}

int router_config_validate(const router_config *c, char *err, size_t errsz)
{
    if (c->n_backends == 0)
        return fail(err, errsz, "backends: at least one backend is required");
    for (size_t i = 0; i < c->n_backends; i++) {
        const router_backend_conf *b = &c->backends[i];
        if (!b->name[0] || !b->host[0] || !b->port || !b->check_port)
            return fail(err, errsz, "backends[%zu]: name, host, port and check_port are required",
                        i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->backends[j].name, b->name) == 0)
                return fail(err, errsz, "backends[%zu].name: '%s' is used twice", i, b->name);
    }
    if (!c->scope[0])
        return fail(err, errsz, "scope: must not be empty");
    if (c->namespace_[0] != '/')
        return fail(err, errsz, "namespace: '%s' must start with /", c->namespace_);
    const char *paths[][2] = {{"checks.primary_path", c->primary_check_path},
                              {"checks.replica_path", c->replica_check_path}};
    for (size_t i = 0; i < 2; i++) {
        if (paths[i][1][0] != '/')
            return fail(err, errsz, "%s: '%s' must start with /", paths[i][0], paths[i][1]);
        if (strchr(paths[i][1], ' '))
            return fail(err, errsz, "%s: must not contain spaces", paths[i][0]);
    }
    if (c->dcs_retry_min_ms > c->dcs_retry_max_ms)
        return fail(err, errsz, "dcs.retry_min_ms (%u) is above dcs.retry_max_ms (%u)",
                    c->dcs_retry_min_ms, c->dcs_retry_max_ms);
    if (c->listen_primary[0] && strcmp(c->listen_primary, c->listen_replicas) == 0)
        return fail(err, errsz, "listen.primary and listen.replicas are both '%s'",
                    c->listen_primary);
    if (!c->listen_primary[0] && !c->listen_replicas[0])
        return fail(err, errsz, "listen: both proxy listeners are disabled");
    return 0;
}

int router_config_load(router_config *c, const char *path, char *const *envp, char *err,
                       size_t errsz)
{
    router_config_defaults(c);
    if (path && *path) {
        FILE *f = fopen(path, "rb");
        if (!f)
            return fail(err, errsz, "%s: %s", path, strerror(errno));
        enum { MAX_CONFIG = 256 * 1024 };
        char *buf = malloc(MAX_CONFIG + 1);
        if (!buf) {
            fclose(f);
            return fail(err, errsz, "out of memory");
        }
        size_t n = fread(buf, 1, MAX_CONFIG + 1, f);
        int rerr = ferror(f);
        fclose(f);
        if (rerr || n > MAX_CONFIG) {
            free(buf);
            return fail(err, errsz, "%s: %s", path, rerr ? "read error" : "larger than 256 KiB");
        }
        char tmp[ROUTER_ERR_MAX];
        int rc = router_config_load_yaml(c, buf, n, tmp, sizeof(tmp));
        free(buf);
        if (rc < 0)
            return fail(err, errsz, "%s: %s", path, tmp);
    }
    if (apply_env(c, envp ? envp : environ, err, errsz) < 0)
        return -1;
    return router_config_validate(c, err, errsz);
}
