/* appliance-init: PID 1 of every pg-appliance container.
 *
 *   ROLE=etcd|pg|router|init appliance-init   run the role's program (roles.c)
 *   appliance-init [--] CMD ARGS...           run CMD as the main process (like tini)
 *   appliance-init --services FILE            run the services in FILE (supervisor/spec.h)
 *
 * One signalfd in one epoll loop (no sleeps, no polling): forwarded signals, SIGCHLD
 * reaping (PR_SET_CHILD_SUBREAPER when not PID 1, so orphans come to us either way), the
 * children's output pipes, readiness fds, seccomp listeners, and our own stdout when it
 * is slow. Settings: init/settings.h. Exit status: supervisor.h. Errors before anything
 * starts (bad ROLE, bad env value, missing user, unusable data dir) exit 2 with a message
 * on stderr naming the value. */
#include "evloop.h"
#include "hardening.h"
#include "supervisor/logmux.h"
#include "roles.h"
#include "settings.h"
#include "supervisor/spec.h"
#include "supervisor/proc_tree.h"
#include "supervisor/supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#define EXIT_USAGE 2

static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

struct init_state {
    evloop *loop;
    struct logmux *mux;
    struct supervisor *sv;
    struct hardening hard;
    int out_watched;
};

static void usage(FILE *f)
{
    fprintf(f, "usage: ROLE=etcd|pg|router|init appliance-init\n"
               "       appliance-init [--] CMD [ARGS...]\n"
               "       appliance-init --services FILE\n"
               "settings come from the environment (ROLE, STOP_TIMEOUT, KILL_GRACE, "
               "STOP_SIGNAL, RESTART,\nPERMANENT_FAILURE_EXIT, HEALTHY_UPTIME, SECCOMP_ACTION, "
               "LOG_FORMAT, APPLIANCE_USER, DATA_DIR,\nAPPLIANCE_NAME); see README.md.\n");
}

static int fatal(const char *msg)
{
    fprintf(stderr, "appliance-init: error: %s\n", msg);
    return EXIT_USAGE;
}

static void on_signal(evloop *loop, int fd, uint32_t events, void *arg)
{
    struct init_state *st = arg;
    struct signalfd_siginfo si[16];
    ssize_t n = read(fd, si, sizeof(si));
    if (n <= 0)
        return;
    int got_chld = 0;
    for (size_t i = 0; i < (size_t)n / sizeof(si[0]); i++) {
        if (si[i].ssi_signo == SIGCHLD)
            got_chld = 1;
        else
            supervisor_signal(st->sv, (int)si[i].ssi_signo);
    }
    if (got_chld)
        supervisor_reap(st->sv);
}

static void on_stdout_writable(evloop *loop, int fd, uint32_t events, void *arg)
{
    struct init_state *st = arg;
    if (!logmux_flush(st->mux)) {
        evloop_del_fd(loop, fd);
        st->out_watched = 0;
    }
}

static void flush_output(struct init_state *st)
{
    int more = logmux_flush(st->mux);
    if (more && !st->out_watched && logmux_out_pollable(st->mux)) {
        if (evloop_add_fd(st->loop, STDOUT_FILENO, EPOLLOUT, on_stdout_writable, st) == 0)
            st->out_watched = 1;
    }
}

static int child_setup(void *arg, int sock)
{
    struct init_state *st = arg;
    return hardening_child_setup(&st->hard, sock);
}

static void on_child_fd(void *arg, const char *child, int pid, int fd)
{
    struct init_state *st = arg;
    seccomp_monitor_add(st->hard.seccomp, st->loop, st->mux, child, pid, fd);
}

/* The main process's spec from the role table or the command line. */
static int main_spec(struct svc_spec *sp, const struct init_settings *s, char **cmd, char *err,
                     size_t errlen)
{
    spec_init(sp);
    snprintf(sp->name, sizeof(sp->name), "main");
    if (cmd) {
        size_t i = 0;
        for (; i < SPEC_MAX_ARGS && cmd[i]; i++)
            if (!(sp->argv[i] = strdup(cmd[i])))
                return snprintf(err, errlen, "out of memory"), -1;
        if (cmd[i])
            return snprintf(err, errlen, "more than %d arguments", SPEC_MAX_ARGS), -1;
        /* A relative path must survive the child's chdir to the role user's home. */
        char abs[PATH_MAX];
        if (cmd[0][0] != '/' && strchr(cmd[0], '/') && realpath(cmd[0], abs)) {
            free(sp->argv[0]);
            if (!(sp->argv[0] = strdup(abs)))
                return snprintf(err, errlen, "out of memory"), -1;
        }
    } else {
        char dir[PATH_MAX], path[PATH_MAX + 64];
        if (role_exe_dir(dir, sizeof(dir)) < 0)
            return snprintf(err, errlen, "cannot read /proc/self/exe to find %s: %s",
                            s->role->program, strerror(errno)),
                   -1;
        snprintf(path, sizeof(path), "%s/%s", strcmp(dir, "/") ? dir : "", s->role->program);
        size_t n = 0;
        sp->argv[n++] = strdup(path);
        for (size_t i = 0; s->role->args[i]; i++)
            sp->argv[n++] = strdup(s->role->args[i]);
        for (size_t i = 0; s->role_args[i] && n < SPEC_MAX_ARGS; i++)
            sp->argv[n++] = strdup(s->role_args[i]);
        for (size_t i = 0; i < n; i++)
            if (!sp->argv[i])
                return snprintf(err, errlen, "out of memory"), -1;
    }
    sp->restart = s->restart;
    sp->stop_signal = s->stop_signal;
    sp->permanent_exit = s->permanent_exit;
    sp->healthy_ms = s->healthy_ms;
    return 0;
}

int main(int argc, char **argv)
{
    /* Started with closed stdio, our own pipes would land on 0-2 and the log stream would
     * go into one of them: park /dev/null there first. */
    for (int fd = 0; fd <= 2; fd++)
        if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY) != fd)
            return EXIT_USAGE;
    char err[1024];
    char **cmd = NULL;
    const char *services = NULL;
    int i = 1;
    if (i < argc && (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))) {
        usage(stdout);
        return 0;
    }
    if (i < argc && !strcmp(argv[i], "--services")) {
        if (i + 1 >= argc || i + 2 < argc) {
            usage(stderr);
            return fatal("--services takes exactly one FILE");
        }
        services = argv[i + 1];
    } else if (i < argc) {
        if (!strcmp(argv[i], "--"))
            i++;
        else if (argv[i][0] == '-') {
            usage(stderr);
            snprintf(err, sizeof(err),
                     "unknown option '%s' (use -- before a command that "
                     "starts with '-')",
                     argv[i]);
            return fatal(err);
        }
        if (i >= argc) {
            usage(stderr);
            return fatal("'--' must be followed by a command");
        }
        cmd = argv + i;
    }

    struct init_settings s;
    if (settings_from_env(&s, cmd || services, err, sizeof(err)) < 0)
        return fatal(err);

    static struct svc_spec specs[SPEC_MAX_SERVICE];
    int nspecs = 1;
    if (services) {
        nspecs = spec_load_file(services, specs, SPEC_MAX_SERVICE, err, sizeof(err));
        if (nspecs < 0)
            return fatal(err);
    } else if (main_spec(&specs[0], &s, cmd, err, sizeof(err)) < 0) {
        return fatal(err);
    }

    /* Signals: all handled through the signalfd; SIGPIPE ignored (a closed stdout is
     * handled by logmux). Children get a clean mask and default dispositions back. */
    sigset_t mask;
    sigemptyset(&mask);
    for (size_t k = 0; k < sizeof(forwarded) / sizeof(forwarded[0]); k++)
        sigaddset(&mask, forwarded[k]);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    int pid1 = getpid() == 1;
    if (!pid1 && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
        fprintf(stderr, "appliance-init: warning: PR_SET_CHILD_SUBREAPER: %s\n", strerror(errno));

    struct init_state st;
    memset(&st, 0, sizeof(st));
    char notes[256];
    if (hardening_prepare(&st.hard, &s, notes, sizeof(notes), err, sizeof(err)) < 0)
        return fatal(err);

    st.loop = evloop_new();
    st.mux = st.loop ? logmux_new(STDOUT_FILENO, s.log_format, s.container, s.role_label) : NULL;
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (!st.mux || sfd < 0)
        return fatal("cannot set up the event loop, log stream or signalfd");
    logmux_set_self(st.mux, "appliance-init", (int)getpid());

    if (notes[0])
        logmux_say(st.mux, "info", "%s", notes);
    if (s.role) {
        logmux_say(st.mux, "info",
                   "role %s: user %s%s, data dir %s, seccomp %s (%d syscalls allowed%s), stop "
                   "%s then %llu ms",
                   s.role->name, s.user, st.hard.drop ? "" : " (not applied)",
                   s.data_dir ? s.data_dir : "none", seccomp_mode_name(s.seccomp),
                   seccomp_policy_count(st.hard.seccomp),
                   s.seccomp == SECCOMP_KILL                  ? ""
                   : seccomp_policy_notifies(st.hard.seccomp) ? ", denials logged"
                                                              : ", denials NOT logged: kernel "
                                                                "lacks user notification",
                   spec_signal_name(s.stop_signal), (unsigned long long)s.stop_timeout_ms);
    } else {
        logmux_say(st.mux, "info",
                   "no ROLE: running the command without privilege drop or "
                   "seccomp");
    }

    struct sv_config cfg = {
        .specs = specs,
        .nspecs = (size_t)nspecs,
        .stop_timeout_ms = s.stop_timeout_ms,
        .kill_grace_ms = s.kill_grace_ms,
        .backoff = {BACKOFF_DEFAULT_MIN_MS, BACKOFF_DEFAULT_MAX_MS, s.healthy_ms},
        .mux = st.mux,
        .hooks = {.child_setup = s.role ? child_setup : NULL,
                  .child_fd = on_child_fd,
                  .pass_fd = st.hard.seccomp && seccomp_policy_notifies(st.hard.seccomp),
                  .arg = &st},
        .pid1 = pid1,
    };
    st.sv = supervisor_new(st.loop, &cfg);
    if (!st.sv || evloop_add_fd(st.loop, sfd, EPOLLIN, on_signal, &st) < 0)
        return fatal("cannot start the supervisor");

    supervisor_start(st.sv);
    flush_output(&st);
    while (!supervisor_finished(st.sv)) {
        if (evloop_run_once(st.loop, -1) < 0 && errno != EINTR) {
            logmux_say(st.mux, "error", "event loop: %s; killing every process", strerror(errno));
            break;
        }
        flush_output(&st);
    }
    if (!supervisor_finished(st.sv)) {
        /* The loop itself failed: still never leave a child behind. */
        if (pid1)
            kill(-1, SIGKILL);
        else
            proc_signal_descendants(getpid(), SIGKILL);
        while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
            ;
    }
    int status = supervisor_exit_status(st.sv);
    logmux_say(st.mux, "info", "all processes gone; exiting with status %d", status);
    if (st.out_watched)
        evloop_del_fd(st.loop, STDOUT_FILENO);
    supervisor_free(st.sv);
    logmux_free(st.mux);
    hardening_free(&st.hard);
    evloop_free(st.loop);
    close(sfd);
    for (int k = 0; k < nspecs; k++)
        spec_free(&specs[k]);
    settings_free(&s);
    return status;
}
