/* Config loading: YAML -> JSON tree -> env overrides on the tree -> typed struct. Working on
 * one tree keeps the override rules (Patroni, Spilo) independent of the field extraction,
 * and lets error messages name the same dotted key path the user wrote. */
#include "agent/config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/yaml_json.h"
#include "base64.h"

#define CONFIG_MAX_BYTES ((size_t)1 << 20)

static void seterr(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errsz, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
}

/* Renders a JSON value for an error message, shortened. */
static void value_text(const json_t *v, char *out, size_t outsz)
{
    if (!v) {
        snprintf(out, outsz, "(missing)");
        return;
    }
    if (json_is_string(v)) {
        snprintf(out, outsz, "'%.100s'", json_string_value(v));
        return;
    }
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    snprintf(out, outsz, "%.100s", s ? s : "?");
    free(s);
}

/* Walks "a.b.c"; returns borrowed node or NULL. */
static json_t *path_get(json_t *root, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    json_t *cur = root;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ".", &save); tok && cur; tok = strtok_r(NULL, ".", &save)) {
        if (!json_is_object(cur))
            return NULL;
        cur = json_object_get(cur, tok);
    }
    return cur;
}

/* Sets "a.b.c" = v (steals v), creating objects on the way. */
static int path_set(json_t *root, const char *path, json_t *v)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    json_t *cur = root;
    char *save = NULL;
    char *tok = strtok_r(buf, ".", &save);
    while (tok) {
        char *next = strtok_r(NULL, ".", &save);
        if (!next)
            return json_object_set_new(cur, tok, v);
        json_t *child = json_object_get(cur, tok);
        if (!json_is_object(child)) {
            child = json_object();
            json_object_set_new(cur, tok, child);
        }
        cur = child;
        tok = next;
    }
    json_decref(v);
    return -1;
}

static const char *env_get(char *const *envp, const char *name)
{
    size_t n = strlen(name);
    for (char *const *e = envp; e && *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

/* Secret from NAME, or from the file named by NAME_FILE (first line, no newline). */
static int env_secret(char *const *envp, const char *name, char *out, size_t outsz, char *err,
                      size_t errsz)
{
    const char *v = env_get(envp, name);
    if (v) {
        snprintf(out, outsz, "%s", v);
        return 1;
    }
    char fname[128];
    snprintf(fname, sizeof(fname), "%s_FILE", name);
    const char *path = env_get(envp, fname);
    if (!path)
        return 0;
    FILE *f = fopen(path, "re");
    if (!f) {
        seterr(err, errsz, "%s: cannot read '%s': %s", fname, path, strerror(errno));
        return -1;
    }
    if (!fgets(out, (int)outsz, f))
        out[0] = '\0';
    fclose(f);
    out[strcspn(out, "\r\n")] = '\0';
    return 1;
}

/* Plain overrides: env name -> key path, value typed as a YAML plain scalar for numbers
 * and booleans only where the key expects them (strings stay strings). */
/* Environment overrides. `spilo`: one of Spilo's names, which Spilo renders into its config
 * template, so they sit UNDER SPILO_CONFIGURATION/PATRONI_CONFIGURATION; Patroni's own
 * PATRONI_* names are applied by Patroni on top of whatever file it gets, so they win over
 * everything (load order in agent_config_load_text). */
static const struct {
    const char *env;
    const char *path;
    int spilo;
} plain_overrides[] = {
    {"SCOPE", "scope", 1},
    {"PGUSER_SUPERUSER", "postgresql.authentication.superuser.username", 1},
    {"PGUSER_STANDBY", "postgresql.authentication.replication.username", 1},
    {"PATRONI_SCOPE", "scope", 0},
    {"PATRONI_NAME", "name", 0},
    {"PATRONI_NAMESPACE", "namespace", 0},
    {"PATRONI_RESTAPI_LISTEN", "restapi.listen", 0},
    {"PATRONI_RESTAPI_CONNECT_ADDRESS", "restapi.connect_address", 0},
    {"PATRONI_RESTAPI_USERNAME", "restapi.authentication.username", 0},
    {"PATRONI_POSTGRESQL_LISTEN", "postgresql.listen", 0},
    {"PATRONI_POSTGRESQL_CONNECT_ADDRESS", "postgresql.connect_address", 0},
    {"PATRONI_POSTGRESQL_DATA_DIR", "postgresql.data_dir", 0},
    {"PATRONI_POSTGRESQL_BIN_DIR", "postgresql.bin_dir", 0},
    {"PATRONI_POSTGRESQL_PGPASS", "postgresql.pgpass", 0},
    {"PATRONI_SUPERUSER_USERNAME", "postgresql.authentication.superuser.username", 0},
    {"PATRONI_REPLICATION_USERNAME", "postgresql.authentication.replication.username", 0},
    {"PATRONI_REWIND_USERNAME", "postgresql.authentication.rewind.username", 0},
};

static const struct {
    const char *env;
    const char *path;
    int spilo;
} secret_overrides[] = {
    {"PGPASSWORD_SUPERUSER", "postgresql.authentication.superuser.password", 1},
    {"PGPASSWORD_STANDBY", "postgresql.authentication.replication.password", 1},
    {"PATRONI_RESTAPI_PASSWORD", "restapi.authentication.password", 0},
    {"PATRONI_SUPERUSER_PASSWORD", "postgresql.authentication.superuser.password", 0},
    {"PATRONI_REPLICATION_PASSWORD", "postgresql.authentication.replication.password", 0},
    {"PATRONI_REWIND_PASSWORD", "postgresql.authentication.rewind.password", 0},
};

/* ETCD3_HOSTS / PATRONI_ETCD3_HOSTS: "h1:2379,h2:2379", a YAML list, or Spilo's quoted
 * form '"h1:2379","h2:2379"'. Parsed as YAML flow list like Spilo does. */
static int apply_hosts_env(json_t *root, const char *name, const char *val, char *err, size_t errsz)
{
    char buf[4096];
    if (val[0] == '[')
        snprintf(buf, sizeof(buf), "%s", val);
    else
        snprintf(buf, sizeof(buf), "[%s]", val);
    char yerr[256];
    json_t *list = yaml_to_json(buf, strlen(buf), yerr, sizeof(yerr));
    if (!json_is_array(list)) {
        seterr(err, errsz, "%s: cannot parse host list '%.200s': %s", name, val,
               list ? "not a list" : yerr);
        json_decref(list);
        return -1;
    }
    path_set(root, "etcd3.hosts", list);
    return 0;
}

/* NAME or NAME_FILE is set */
static int env_secret_set(char *const *envp, const char *name)
{
    char fname[128];
    snprintf(fname, sizeof(fname), "%s_FILE", name);
    return env_get(envp, name) || env_get(envp, fname);
}

/* Applies the Spilo-named (spilo = 1) or the Patroni-named (spilo = 0) overrides. */
static int apply_env(json_t *root, char *const *envp, int spilo, char *err, size_t errsz)
{
    for (size_t i = 0; i < sizeof(plain_overrides) / sizeof(plain_overrides[0]); i++) {
        const char *v = env_get(envp, plain_overrides[i].env);
        if (v && plain_overrides[i].spilo == spilo)
            path_set(root, plain_overrides[i].path, json_string(v));
    }
    for (size_t i = 0; i < sizeof(secret_overrides) / sizeof(secret_overrides[0]); i++) {
        if (secret_overrides[i].spilo != spilo)
            continue;
        char val[256];
        int r = env_secret(envp, secret_overrides[i].env, val, sizeof(val), err, errsz);
        if (r < 0)
            return -1;
        if (r > 0)
            path_set(root, secret_overrides[i].path, json_string(val));
    }
    const char *name = spilo ? "ETCD3_HOSTS" : "PATRONI_ETCD3_HOSTS";
    const char *h = env_get(envp, name);
    if (h && apply_hosts_env(root, name, h, err, errsz) != 0)
        return -1;
    return 0;
}

/* The environment variable whose value ended up at key path `path` (Patroni's names win,
 * then the YAML in SPILO_CONFIGURATION/PATRONI_CONFIGURATION, then Spilo's names, as in
 * agent_config_load_text), or NULL when the value came from the YAML file. Used to say in
 * an error message where a bad value came from. */
static const char *env_source(char *const *envp, const char *path, json_t *env_yaml,
                              const char *env_yaml_var)
{
    for (int spilo = 0; spilo <= 1; spilo++) {
        if (spilo && env_yaml && path_get(env_yaml, path))
            return env_yaml_var;
        const char *src = NULL;
        for (size_t i = 0; i < sizeof(plain_overrides) / sizeof(plain_overrides[0]); i++)
            if (plain_overrides[i].spilo == spilo && strcmp(plain_overrides[i].path, path) == 0 &&
                env_get(envp, plain_overrides[i].env))
                src = plain_overrides[i].env;
        for (size_t i = 0; i < sizeof(secret_overrides) / sizeof(secret_overrides[0]); i++)
            if (secret_overrides[i].spilo == spilo && strcmp(secret_overrides[i].path, path) == 0 &&
                env_secret_set(envp, secret_overrides[i].env))
                src = secret_overrides[i].env;
        const char *hosts = spilo ? "ETCD3_HOSTS" : "PATRONI_ETCD3_HOSTS";
        if (strcmp(path, "etcd3.hosts") == 0 && env_get(envp, hosts))
            src = hosts;
        if (src)
            return src;
    }
    return NULL;
}

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "a mapping";
    case JSON_ARRAY:
        return "a list";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

/* SPILO_CONFIGURATION / PATRONI_CONFIGURATION merged into the file's tree the way Spilo's
 * deep_update(user, template) does, with one deliberate difference:
 * - mappings are merged key by key, recursively;
 * - a scalar from the environment replaces the file's value; null keeps the file's value
 *   (Spilo: `a if a is not None else b`);
 * - a list from the environment REPLACES the file's list. Spilo appends the template's
 *   entries that the user's list lacks; we do not, because then a shipped entry could never
 *   be taken away (e.g. the permissive `host all all 0.0.0.0/0` pg_hba line of the
 *   container configs), and the user's entries come first in both cases anyway.
 * - a mapping where the file has a scalar or list (or the reverse) is an error naming the
 *   variable and the key: Spilo would silently keep the user's value and Patroni fail later
 *   with a message about some other key. */
static int merge_env_yaml(json_t *dst, json_t *src, const char *var, const char *prefix, char *err,
                          size_t errsz)
{
    const char *k;
    json_t *v;
    json_object_foreach(src, k, v)
    {
        char path[256];
        snprintf(path, sizeof(path), "%s%s%s", prefix, prefix[0] ? "." : "", k);
        json_t *cur = json_object_get(dst, k);
        if (json_is_null(v)) {
            if (!cur)
                json_object_set(dst, k, v);
            continue;
        }
        if (cur && !json_is_null(cur) && json_is_object(cur) != json_is_object(v)) {
            seterr(err, errsz, "%s: %s: expected %s (as in the config file), got %s", var, path,
                   json_kind(cur), json_kind(v));
            return -1;
        }
        if (json_is_object(v) && json_is_object(cur)) {
            if (merge_env_yaml(cur, v, var, path, err, errsz) != 0)
                return -1;
        } else {
            json_object_set(dst, k, v);
        }
    }
    return 0;
}

/* ---- typed extraction ---- */

static int get_str(json_t *root, const char *path, char *out, size_t outsz, const char *def,
                   char *err, size_t errsz)
{
    json_t *v = path_get(root, path);
    if (!v || json_is_null(v)) {
        if (!def) {
            seterr(err, errsz, "%s: required key is missing", path);
            return -1;
        }
        snprintf(out, outsz, "%s", def);
        return 0;
    }
    char tmp[64];
    const char *s;
    if (json_is_string(v)) {
        s = json_string_value(v);
    } else if (json_is_integer(v)) {
        snprintf(tmp, sizeof(tmp), "%lld", (long long)json_integer_value(v));
        s = tmp; /* e.g. name: 1 */
    } else {
        char vt[128];
        value_text(v, vt, sizeof(vt));
        seterr(err, errsz, "%s: expected a string, got %s", path, vt);
        return -1;
    }
    if (strlen(s) >= outsz) {
        seterr(err, errsz, "%s: value longer than %zu bytes", path, outsz - 1);
        return -1;
    }
    snprintf(out, outsz, "%s", s);
    return 0;
}

static int get_bool(json_t *root, const char *path, int def, int *out, char *err, size_t errsz)
{
    json_t *v = path_get(root, path);
    if (!v || json_is_null(v)) {
        *out = def;
        return 0;
    }
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return 0;
    }
    if (json_is_string(v)) {
        json_t *t = yaml_plain_scalar(json_string_value(v));
        int ok = json_is_boolean(t);
        if (ok)
            *out = json_is_true(t);
        json_decref(t);
        if (ok)
            return 0;
    }
    char vt[128];
    value_text(v, vt, sizeof(vt));
    seterr(err, errsz, "%s: expected true or false, got %s", path, vt);
    return -1;
}

static int get_int(const json_t *obj, const char *key, long long def, long long lo, long long hi,
                   long long *out, char *err, size_t errsz)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        *out = def;
        return 0;
    }
    long long x;
    if (json_is_integer(v)) {
        x = json_integer_value(v);
    } else if (json_is_string(v)) {
        char *end;
        errno = 0;
        x = strtoll(json_string_value(v), &end, 10);
        if (errno || *end || end == json_string_value(v))
            goto bad;
    } else {
        goto bad;
    }
    if (x < lo || x > hi) {
        seterr(err, errsz, "%s: %lld is out of range [%lld, %lld]", key, x, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
bad:;
    char vt[128];
    value_text(v, vt, sizeof(vt));
    seterr(err, errsz, "%s: expected an integer, got %s", key, vt);
    return -1;
}

int cfg_split_host_port(const char *s, char *host, size_t hostsz, int *port)
{
    const char *colon;
    const char *hs = s;
    size_t hl;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            return -1;
        hs = s + 1;
        hl = (size_t)(rb - hs);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -1;
        hl = (size_t)(colon - s);
    }
    if (hl >= hostsz)
        return -1;
    memcpy(host, hs, hl);
    host[hl] = '\0';
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || p < 1 || p > 65535)
        return -1;
    *port = (int)p;
    return 0;
}

int cfg_basic_auth_header(const cfg_credentials *c, char *out, size_t outsz)
{
    out[0] = '\0';
    if (!c->username[0])
        return -1;
    char plain[sizeof(c->username) + sizeof(c->password) + 1];
    char enc[((sizeof(plain) + 2) / 3) * 4 + 1];
    snprintf(plain, sizeof(plain), "%s:%s", c->username, c->password);
    base64_encode(plain, strlen(plain), enc);
    snprintf(out, outsz, "Authorization: Basic %s", enc);
    return 0;
}

static int get_credentials(json_t *root, const char *path, cfg_credentials *c, const char *def_user,
                           int required, char *err, size_t errsz)
{
    char p[128];
    snprintf(p, sizeof(p), "%s.username", path);
    if (get_str(root, p, c->username, sizeof(c->username), def_user, err, errsz) != 0)
        return -1;
    snprintf(p, sizeof(p), "%s.password", path);
    json_t *v = path_get(root, p);
    if (v && !json_is_null(v) && !json_is_string(v) && !json_is_integer(v)) {
        /* Do not echo a secret, only its type. */
        seterr(err, errsz, "%s: expected a string", p);
        return -1;
    }
    if (get_str(root, p, c->password, sizeof(c->password), required ? NULL : "", err, errsz) != 0)
        return -1;
    return 0;
}

static int check_identifier(const char *path, const char *v, char *err, size_t errsz)
{
    if (!v[0]) {
        seterr(err, errsz, "%s: must not be empty", path);
        return -1;
    }
    for (const char *p = v; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch < 0x21 || ch == 0x7f || ch == '/' || ch == '\'' || ch == '"' || ch == '\\') {
            seterr(err, errsz, "%s: '%.100s' contains a character not allowed here", path, v);
            return -1;
        }
    }
    return 0;
}

static int extract(agent_config *cfg, json_t *root, char *err, size_t errsz)
{
    char buf[CFG_STR];
    if (!json_is_object(root)) {
        seterr(err, errsz, "top level: expected a mapping of Patroni configuration keys");
        return -1;
    }
    if (get_str(root, "scope", cfg->scope, sizeof(cfg->scope), NULL, err, errsz) ||
        check_identifier("scope", cfg->scope, err, errsz))
        return -1;
    if (get_str(root, "name", cfg->name, sizeof(cfg->name), NULL, err, errsz) ||
        check_identifier("name", cfg->name, err, errsz))
        return -1;
    if (get_str(root, "namespace", buf, sizeof(buf), "/service/", err, errsz))
        return -1;
    /* Patroni: '/' + namespace + '/' with runs of '/' collapsed; we keep it without the
     * trailing slash. */
    {
        char norm[CFG_STR];
        size_t j = 0;
        norm[j++] = '/';
        for (const char *p = buf; *p && j < sizeof(norm) - 1; p++)
            if (!(*p == '/' && norm[j - 1] == '/'))
                norm[j++] = *p;
        while (j > 1 && norm[j - 1] == '/')
            j--;
        norm[j] = '\0';
        snprintf(cfg->namespace_, sizeof(cfg->namespace_), "%s", norm);
    }

    /* restapi */
    if (get_str(root, "restapi.listen", buf, sizeof(buf), NULL, err, errsz))
        return -1;
    {
        int port;
        char host[CFG_STR];
        if (cfg_split_host_port(buf, host, sizeof(host), &port) != 0) {
            seterr(err, errsz, "restapi.listen: '%.100s' is not host:port", buf);
            return -1;
        }
        snprintf(cfg->rest_listen_host, sizeof(cfg->rest_listen_host), "%s",
                 host[0] ? host : "0.0.0.0");
        snprintf(cfg->rest_listen_port, sizeof(cfg->rest_listen_port), "%d", port);
    }
    if (get_str(root, "restapi.connect_address", cfg->rest_connect_address,
                sizeof(cfg->rest_connect_address), NULL, err, errsz))
        return -1;
    {
        int port;
        char host[CFG_STR];
        if (cfg_split_host_port(cfg->rest_connect_address, host, sizeof(host), &port) != 0 ||
            !host[0]) {
            seterr(err, errsz, "restapi.connect_address: '%.100s' is not host:port",
                   cfg->rest_connect_address);
            return -1;
        }
    }
    if (get_credentials(root, "restapi.authentication", &cfg->rest_auth, "", 0, err, errsz))
        return -1;
    if (cfg->rest_auth.username[0] && !cfg->rest_auth.password[0]) {
        seterr(err, errsz, "restapi.authentication.password: required when a username is set");
        return -1;
    }

    /* etcd3 (the v2 `etcd:` section is not supported: the agent speaks etcd v3 only) */
    if (path_get(root, "etcd") && !path_get(root, "etcd3")) {
        seterr(err, errsz, "etcd: the etcd v2 API is not supported; use an etcd3: section");
        return -1;
    }
    json_t *hosts = path_get(root, "etcd3.hosts");
    json_t *single = path_get(root, "etcd3.host");
    json_t *list = NULL;
    if (json_is_string(hosts)) {
        char tmp[4096];
        snprintf(tmp, sizeof(tmp), "[%s]", json_string_value(hosts));
        char yerr[128];
        list = yaml_to_json(tmp, strlen(tmp), yerr, sizeof(yerr));
    } else if (json_is_array(hosts)) {
        list = json_incref(hosts);
    } else if (json_is_string(single)) {
        list = json_pack("[O]", single);
    } else {
        char vt[128];
        value_text(hosts, vt, sizeof(vt));
        seterr(err, errsz, "etcd3.hosts: expected a list of host:port, got %s", vt);
        return -1;
    }
    char protocol[16];
    if (get_str(root, "etcd3.protocol", protocol, sizeof(protocol), "http", err, errsz)) {
        json_decref(list);
        return -1;
    }
    if (strcmp(protocol, "http") != 0) {
        json_decref(list);
        seterr(err, errsz, "etcd3.protocol: '%s' is not supported (only http)", protocol);
        return -1;
    }
    size_t i;
    json_t *h;
    cfg->n_etcd_hosts = 0;
    json_array_foreach(list, i, h)
    {
        char host[CFG_STR];
        int port;
        if (!json_is_string(h) || cfg->n_etcd_hosts >= CFG_MAX_HOSTS) {
            char vt[128];
            value_text(h, vt, sizeof(vt));
            seterr(err, errsz, "etcd3.hosts[%zu]: expected host:port (at most %d hosts), got %s", i,
                   CFG_MAX_HOSTS, vt);
            json_decref(list);
            return -1;
        }
        const char *hs = json_string_value(h);
        char withport[CFG_STR - 8];
        if (!strchr(hs, ':'))
            snprintf(withport, sizeof(withport), "%.200s:2379", hs);
        else
            snprintf(withport, sizeof(withport), "%.240s", hs);
        if (cfg_split_host_port(withport, host, sizeof(host), &port) != 0 || !host[0]) {
            seterr(err, errsz, "etcd3.hosts[%zu]: '%.100s' is not host:port", i, hs);
            json_decref(list);
            return -1;
        }
        snprintf(cfg->etcd_hosts[cfg->n_etcd_hosts++], CFG_STR, "http://%s", withport);
    }
    json_decref(list);
    if (cfg->n_etcd_hosts == 0) {
        seterr(err, errsz, "etcd3.hosts: the list is empty");
        return -1;
    }

    /* postgresql */
    if (get_str(root, "postgresql.listen", buf, sizeof(buf), NULL, err, errsz))
        return -1;
    {
        char host[CFG_STR];
        if (cfg_split_host_port(buf, host, sizeof(host), &cfg->pg_port) != 0) {
            seterr(err, errsz, "postgresql.listen: '%.100s' is not host[,host]:port", buf);
            return -1;
        }
        snprintf(cfg->pg_listen_host, sizeof(cfg->pg_listen_host), "%s", host[0] ? host : "*");
    }
    if (get_str(root, "postgresql.connect_address", cfg->pg_connect_address,
                sizeof(cfg->pg_connect_address), NULL, err, errsz))
        return -1;
    {
        char host[CFG_STR];
        int port;
        if (cfg_split_host_port(cfg->pg_connect_address, host, sizeof(host), &port) != 0 ||
            !host[0]) {
            seterr(err, errsz, "postgresql.connect_address: '%.100s' is not host:port",
                   cfg->pg_connect_address);
            return -1;
        }
    }
    if (get_str(root, "postgresql.data_dir", cfg->data_dir, sizeof(cfg->data_dir), NULL, err,
                errsz))
        return -1;
    if (cfg->data_dir[0] != '/') {
        seterr(err, errsz, "postgresql.data_dir: '%.100s' must be an absolute path", cfg->data_dir);
        return -1;
    }
    if (get_str(root, "postgresql.bin_dir", cfg->bin_dir, sizeof(cfg->bin_dir),
                "/usr/lib/postgresql/15/bin", err, errsz))
        return -1;
    {
        char def[CFG_STR + 16];
        snprintf(def, sizeof(def), "%s.pgpass", cfg->data_dir);
        if (get_str(root, "postgresql.pgpass", cfg->pgpass, sizeof(cfg->pgpass), def, err, errsz))
            return -1;
    }
    if (get_credentials(root, "postgresql.authentication.superuser", &cfg->superuser, "postgres", 1,
                        err, errsz) ||
        get_credentials(root, "postgresql.authentication.replication", &cfg->replication,
                        "replicator", 1, err, errsz) ||
        get_credentials(root, "postgresql.authentication.rewind", &cfg->rewind, "", 0, err, errsz))
        return -1;
    if (check_identifier("postgresql.authentication.superuser.username", cfg->superuser.username,
                         err, errsz) ||
        check_identifier("postgresql.authentication.replication.username",
                         cfg->replication.username, err, errsz))
        return -1;
    if (cfg->rewind.username[0] && check_identifier("postgresql.authentication.rewind.username",
                                                    cfg->rewind.username, err, errsz))
        return -1;
    json_t *params = path_get(root, "postgresql.parameters");
    if (params && !json_is_null(params) && !json_is_object(params)) {
        seterr(err, errsz, "postgresql.parameters: expected a mapping of GUC names to values");
        return -1;
    }
    cfg->pg_parameters = json_is_object(params) ? json_deep_copy(params) : json_object();
    json_t *hba = path_get(root, "postgresql.pg_hba");
    if (hba && !json_is_null(hba)) {
        size_t k;
        json_t *line;
        if (!json_is_array(hba)) {
            seterr(err, errsz, "postgresql.pg_hba: expected a list of pg_hba.conf lines");
            return -1;
        }
        json_array_foreach(hba, k, line)
        {
            if (!json_is_string(line)) {
                seterr(err, errsz, "postgresql.pg_hba[%zu]: expected a string", k);
                return -1;
            }
        }
        cfg->pg_hba = json_deep_copy(hba);
    }
    {
        static const char *const events[] = {"on_start", "on_stop", "on_restart", "on_reload",
                                             "on_role_change"};
        json_t *cbs = path_get(root, "postgresql.callbacks");
        if (cbs && !json_is_null(cbs) && !json_is_object(cbs)) {
            seterr(err, errsz, "postgresql.callbacks: expected a mapping of event to command");
            return -1;
        }
        cfg->callbacks = json_object();
        const char *k;
        json_t *v;
        json_object_foreach(cbs, k, v)
        {
            int known = 0;
            for (size_t e = 0; e < sizeof(events) / sizeof(events[0]); e++)
                known |= strcmp(k, events[e]) == 0;
            if (!known || !json_is_string(v) || !json_string_value(v)[0]) {
                seterr(err, errsz, "postgresql.callbacks.%.60s: %s", k,
                       known ? "expected a command string"
                             : "unknown event (on_start, on_stop, "
                               "on_restart, on_reload, on_role_change)");
                return -1;
            }
            json_object_set(cfg->callbacks, k, v);
        }
    }
    if (get_bool(root, "postgresql.remove_data_directory_on_rewind_failure", 1,
                 &cfg->remove_data_directory_on_rewind_failure, err, errsz))
        return -1;
    if (get_bool(root, "postgresql.remove_data_directory_on_diverged_timelines", 0,
                 &cfg->remove_data_directory_on_diverged_timelines, err, errsz))
        return -1;

    /* bootstrap */
    json_t *dcs = path_get(root, "bootstrap.dcs");
    if (dcs && !json_is_null(dcs) && !json_is_object(dcs)) {
        seterr(err, errsz, "bootstrap.dcs: expected a mapping");
        return -1;
    }
    cfg->bootstrap_dcs = json_is_object(dcs) ? json_deep_copy(dcs) : json_object();
    {
        agent_dyn_config dyn;
        char derr[256];
        if (agent_dyn_config_parse(&dyn, cfg->bootstrap_dcs, derr, sizeof(derr)) != 0) {
            seterr(err, errsz, "bootstrap.dcs.%s", derr);
            return -1;
        }
        agent_dyn_config_free(&dyn);
    }
    json_t *initdb = path_get(root, "bootstrap.initdb");
    if (initdb && !json_is_null(initdb)) {
        size_t k;
        json_t *o;
        if (!json_is_array(initdb)) {
            seterr(err, errsz, "bootstrap.initdb: expected a list of options");
            return -1;
        }
        json_array_foreach(initdb, k, o)
        {
            if (json_is_string(o))
                continue;
            if (json_is_object(o) && json_object_size(o) == 1) {
                const char *key = json_object_iter_key(json_object_iter(o));
                json_t *val = json_object_iter_value(json_object_iter(o));
                if (json_is_string(val) || json_is_integer(val)) {
                    (void)key;
                    continue;
                }
            }
            char vt[128];
            value_text(o, vt, sizeof(vt));
            seterr(err, errsz,
                   "bootstrap.initdb[%zu]: expected an option name or a one-key mapping, got %s", k,
                   vt);
            return -1;
        }
        cfg->bootstrap_initdb = json_deep_copy(initdb);
    } else {
        /* Data checksums make pg_rewind possible; UTF8 + C.UTF-8 need no locale files. */
        cfg->bootstrap_initdb =
            json_pack("[{s:s},{s:s},s]", "encoding", "UTF8", "locale", "C.UTF-8", "data-checksums");
    }
    json_t *bhba = path_get(root, "bootstrap.pg_hba");
    if (bhba && !json_is_null(bhba)) {
        if (!json_is_array(bhba)) {
            seterr(err, errsz, "bootstrap.pg_hba: expected a list of pg_hba.conf lines");
            return -1;
        }
        cfg->bootstrap_pg_hba = json_deep_copy(bhba);
    }

    /* tags */
    json_t *tags = path_get(root, "tags");
    if (tags && !json_is_null(tags) && !json_is_object(tags)) {
        seterr(err, errsz, "tags: expected a mapping");
        return -1;
    }
    cfg->tags = json_object();
    if (json_is_object(tags)) {
        const char *k;
        json_t *v;
        /* Patroni publishes boolean tags only when true. */
        json_object_foreach(tags, k, v)
        {
            if (json_is_false(v) || json_is_null(v))
                continue;
            json_object_set(cfg->tags, k, v);
        }
    }
    if (get_bool(root, "tags.nofailover", 0, &cfg->nofailover, err, errsz) ||
        get_bool(root, "tags.noloadbalance", 0, &cfg->noloadbalance, err, errsz))
        return -1;
    if (get_str(root, "postgresql.run_as", cfg->pg_user, sizeof(cfg->pg_user), "postgres", err,
                errsz))
        return -1;
    return 0;
}

/* Load order, as Spilo + Patroni build the configuration Patroni runs with:
 *   1. the YAML file (Spilo: its rendered template),
 *   2. Spilo's env names (SCOPE, PGPASSWORD_*, ETCD3_HOSTS...: rendered into that template),
 *   3. SPILO_CONFIGURATION, else PATRONI_CONFIGURATION (Spilo reads only one, SPILO_ first),
 *      merged deeply (merge_env_yaml),
 *   4. Patroni's PATRONI_* names (Patroni applies them on top of its file). */
int agent_config_load_text(agent_config *cfg, const char *yaml, size_t len, char *const *envp,
                           char *err, size_t errsz)
{
    memset(cfg, 0, sizeof(*cfg));
    char yerr[256];
    json_t *root = yaml_to_json(yaml, len, yerr, sizeof(yerr));
    if (!root) {
        seterr(err, errsz, "YAML: %s", yerr);
        return -1;
    }
    if (json_is_null(root)) {
        json_decref(root);
        root = json_object();
    }
    if (!json_is_object(root)) {
        json_decref(root);
        seterr(err, errsz, "top level: expected a mapping of Patroni configuration keys");
        return -1;
    }
    const char *var = "SPILO_CONFIGURATION";
    const char *text = env_get(envp, var);
    if (!text) {
        var = "PATRONI_CONFIGURATION";
        text = env_get(envp, var);
    }
    json_t *env_yaml = NULL;
    int rc = apply_env(root, envp, 1, err, errsz);
    if (rc == 0 && text) {
        env_yaml = yaml_to_json(text, strlen(text), yerr, sizeof(yerr));
        if (!env_yaml) {
            seterr(err, errsz, "%s: YAML: %s", var, yerr);
            rc = -1;
        } else if (!json_is_object(env_yaml) && !json_is_null(env_yaml)) {
            seterr(err, errsz, "%s: expected a mapping of Patroni configuration keys, got %s", var,
                   json_kind(env_yaml));
            rc = -1;
        } else if (json_is_object(env_yaml)) {
            rc = merge_env_yaml(root, env_yaml, var, "", err, errsz);
        }
    }
    if (rc == 0)
        rc = apply_env(root, envp, 0, err, errsz);
    if (rc == 0) {
        rc = extract(cfg, root, err, errsz);
        /* "etcd3.hosts[0]: ..." -> key path "etcd3.hosts": name the env var that set it */
        char keypath[128];
        size_t kl = strcspn(err, ":[");
        if (rc != 0 && kl < sizeof(keypath)) {
            memcpy(keypath, err, kl);
            keypath[kl] = '\0';
            const char *src = env_source(envp, keypath, env_yaml, var);
            size_t el = strlen(err);
            if (src && el + 1 < errsz)
                snprintf(err + el, errsz - el, " (value from environment variable %s)", src);
        }
    }
    json_decref(env_yaml);
    json_decref(root);
    if (rc != 0)
        agent_config_free(cfg);
    return rc;
}

int agent_config_load_file(agent_config *cfg, const char *path, char *const *envp, char *err,
                           size_t errsz)
{
    memset(cfg, 0, sizeof(*cfg));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        seterr(err, errsz, "config file '%s': %s", path, strerror(errno));
        return -1;
    }
    char *buf = malloc(CONFIG_MAX_BYTES + 1);
    size_t len = 0;
    ssize_t n;
    while (buf && len < CONFIG_MAX_BYTES && (n = read(fd, buf + len, CONFIG_MAX_BYTES - len)) > 0)
        len += (size_t)n;
    close(fd);
    if (!buf) {
        seterr(err, errsz, "config file '%s': out of memory", path);
        return -1;
    }
    if (len >= CONFIG_MAX_BYTES) {
        free(buf);
        seterr(err, errsz, "config file '%s': larger than %zu bytes", path, CONFIG_MAX_BYTES);
        return -1;
    }
    buf[len] = '\0';
    char inner[512];
    int rc = agent_config_load_text(cfg, buf, len, envp, inner, sizeof(inner));
    free(buf);
    if (rc != 0)
        seterr(err, errsz, "%s: %s", path, inner);
    return rc;
}

void agent_config_free(agent_config *cfg)
{
    json_decref(cfg->pg_parameters);
    json_decref(cfg->pg_hba);
    json_decref(cfg->bootstrap_dcs);
    json_decref(cfg->bootstrap_initdb);
    json_decref(cfg->bootstrap_pg_hba);
    json_decref(cfg->tags);
    json_decref(cfg->callbacks);
    cfg->callbacks = NULL;
    cfg->pg_parameters = cfg->pg_hba = cfg->bootstrap_dcs = NULL;
    cfg->bootstrap_initdb = cfg->bootstrap_pg_hba = cfg->tags = NULL;
}

static int dyn_bool(const json_t *obj, const char *key, int def, int *out, char *err, size_t errsz)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        *out = def;
        return 0;
    }
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return 0;
    }
    char vt[128];
    value_text(v, vt, sizeof(vt));
    seterr(err, errsz, "%s: expected true or false, got %s", key, vt);
    return -1;
}

/* A duration in seconds: an integer, or a string "<n>", "<n>s", "<n>min", "<n>h", "<n>d"
 * (Patroni 4's member_slots_ttl accepts such strings). */
static int get_duration(const json_t *obj, const char *key, long long def, long long *out,
                        char *err, size_t errsz)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v) || json_is_integer(v))
        return get_int(obj, key, def, 0, 315360000LL, out, err, errsz);
    if (json_is_string(v)) {
        const char *str = json_string_value(v);
        char *end;
        errno = 0;
        long long x = strtoll(str, &end, 10);
        long long mul = strcmp(end, "") == 0 || strcmp(end, "s") == 0 ? 1
                        : strcmp(end, "min") == 0                     ? 60
                        : strcmp(end, "h") == 0                       ? 3600
                        : strcmp(end, "d") == 0                       ? 86400
                                                                      : 0;
        if (!errno && end != str && mul && x >= 0 && x <= 315360000LL / mul) {
            *out = x * mul;
            return 0;
        }
    }
    char vt[128];
    value_text(v, vt, sizeof(vt));
    seterr(err, errsz, "%s: expected a duration (seconds, or e.g. '30min'), got %s", key, vt);
    return -1;
}

int agent_dyn_config_parse(agent_dyn_config *dyn, const json_t *obj, char *err, size_t errsz)
{
    memset(dyn, 0, sizeof(*dyn));
    if (!json_is_object(obj)) {
        seterr(err, errsz, "config: expected a JSON object");
        return -1;
    }
    long long ttl, lw, rt, lag;
    /* Lower bounds: etcd grants no lease under ~2 s (its minimum is 1.5 x election
     * timeout); one cycle per second is the finest the loop runs. Patroni's own minimums
     * (ttl 20, retry 3) are deliberately not applied: the whole point is a faster budget. */
    if (get_int(obj, "ttl", DYN_DEFAULT_TTL, 2, 3600, &ttl, err, errsz) ||
        get_int(obj, "loop_wait", DYN_DEFAULT_LOOP_WAIT, 1, 3600, &lw, err, errsz) ||
        get_int(obj, "retry_timeout", DYN_DEFAULT_RETRY_TIMEOUT, 1, 3600, &rt, err, errsz) ||
        get_int(obj, "maximum_lag_on_failover", DYN_DEFAULT_MAX_LAG, 0, INT64_MAX, &lag, err,
                errsz))
        return -1;
    /* Patroni's rule: loop_wait + 2 * retry_timeout <= ttl, fixed by lowering loop_wait,
     * then retry_timeout. */
    if (lw + 2 * rt > ttl) {
        lw = ttl - 2 * rt;
        if (lw < 1) {
            lw = 1;
            rt = (ttl - 1) / 2;
            if (rt < 1)
                rt = 1;
        }
    }
    dyn->ttl = (int)ttl;
    dyn->loop_wait = (int)lw;
    dyn->retry_timeout = (int)rt;
    dyn->maximum_lag_on_failover = lag;
    long long mst;
    if (get_duration(obj, "member_slots_ttl", DYN_DEFAULT_MEMBER_SLOTS_TTL, &mst, err, errsz))
        return -1;
    dyn->member_slots_ttl = mst;
    /* Failsafe is on by default here (Patroni: off); see the timing comment in agent/agent.c. */
    if (dyn_bool(obj, "failsafe_mode", 1, &dyn->failsafe_mode, err, errsz) ||
        dyn_bool(obj, "pause", 0, &dyn->pause, err, errsz) ||
        dyn_bool(obj, "synchronous_mode", 0, &dyn->synchronous_mode, err, errsz) ||
        dyn_bool(obj, "synchronous_mode_strict", 0, &dyn->synchronous_mode_strict, err, errsz))
        return -1;
    json_t *pg = json_object_get(obj, "postgresql");
    if (pg && !json_is_null(pg) && !json_is_object(pg)) {
        seterr(err, errsz, "postgresql: expected a mapping");
        return -1;
    }
    char sub[256];
    if (dyn_bool(pg, "use_pg_rewind", 1, &dyn->use_pg_rewind, sub, sizeof(sub)) ||
        dyn_bool(pg, "use_slots", 1, &dyn->use_slots, sub, sizeof(sub))) {
        seterr(err, errsz, "postgresql.%s", sub);
        return -1;
    }
    json_t *params = json_object_get(pg, "parameters");
    if (params && !json_is_null(params) && !json_is_object(params)) {
        seterr(err, errsz, "postgresql.parameters: expected a mapping");
        return -1;
    }
    dyn->parameters = json_is_object(params) ? json_deep_copy(params) : json_object();
    return 0;
}

void agent_dyn_config_free(agent_dyn_config *dyn)
{
    json_decref(dyn->parameters);
    dyn->parameters = NULL;
}
