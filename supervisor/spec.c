/* Child spec values and the services-file parser (see spec.h). */
#include "spec.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void spec_init(struct svc_spec *s)
{
    memset(s, 0, sizeof(*s));
    s->restart = RESTART_NEVER;
    s->stop_signal = SIGTERM;
    s->notify_fd = -1;
    s->permanent_exit = -1;
    s->healthy_ms = 60000;
}

static void free_list(char **v)
{
    for (; *v; v++) {
        free(*v);
        *v = NULL;
    }
}

void spec_free(struct svc_spec *s)
{
    free_list(s->argv);
    free_list(s->env);
    free_list(s->after);
}

int spec_parse_restart(const char *v, enum restart_policy *out)
{
    if (!strcmp(v, "always"))
        *out = RESTART_ALWAYS;
    else if (!strcmp(v, "on-failure"))
        *out = RESTART_ON_FAILURE;
    else if (!strcmp(v, "never"))
        *out = RESTART_NEVER;
    else
        return -1;
    return 0;
}

const char *spec_restart_name(enum restart_policy p)
{
    return p == RESTART_ALWAYS ? "always" : p == RESTART_ON_FAILURE ? "on-failure" : "never";
}

static const struct {
    const char *name;
    int sig;
} signals[] = {
    {"TERM", SIGTERM}, {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"HUP", SIGHUP},
    {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"KILL", SIGKILL}, {"WINCH", SIGWINCH},
};

int spec_parse_signal(const char *v, int *out)
{
    const char *n = strncasecmp(v, "SIG", 3) == 0 ? v + 3 : v;
    for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++) {
        if (strcasecmp(n, signals[i].name) == 0) {
            *out = signals[i].sig;
            return 0;
        }
    }
    long num;
    if (spec_parse_int(v, 1, 64, &num) == 0) {
        for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++) {
            if (signals[i].sig == num) {
                *out = (int)num;
                return 0;
            }
        }
    }
    return -1;
}

const char *spec_signal_name(int sig)
{
    static const char *const names[] = {
        [SIGHUP] = "SIGHUP",   [SIGINT] = "SIGINT",     [SIGQUIT] = "SIGQUIT",
        [SIGKILL] = "SIGKILL", [SIGUSR1] = "SIGUSR1",   [SIGUSR2] = "SIGUSR2",
        [SIGTERM] = "SIGTERM", [SIGWINCH] = "SIGWINCH", [SIGSEGV] = "SIGSEGV",
        [SIGABRT] = "SIGABRT", [SIGSYS] = "SIGSYS",     [SIGPIPE] = "SIGPIPE",
        [SIGBUS] = "SIGBUS",   [SIGALRM] = "SIGALRM"};
    if (sig > 0 && (size_t)sig < sizeof(names) / sizeof(names[0]) && names[sig])
        return names[sig];
    return "signal";
}

int spec_parse_int(const char *v, long min, long max, long *out)
{
    if (!v || !*v || !isdigit((unsigned char)v[0]))
        return -1;
    errno = 0;
    char *end;
    long n = strtol(v, &end, 10);
    if (errno || *end || n < min || n > max)
        return -1;
    *out = n;
    return 0;
}

int spec_parse_duration_ms(const char *v, uint64_t max_ms, uint64_t *out)
{
    if (!v || !isdigit((unsigned char)v[0]))
        return -1;
    errno = 0;
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno)
        return -1;
    unsigned long long ms;
    if (!strcmp(end, "ms"))
        ms = n;
    else if (!strcmp(end, "") || !strcmp(end, "s"))
        ms = n > max_ms / 1000 + 1 ? max_ms + 1 : n * 1000;
    else
        return -1;
    if (ms > max_ms)
        return -1;
    *out = ms;
    return 0;
}

/* ---- services file ---- */

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

/* Splits line into words (quotes, escapes). Returns the count or -1. words[] point into
 * buf, which must hold strlen(line)+1 bytes. */
static int split_words(const char *line, char *buf, char **words, int max, char *err, size_t errlen)
{
    int n = 0;
    const char *p = line;
    char *o = buf;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p || *p == '\n' || *p == '\r' || (*p == '#' && n == 0))
            break;
        if (n == max)
            return fail(err, errlen, "more than %d words", max);
        words[n++] = o;
        while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            if (*p == '\'') {
                const char *q = strchr(p + 1, '\'');
                if (!q)
                    return fail(err, errlen, "unterminated ' quote");
                memcpy(o, p + 1, (size_t)(q - p - 1));
                o += q - p - 1;
                p = q + 1;
            } else if (*p == '"') {
                p++;
                while (*p && *p != '"') {
                    if (*p == '\\' && p[1])
                        p++;
                    *o++ = *p++;
                }
                if (*p != '"')
                    return fail(err, errlen, "unterminated \" quote");
                p++;
            } else if (*p == '\\' && p[1]) {
                *o++ = p[1];
                p += 2;
            } else {
                *o++ = *p++;
            }
        }
        *o++ = '\0';
    }
    return n;
}

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= SPEC_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return 0;
    return 1;
}

static int push(char **list, size_t max, const char *v)
{
    size_t i = 0;
    if (!v)
        return -1;
    while (list[i])
        i++;
    if (i >= max)
        return -1;
    list[i] = strdup(v);
    return list[i] ? 0 : -1;
}

static int apply_key(struct svc_spec *s, const char *w, char *err, size_t errlen)
{
    const char *eq = strchr(w, '=');
    if (!eq)
        return fail(err, errlen, "expected key=value or --, got '%s'", w);
    size_t kl = (size_t)(eq - w);
    const char *v = eq + 1;
    long num;
#define KEY(k) (kl == sizeof(k) - 1 && !strncmp(w, k, kl))
    if (KEY("restart")) {
        if (spec_parse_restart(v, &s->restart) < 0)
            return fail(err, errlen, "restart='%s': expected always, on-failure or never", v);
    } else if (KEY("stop-signal")) {
        if (spec_parse_signal(v, &s->stop_signal) < 0)
            return fail(err, errlen,
                        "stop-signal='%s': expected TERM, INT, QUIT, HUP, USR1, "
                        "USR2, WINCH or KILL",
                        v);
    } else if (KEY("notify-fd")) {
        if (spec_parse_int(v, 3, 63, &num) < 0)
            return fail(err, errlen, "notify-fd='%s': expected a number from 3 to 63", v);
        s->notify_fd = (int)num;
    } else if (KEY("permanent-exit")) {
        if (spec_parse_int(v, 0, 255, &num) < 0)
            return fail(err, errlen, "permanent-exit='%s': expected 0..255", v);
        s->permanent_exit = (int)num;
    } else if (KEY("healthy-after")) {
        if (spec_parse_duration_ms(v, 86400000u, &s->healthy_ms) < 0)
            return fail(err, errlen, "healthy-after='%s': expected seconds (or Nms)", v);
    } else if (KEY("env")) {
        const char *e = strchr(v, '=');
        if (!e || e == v)
            return fail(err, errlen, "env='%s': expected KEY=VALUE", v);
        if (push(s->env, SPEC_MAX_ENV, v) < 0)
            return fail(err, errlen, "env='%s': more than %d env entries", v, SPEC_MAX_ENV);
    } else if (KEY("after")) {
        char tmp[SPEC_LINE_MAX];
        snprintf(tmp, sizeof(tmp), "%s", v);
        char *save = NULL;
        for (char *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (!valid_name(t))
                return fail(err, errlen, "after='%s': '%s' is not a service name", v, t);
            if (push(s->after, SPEC_MAX_AFTER, t) < 0)
                return fail(err, errlen, "after='%s': more than %d dependencies", v,
                            SPEC_MAX_AFTER);
        }
    } else {
        return fail(err, errlen,
                    "unknown key '%.*s' (known: restart, stop-signal, notify-fd, "
                    "after, env, permanent-exit, healthy-after)",
                    (int)kl, w);
    }
#undef KEY
    return 0;
}

int spec_parse_line(const char *line, struct svc_spec *s, char *err, size_t errlen)
{
    size_t ll = strlen(line);
    if (ll >= SPEC_LINE_MAX)
        return fail(err, errlen, "line longer than %d bytes", SPEC_LINE_MAX);
    char buf[SPEC_LINE_MAX] = "";
    char *words[SPEC_MAX_ARGS + 80] = {0};
    int n = split_words(line, buf, words, (int)(sizeof(words) / sizeof(words[0])), err, errlen);
    if (n <= 0)
        return n;
    if (!valid_name(words[0]))
        return fail(err, errlen, "service name '%s': use 1-%d of [A-Za-z0-9._-]", words[0],
                    SPEC_NAME_MAX - 1);
    snprintf(s->name, sizeof(s->name), "%s", words[0]);
    int i = 1;
    for (; i < n && words[i] && strcmp(words[i], "--") != 0; i++)
        if (apply_key(s, words[i], err, errlen) < 0)
            return -1;
    if (i >= n || i + 1 >= n)
        return fail(err, errlen, "service '%s': missing '-- COMMAND ARGS...'", s->name);
    if (n - i - 1 > SPEC_MAX_ARGS)
        return fail(err, errlen, "service '%s': more than %d arguments", s->name, SPEC_MAX_ARGS);
    for (int a = i + 1; a < n; a++)
        if (push(s->argv, SPEC_MAX_ARGS, words[a]) < 0)
            return fail(err, errlen, "out of memory");
    return 1;
}

static int find(struct svc_spec *specs, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(specs[i].name, name))
            return (int)i;
    return -1;
}

/* Depth-first search for a cycle through `after` edges: 0 white, 1 grey, 2 black. */
static int has_cycle(struct svc_spec *specs, size_t n, size_t i, unsigned char *mark)
{
    if (mark[i] == 1)
        return 1;
    if (mark[i] == 2)
        return 0;
    mark[i] = 1;
    for (char **a = specs[i].after; *a; a++) {
        int j = find(specs, n, *a);
        if (j >= 0 && has_cycle(specs, n, (size_t)j, mark))
            return 1;
    }
    mark[i] = 2;
    return 0;
}

int spec_check_graph(struct svc_spec *specs, size_t n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        if (find(specs, i, specs[i].name) >= 0)
            return fail(err, errlen, "service '%s' defined twice", specs[i].name);
        for (char **a = specs[i].after; *a; a++) {
            if (find(specs, n, *a) < 0)
                return fail(err, errlen, "service '%s': after='%s' names no service", specs[i].name,
                            *a);
            if (!strcmp(*a, specs[i].name))
                return fail(err, errlen, "service '%s' is after itself", specs[i].name);
        }
    }
    unsigned char mark[SPEC_MAX_SERVICE] = {0};
    for (size_t i = 0; i < n && i < SPEC_MAX_SERVICE; i++)
        if (has_cycle(specs, n, i, mark))
            return fail(err, errlen, "services form a dependency cycle through '%s'",
                        specs[i].name);
    return 0;
}

int spec_load_file(const char *path, struct svc_spec *out, size_t max, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    char line[SPEC_LINE_MAX + 2];
    size_t n = 0;
    int lineno = 0;
    char e[512];
    int rc = 0;
    if (max > SPEC_MAX_SERVICE)
        max = SPEC_MAX_SERVICE;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            rc = fail(err, errlen, "%s:%d: line longer than %d bytes", path, lineno, SPEC_LINE_MAX);
            break;
        }
        if (n == max) {
            struct svc_spec probe;
            spec_init(&probe);
            int r = spec_parse_line(line, &probe, e, sizeof(e));
            spec_free(&probe);
            if (r != 0) {
                rc = fail(err, errlen, "%s:%d: more than %zu services", path, lineno, max);
                break;
            }
            continue;
        }
        spec_init(&out[n]);
        int r = spec_parse_line(line, &out[n], e, sizeof(e));
        if (r < 0) {
            spec_free(&out[n]);
            rc = fail(err, errlen, "%s:%d: %s", path, lineno, e);
            break;
        }
        if (r == 0)
            continue;
        n++;
    }
    fclose(f);
    if (rc == 0 && n == 0)
        rc = fail(err, errlen, "%s: no service defined", path);
    if (rc == 0 && spec_check_graph(out, n, e, sizeof(e)) < 0)
        rc = fail(err, errlen, "%s: %s", path, e);
    if (rc < 0) {
        for (size_t i = 0; i < n; i++)
            spec_free(&out[i]);
        return -1;
    }
    return (int)n;
}
