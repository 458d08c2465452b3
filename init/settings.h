/* appliance-init's settings, all from the environment, each validated: a bad value is an
 * error naming the variable and the value (exit 2), never a silent default.
 *
 *   ROLE             etcd|pg|router|init (required unless a command is given; with a
 *                    command it applies that role's user, data dir and seccomp to it)
 *   APPLIANCE_NAME   container name in the log prefix (else HOSTNAME, else "appliance")
 *   STOP_TIMEOUT     wait for the stop signal to work: seconds or Nms (role default)
 *   KILL_GRACE       between SIGTERM to every remaining process and SIGKILL (2 s)
 *   STOP_SIGNAL      override the role's stop signal (TERM, INT, QUIT, ...)
 *   RESTART          always|on-failure|never for the main process (role default;
 *                    never for a command)
 *   PERMANENT_FAILURE_EXIT  exit code that stops restarts: 0..255 or "none" (roles: 2,
 *                    the house's "bad input" exit code; commands: none)
 *   HEALTHY_UPTIME   uptime that resets the restart backoff (60 s)
 *   SECCOMP_ACTION   errno (EPERM + log line, default) | kill (SIGSYS) | log (allow + log:
 *                    for deriving allowlists)
 *   LOG_FORMAT       text|json
 *   APPLIANCE_USER   user to drop to (role default "postgres")
 *   DATA_DIR         the role's data dir, an absolute path (role default)
 *   ROLE_ARGS        extra arguments for the role's program, words as in a services file
 *                    (quotes allowed), e.g. ROLE=pg ROLE_ARGS=/home/postgres/postgres0.yml
 *                    or ROLE=router ROLE_ARGS="-c /etc/appliance/router.yml" */
#ifndef APPLIANCE_SETTINGS_H
#define APPLIANCE_SETTINGS_H

#include "supervisor/logmux.h"
#include "roles.h"
#include "supervisor/spec.h"

#include <stddef.h>
#include <stdint.h>

enum seccomp_mode { SECCOMP_ERRNO, SECCOMP_KILL, SECCOMP_LOG };

struct init_settings {
    const struct role *role; /* NULL: no ROLE (command mode without hardening) */
    const char *role_label;  /* role name, or "cmd" */
    char container[65];
    uint64_t stop_timeout_ms;
    uint64_t kill_grace_ms;
    uint64_t healthy_ms;
    int stop_signal;
    enum restart_policy restart;
    int permanent_exit; /* -1: none */
    enum seccomp_mode seccomp;
    enum logmux_format log_format;
    const char *user;                   /* NULL: no role */
    const char *data_dir;               /* NULL: none */
    char *role_args[SPEC_MAX_ARGS + 1]; /* ROLE_ARGS split into words (owned, NULL-ended) */
};

void settings_free(struct init_settings *s);

/* have_cmd: a command (or services file) was given on the command line. Returns 0, or -1
 * with a message in err. */
int settings_from_env(struct init_settings *s, int have_cmd, char *err, size_t errlen);
const char *seccomp_mode_name(enum seccomp_mode m);

#endif
