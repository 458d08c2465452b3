/* Child specs: what the supervisor runs and how. A spec comes from the role table (one
 * main process), from the command line (appliance-init -- CMD ARGS), or from a services
 * file (appliance-init --services FILE), one service per line:
 *
 *   # comment
 *   NAME [key=value ...] -- ARGV...
 *
 * keys: restart=always|on-failure|never   stop-signal=TERM|INT|QUIT|HUP|USR1|USR2|KILL|N
 *       notify-fd=3..63 (s6-style readiness: the child writes a newline on that fd)
 *       after=NAME[,NAME...] (start once those are ready; stopped after them)
 *       env=KEY=VALUE (repeatable)   permanent-exit=0..255 (that exit code stops restarts)
 *       healthy-after=SECONDS (uptime that resets the backoff)
 * Words are separated by blanks; '...' and "..." quote (backslash escapes in "..." and
 * outside quotes). Every error names the line, the key and the value. */
#ifndef APPLIANCE_SPEC_H
#define APPLIANCE_SPEC_H

#include <stddef.h>
#include <stdint.h>

enum restart_policy { RESTART_NEVER, RESTART_ON_FAILURE, RESTART_ALWAYS };

#define SPEC_NAME_MAX    48
#define SPEC_MAX_ARGS    256
#define SPEC_MAX_ENV     64
#define SPEC_MAX_AFTER   16
#define SPEC_MAX_SERVICE 32
#define SPEC_LINE_MAX    8192

struct svc_spec {
    char name[SPEC_NAME_MAX];
    char *argv[SPEC_MAX_ARGS + 1]; /* NULL-terminated, owned */
    char *env[SPEC_MAX_ENV + 1];   /* extra KEY=VALUE, override the inherited environment */
    char *after[SPEC_MAX_AFTER + 1];
    enum restart_policy restart;
    int stop_signal;
    int notify_fd;      /* -1: no readiness notification, ready when started */
    int permanent_exit; /* -1: none */
    uint64_t healthy_ms;
};

void spec_init(struct svc_spec *s); /* defaults: never, SIGTERM, no notify, healthy 60 s */
void spec_free(struct svc_spec *s);

/* Parsers of single values; each returns 0 or -1 (the caller names the key in the error). */
int spec_parse_restart(const char *v, enum restart_policy *out);
const char *spec_restart_name(enum restart_policy p);
/* "TERM", "SIGTERM", "15" ... only signals that make sense as a stop signal. */
int spec_parse_signal(const char *v, int *out);
const char *spec_signal_name(int sig);
/* Decimal integer in [min, max], nothing else. */
int spec_parse_int(const char *v, long min, long max, long *out);
/* Duration: "10" or "10s" (seconds), "250ms"; 0 .. max_ms. */
int spec_parse_duration_ms(const char *v, uint64_t max_ms, uint64_t *out);

/* Parses one services-file line into s (already spec_init'ed). Returns 1 for a service,
 * 0 for a blank/comment line, -1 with a message in err. */
int spec_parse_line(const char *line, struct svc_spec *s, char *err, size_t errlen);

/* Parses a whole services file; checks unique names, known `after` names and no cycles.
 * Returns the number of services (>=1) or -1 with err = "FILE:LINE: ...". */
int spec_load_file(const char *path, struct svc_spec *out, size_t max, char *err, size_t errlen);
/* Same checks on specs already in memory (exposed for tests). */
int spec_check_graph(struct svc_spec *specs, size_t n, char *err, size_t errlen);

#endif
