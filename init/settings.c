/* Environment parsing and validation (see settings.h). */
#include "settings.h"

#include <ctype.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

void settings_free(struct init_settings *s)
{
    for (size_t i = 0; s->role_args[i]; i++) {
        free(s->role_args[i]);
        s->role_args[i] = NULL;
    }
}

const char *seccomp_mode_name(enum seccomp_mode m)
{
    return m == SECCOMP_KILL ? "kill" : m == SECCOMP_LOG ? "log" : "errno";
}

static int valid_container(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)v[i]) && v[i] != '-' && v[i] != '_' && v[i] != '.')
            return 0;
    return 1;
}

static int valid_user(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n > 32 || !(islower((unsigned char)v[0]) || v[0] == '_'))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!islower((unsigned char)v[i]) && !isdigit((unsigned char)v[i]) && v[i] != '_' &&
            v[i] != '-')
            return 0;
    return 1;
}

static int valid_dir(const char *v)
{
    if (v[0] != '/' || strlen(v) >= 1024)
        return 0;
    /* ".." would let a typo climb out of the intended tree; nothing needs it. */
    for (const char *p = v; (p = strstr(p, "..")) != NULL; p += 2)
        if ((p == v || p[-1] == '/') && (p[2] == '/' || p[2] == '\0'))
            return 0;
    return 1;
}

int settings_from_env(struct init_settings *s, int have_cmd, char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    const char *v = env("ROLE");
    if (v) {
        s->role = role_find(v);
        if (!s->role)
            return fail(err, errlen, "ROLE='%s' is not a role; valid roles: %s", v, role_names());
    } else if (!have_cmd) {
        return fail(err, errlen,
                    "ROLE is not set; valid roles: %s (or run a command: appliance-init -- "
                    "CMD ARGS..., or appliance-init --services FILE)",
                    role_names());
    }
    /* An explicit command is labelled "cmd" unless a role hardens it. */
    s->role_label = s->role ? s->role->name : "cmd";

    const char *name = env("APPLIANCE_NAME");
    const char *which = "APPLIANCE_NAME";
    if (!name) {
        name = env("HOSTNAME");
        which = "HOSTNAME";
    }
    if (!name)
        name = "appliance";
    if (!valid_container(name))
        return fail(err, errlen, "%s='%s': use 1-64 of [A-Za-z0-9._-]", which, name);
    snprintf(s->container, sizeof(s->container), "%s", name);

    s->stop_timeout_ms = s->role ? s->role->stop_timeout_ms : 10000;
    if ((v = env("STOP_TIMEOUT")) && spec_parse_duration_ms(v, 3600000u, &s->stop_timeout_ms) < 0)
        return fail(err, errlen, "STOP_TIMEOUT='%s': expected seconds (0-3600) or Nms", v);
    s->kill_grace_ms = 2000;
    if ((v = env("KILL_GRACE")) && spec_parse_duration_ms(v, 600000u, &s->kill_grace_ms) < 0)
        return fail(err, errlen, "KILL_GRACE='%s': expected seconds (0-600) or Nms", v);
    s->healthy_ms = 60000;
    if ((v = env("HEALTHY_UPTIME")) && spec_parse_duration_ms(v, 86400000u, &s->healthy_ms) < 0)
        return fail(err, errlen, "HEALTHY_UPTIME='%s': expected seconds or Nms", v);
    s->stop_signal = s->role ? s->role->stop_signal : SIGTERM;
    if ((v = env("STOP_SIGNAL")) && spec_parse_signal(v, &s->stop_signal) < 0)
        return fail(err, errlen,
                    "STOP_SIGNAL='%s': expected TERM, INT, QUIT, HUP, USR1, USR2, WINCH or KILL",
                    v);
    s->restart = s->role && !have_cmd ? s->role->restart : RESTART_NEVER;
    if ((v = env("RESTART")) && spec_parse_restart(v, &s->restart) < 0)
        return fail(err, errlen, "RESTART='%s': expected always, on-failure or never", v);
    s->permanent_exit = s->role && !have_cmd ? 2 : -1;
    if ((v = env("PERMANENT_FAILURE_EXIT"))) {
        long n;
        if (!strcmp(v, "none"))
            s->permanent_exit = -1;
        else if (spec_parse_int(v, 0, 255, &n) == 0)
            s->permanent_exit = (int)n;
        else
            return fail(err, errlen, "PERMANENT_FAILURE_EXIT='%s': expected 0..255 or none", v);
    }
    s->seccomp = SECCOMP_ERRNO;
    if ((v = env("SECCOMP_ACTION"))) {
        if (!strcmp(v, "errno"))
            s->seccomp = SECCOMP_ERRNO;
        else if (!strcmp(v, "kill"))
            s->seccomp = SECCOMP_KILL;
        else if (!strcmp(v, "log"))
            s->seccomp = SECCOMP_LOG;
        else
            return fail(err, errlen, "SECCOMP_ACTION='%s': expected errno, kill or log", v);
    }
    s->log_format = LOGMUX_TEXT;
    if ((v = env("LOG_FORMAT"))) {
        if (!strcmp(v, "json"))
            s->log_format = LOGMUX_JSON;
        else if (strcmp(v, "text") != 0)
            return fail(err, errlen, "LOG_FORMAT='%s': expected text or json", v);
    }
    if (s->role) {
        s->user = s->role->user;
        if ((v = env("APPLIANCE_USER"))) {
            if (!valid_user(v))
                return fail(err, errlen, "APPLIANCE_USER='%s': not a valid user name", v);
            s->user = v;
        }
        s->data_dir = s->role->data_dir;
        if ((v = env("DATA_DIR"))) {
            if (!valid_dir(v))
                return fail(err, errlen,
                            "DATA_DIR='%s': expected an absolute path without '..' components", v);
            s->data_dir = v;
        }
    }
    if ((v = env("ROLE_ARGS"))) {
        if (!s->role || have_cmd)
            return fail(err, errlen,
                        "ROLE_ARGS='%s': only used when ROLE runs its own program "
                        "(no command given)",
                        v);
        /* The services-file word splitter, so quoting rules are the same everywhere. */
        char line[SPEC_LINE_MAX], e[256];
        if (strlen(v) > SPEC_LINE_MAX - 16)
            return fail(err, errlen, "ROLE_ARGS: longer than %d bytes", SPEC_LINE_MAX - 16);
        snprintf(line, sizeof(line), "role -- %s", v);
        struct svc_spec tmp;
        spec_init(&tmp);
        if (spec_parse_line(line, &tmp, e, sizeof(e)) != 1) {
            spec_free(&tmp);
            return fail(err, errlen, "ROLE_ARGS='%s': %s", v, e);
        }
        memcpy(s->role_args, tmp.argv, sizeof(s->role_args));
    }
    return 0;
}
