/* Generated postgres configuration files. */
#include "agent/pgfiles.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void pgfiles_quote(const char *s, char *out, size_t outsz)
{
    size_t j = strlen(out);
    if (j + 1 < outsz)
        out[j++] = '\'';
    for (; *s && j + 3 < outsz; s++) {
        if (*s == '\'' || *s == '\\')
            out[j++] = *s; /* doubled: '' and \\ */
        out[j++] = *s;
    }
    if (j + 1 < outsz)
        out[j++] = '\'';
    out[j] = '\0';
}

void pgfiles_slot_name(const char *member, char *out, size_t outsz)
{
    size_t j = 0;
    for (const char *p = member; *p && j + 6 < outsz && j < 63; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch >= 'A' && ch <= 'Z')
            out[j++] = (char)(ch - 'A' + 'a');
        else if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_')
            out[j++] = (char)ch;
        else if (ch == '-' || ch == '.')
            out[j++] = '_';
        else
            j += (size_t)snprintf(out + j, outsz - j, "u%04x", ch);
    }
    out[j < 63 ? j : 63] = '\0';
}

static int write_file(const char *path, const char *text, mode_t mode, uid_t uid, gid_t gid,
                      char *err, size_t errsz)
{
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        snprintf(err, errsz, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);
        if (n <= 0) {
            snprintf(err, errsz, "%s: %s", tmp, strerror(errno));
            close(fd);
            return -1;
        }
        off += (size_t)n;
    }
    if (getuid() == 0 && uid != 0 && fchown(fd, uid, gid) != 0) {
        snprintf(err, errsz, "chown %s: %s", tmp, strerror(errno));
        close(fd);
        return -1;
    }
    fsync(fd);
    close(fd);
    if (rename(tmp, path) != 0) {
        snprintf(err, errsz, "rename %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static void append(char *buf, size_t sz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#include <stdarg.h>
static void append(char *buf, size_t sz, const char *fmt, ...)
{
    size_t l = strlen(buf);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + l, sz - l, fmt, ap);
    va_end(ap);
}

static void guc_value(const json_t *v, char *out, size_t outsz)
{
    out[0] = '\0';
    char tmp[512];
    if (json_is_string(v))
        snprintf(tmp, sizeof(tmp), "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(tmp, sizeof(tmp), "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(tmp, sizeof(tmp), "%g", json_real_value(v));
    else if (json_is_boolean(v))
        snprintf(tmp, sizeof(tmp), "%s", json_is_true(v) ? "on" : "off");
    else
        snprintf(tmp, sizeof(tmp), "%s", "");
    pgfiles_quote(tmp, out, outsz);
}

static int guc_name_ok(const char *k)
{
    if (!*k)
        return 0;
    for (const char *p = k; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '.'))
            return 0;
    return 1;
}

/* GUCs the agent derives itself: user values are ignored (as Patroni does). */
static int derived(const char *k)
{
    static const char *const names[] = {"listen_addresses",  "port",
                                        "cluster_name",      "primary_conninfo",
                                        "primary_slot_name", "hba_file"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(k, names[i]) == 0)
            return 1;
    return 0;
}

int pgfiles_write_conf(const agent_config *cfg, const json_t *dyn_params, int replica,
                       const pg_upstream *up, uid_t uid, gid_t gid, char *err, size_t errsz)
{
    size_t sz = 65536;
    char *buf = calloc(1, sz);
    if (!buf) {
        snprintf(err, errsz, "out of memory");
        return -1;
    }
    char q[1024];
    append(buf, sz,
           "# Written by appliance-agent on every start; edit the DCS config or the "
           "agent YAML instead.\ninclude_if_exists 'postgresql.base.conf'\n");
    q[0] = '\0';
    pgfiles_quote(strcmp(cfg->pg_listen_host, "0.0.0.0") == 0 ? "*" : cfg->pg_listen_host, q,
                  sizeof(q));
    append(buf, sz, "listen_addresses = %s\nport = %d\n", q, cfg->pg_port);
    q[0] = '\0';
    pgfiles_quote(cfg->scope, q, sizeof(q));
    append(buf, sz, "cluster_name = %s\n", q);
    /* Defaults every HA member needs (overridable below): replication, rewind, hot standby.
     * Unix sockets are off by default: several nodes on one host share a port number on
     * different addresses, and the Debian socket directory would collide. */
    append(buf, sz,
           "wal_level = 'replica'\nhot_standby = 'on'\nwal_log_hints = 'on'\n"
           "max_wal_senders = 10\nmax_replication_slots = 10\nwal_keep_size = '128MB'\n"
           "unix_socket_directories = ''\n");
    const json_t *sets[2] = {dyn_params, cfg->pg_parameters};
    for (int s = 0; s < 2; s++) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)sets[s], k, v)
        {
            if (!guc_name_ok(k) || derived(k))
                continue;
            guc_value(v, q, sizeof(q));
            append(buf, sz, "%s = %s\n", k, q);
        }
    }
    if (replica && up && up->host) {
        char ci[1024];
        snprintf(ci, sizeof(ci),
                 "host=%s port=%d user=%s passfile=%s application_name=%s "
                 "connect_timeout=2 keepalives=1 keepalives_idle=5",
                 up->host, up->port, cfg->replication.username, cfg->pgpass, cfg->name);
        q[0] = '\0';
        pgfiles_quote(ci, q, sizeof(q));
        append(buf, sz, "primary_conninfo = %s\n", q);
        if (up->slot) {
            q[0] = '\0';
            pgfiles_quote(up->slot, q, sizeof(q));
            append(buf, sz, "primary_slot_name = %s\n", q);
        }
        append(buf, sz, "recovery_target_timeline = 'latest'\n");
    }
    char path[512];
    snprintf(path, sizeof(path), "%s/postgresql.conf", cfg->data_dir);
    int rc = write_file(path, buf, 0600, uid, gid, err, errsz);
    free(buf);
    if (rc != 0)
        return -1;
    snprintf(path, sizeof(path), "%s/standby.signal", cfg->data_dir);
    if (replica)
        return write_file(path, "", 0600, uid, gid, err, errsz);
    if (unlink(path) != 0 && errno != ENOENT) {
        snprintf(err, errsz, "unlink %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int pgfiles_write_hba(const agent_config *cfg, uid_t uid, gid_t gid, char *err, size_t errsz)
{
    char buf[16384] = "";
    const json_t *lines = cfg->pg_hba ? cfg->pg_hba : cfg->bootstrap_pg_hba;
    if (lines) {
        size_t i;
        json_t *l;
        json_array_foreach((json_t *)lines, i, l)
        {
            append(buf, sizeof(buf), "%s\n", json_string_value(l));
        }
    } else {
        /* Secure default: passwords (SCRAM) for every network login. */
        append(buf, sizeof(buf),
               "local all all trust\n"
               "host replication %s all scram-sha-256\n"
               "host all all all scram-sha-256\n",
               cfg->replication.username);
    }
    char path[512];
    snprintf(path, sizeof(path), "%s/pg_hba.conf", cfg->data_dir);
    return write_file(path, buf, 0600, uid, gid, err, errsz);
}

int pgfiles_write_pgpass(const agent_config *cfg, uid_t uid, gid_t gid, char *err, size_t errsz)
{
    char buf[2048] = "";
    const cfg_credentials *creds[] = {&cfg->superuser, &cfg->replication, &cfg->rewind};
    for (int i = 0; i < 3; i++) {
        if (!creds[i]->username[0])
            continue;
        char pw[600];
        size_t j = 0;
        /* pgpass escaping: backslash and colon */
        for (const char *p = creds[i]->password; *p && j + 2 < sizeof(pw); p++) {
            if (*p == ':' || *p == '\\')
                pw[j++] = '\\';
            pw[j++] = *p;
        }
        pw[j] = '\0';
        append(buf, sizeof(buf), "*:*:*:%s:%s\n", creds[i]->username, pw);
    }
    return write_file(cfg->pgpass, buf, 0600, uid, gid, err, errsz);
}

int pgfiles_data_empty(const char *data_dir)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/PG_VERSION", data_dir);
    return access(path, F_OK) != 0;
}

static void marker_path(const agent_config *cfg, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s.was-primary", cfg->data_dir);
}

int pgfiles_marker_get(const agent_config *cfg)
{
    char p[600];
    marker_path(cfg, p, sizeof(p));
    return access(p, F_OK) == 0;
}

void pgfiles_marker_set(const agent_config *cfg, int on)
{
    char p[600];
    marker_path(cfg, p, sizeof(p));
    if (on) {
        int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0)
            close(fd);
    } else {
        unlink(p);
    }
}
