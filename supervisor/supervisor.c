/* Child supervision: spawn, readiness, restart with backoff, signals, shutdown (see
 * supervisor.h). Single-threaded, driven by the caller's evloop. */
#include "supervisor.h"

#include "fdpass.h"
#include "proc_tree.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* How often SIGKILL is repeated in the last phase: catches processes forked between the
 * walk and the kill. */
#define KILL_REPEAT_MS 200

enum svc_state { SVC_WAITING, SVC_RUNNING, SVC_BACKOFF, SVC_DONE };
enum sv_phase { PH_RUNNING, PH_STOPPING, PH_TERMINATING, PH_KILLING, PH_DONE };

struct supervisor;

/* One read end of a child's stdout/stderr pipe. It lives until EOF, which may come long
 * after the child exited (its own children can hold the pipe). */
struct pipe_watch {
    struct supervisor *sv;
    struct pipe_watch *next;
    int fd;
    int pid; /* the service process the pipe was made for */
    struct log_source *src;
};

struct svc {
    struct supervisor *sv;
    const struct svc_spec *spec;
    const char *display; /* child name in the log: basename of argv[0] or the spec name */
    enum svc_state state;
    pid_t pid;
    int ready;
    int notify_rd;
    int exec_failed;
    int stop_sent;
    int killed_by_us; /* SIGKILL from phase 3 */
    unsigned restarts;
    uint64_t started_ms;
    int final_code; /* meaningful in SVC_DONE */
    ev_timer *restart_timer;
};

struct supervisor {
    evloop *loop;
    struct sv_config cfg;
    struct svc *svcs;
    size_t n;
    enum sv_phase phase;
    int stop_requested;
    int stop_sig; /* SIGTERM or SIGINT: what init received */
    int exit_status;
    int exit_status_set;
    ev_timer *phase_timer;
    struct pipe_watch *pipes;
};

static void phase_terminate(struct supervisor *sv);
static void service_spawn(struct svc *s);

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s && s[1] ? s + 1 : p;
}

struct supervisor *supervisor_new(evloop *loop, const struct sv_config *cfg)
{
    struct supervisor *sv = calloc(1, sizeof(*sv));
    if (!sv)
        return NULL;
    sv->svcs = calloc(cfg->nspecs, sizeof(*sv->svcs));
    if (!sv->svcs) {
        free(sv);
        return NULL;
    }
    sv->loop = loop;
    sv->cfg = *cfg;
    sv->n = cfg->nspecs;
    for (size_t i = 0; i < sv->n; i++) {
        struct svc *s = &sv->svcs[i];
        s->sv = sv;
        s->spec = &cfg->specs[i];
        /* One main process is named after its program (appliance-agent, postgres, sh);
         * services from a services file by their service name. */
        s->display = sv->n == 1 ? base_name(s->spec->argv[0]) : s->spec->name;
        s->notify_rd = -1;
        s->state = SVC_WAITING;
    }
    return sv;
}

/* Closes and frees a watch already unlinked from sv->pipes. */
static void pipe_free(struct pipe_watch *w)
{
    struct supervisor *sv = w->sv;
    evloop_del_fd(sv->loop, w->fd);
    close(w->fd);
    logmux_source_close(sv->cfg.mux, w->src);
    free(w);
}

static void pipe_close(struct pipe_watch *w)
{
    for (struct pipe_watch **pp = &w->sv->pipes; *pp; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    }
    pipe_free(w);
}

void supervisor_free(struct supervisor *sv)
{
    if (!sv)
        return;
    while (sv->pipes) {
        struct pipe_watch *w = sv->pipes;
        sv->pipes = w->next;
        pipe_free(w);
    }
    for (size_t i = 0; i < sv->n; i++) {
        struct svc *s = &sv->svcs[i];
        if (s->restart_timer)
            evloop_timer_cancel(sv->loop, s->restart_timer);
        if (s->notify_rd >= 0) {
            evloop_del_fd(sv->loop, s->notify_rd);
            close(s->notify_rd);
        }
    }
    if (sv->phase_timer)
        evloop_timer_cancel(sv->loop, sv->phase_timer);
    free(sv->svcs);
    free(sv);
}

/* ---- output pipes ---- */

static void on_pipe(evloop *loop, int fd, uint32_t events, void *arg)
{
    struct pipe_watch *w = arg;
    /* One bounded read per turn and fd: level-triggered epoll then serves every child in
     * turn, so a flooding child gets its share and no more. */
    long n = logmux_source_read(w->sv->cfg.mux, w->src, fd);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
        pipe_close(w);
}

static int pipe_watch_add(struct supervisor *sv, int fd, const char *child, int pid,
                          const char *stream)
{
    struct pipe_watch *w = calloc(1, sizeof(*w));
    if (!w)
        return -1;
    w->sv = sv;
    w->fd = fd;
    w->pid = pid;
    w->src = logmux_source_new(sv->cfg.mux, child, pid, stream);
    if (!w->src || fcntl(fd, F_SETFL, O_NONBLOCK) < 0 ||
        evloop_add_fd(sv->loop, fd, EPOLLIN, on_pipe, w) < 0) {
        if (w->src)
            logmux_source_close(sv->cfg.mux, w->src);
        free(w);
        return -1;
    }
    w->next = sv->pipes;
    sv->pipes = w;
    return 0;
}

/* Reads what is left in every pipe (all writers are gone when this is called). */
static void pipes_drain(struct supervisor *sv)
{
    while (sv->pipes) {
        struct pipe_watch *w = sv->pipes;
        sv->pipes = w->next;
        int rounds = 0;
        /* Bounded: a pipe holds at most its capacity once the writers are gone. */
        while (logmux_source_read(sv->cfg.mux, w->src, w->fd) > 0 && rounds++ < 4096)
            logmux_flush(sv->cfg.mux);
        pipe_free(w);
    }
}

/* ---- dependencies and readiness ---- */

static struct svc *find_svc(struct supervisor *sv, const char *name)
{
    for (size_t i = 0; i < sv->n; i++)
        if (!strcmp(sv->svcs[i].spec->name, name))
            return &sv->svcs[i];
    return NULL;
}

static int deps_ready(struct svc *s)
{
    for (char *const *a = s->spec->after; *a; a++) {
        struct svc *d = find_svc(s->sv, *a);
        if (!d || d->state != SVC_RUNNING || !d->ready)
            return 0;
    }
    return 1;
}

static void start_waiting(struct supervisor *sv)
{
    if (sv->phase != PH_RUNNING)
        return;
    for (size_t i = 0; i < sv->n; i++)
        if (sv->svcs[i].state == SVC_WAITING && deps_ready(&sv->svcs[i]))
            service_spawn(&sv->svcs[i]);
}

static void set_ready(struct svc *s)
{
    s->ready = 1;
    start_waiting(s->sv);
}

static void notify_close(struct svc *s)
{
    if (s->notify_rd < 0)
        return;
    evloop_del_fd(s->sv->loop, s->notify_rd);
    close(s->notify_rd);
    s->notify_rd = -1;
}

static void on_notify(evloop *loop, int fd, uint32_t events, void *arg)
{
    struct svc *s = arg;
    char buf[128];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n > 0 && memchr(buf, '\n', (size_t)n)) {
        logmux_say(s->sv->cfg.mux, "info", "%s[%d] is ready", s->display, (int)s->pid);
        notify_close(s);
        set_ready(s);
        return;
    }
    if (n <= 0) {
        logmux_say(s->sv->cfg.mux, "warn",
                   "%s[%d] closed its notification fd %d without signalling readiness", s->display,
                   (int)s->pid, s->spec->notify_fd);
        notify_close(s);
    }
}

/* ---- spawning ---- */

struct spawn_report {
    int stage; /* 0: child setup (hardening) failed, 1: exec failed */
    int err;
};

static void child_fail(int fd, int stage, int err)
{
    struct spawn_report r = {stage, err};
    ssize_t w = write(fd, &r, sizeof(r));
    (void)w;
    _exit(err == ENOENT && stage == 1 ? 127 : 126);
}

static void __attribute__((noreturn))
child_run(struct svc *s, int out_w, int err_w, int notify_w, int report_w, int sock)
{
    const struct svc_spec *sp = s->spec;
    /* Back to a normal process: init blocks the forwarded signals for its signalfd and
     * ignores SIGPIPE; a program must start with neither. */
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_UNBLOCK, &all, NULL);
    signal(SIGPIPE, SIG_DFL);
    /* Own process group: a terminal's ^C reaches init, which forwards it once. */
    setpgid(0, 0);
    /* Move every fd we hand over out of the way first (>= 64, close-on-exec): a pipe may
     * sit at 0-2 when init was started with closed stdio, or at the very number of the
     * notification fd, and dup2(fd, fd) would keep its close-on-exec flag. */
    report_w = fcntl(report_w, F_DUPFD_CLOEXEC, 64);
    if (report_w < 0)
        _exit(126);
    if (sock >= 0 && (sock = fcntl(sock, F_DUPFD_CLOEXEC, 64)) < 0)
        child_fail(report_w, 0, errno);
    if ((out_w = fcntl(out_w, F_DUPFD_CLOEXEC, 64)) < 0 ||
        (err_w = fcntl(err_w, F_DUPFD_CLOEXEC, 64)) < 0 ||
        (notify_w >= 0 && (notify_w = fcntl(notify_w, F_DUPFD_CLOEXEC, 64)) < 0))
        child_fail(report_w, 0, errno);
    if (dup2(out_w, STDOUT_FILENO) < 0 || dup2(err_w, STDERR_FILENO) < 0)
        child_fail(report_w, 0, errno);
    if (notify_w >= 0 && dup2(notify_w, sp->notify_fd) < 0)
        child_fail(report_w, 0, errno);
    for (char *const *e = sp->env; *e; e++) {
        char kv[4096];
        snprintf(kv, sizeof(kv), "%s", *e);
        char *eq = strchr(kv, '=');
        if (eq) {
            *eq = '\0';
            setenv(kv, eq + 1, 1);
        }
    }
    if (s->sv->cfg.hooks.child_setup) {
        int e = s->sv->cfg.hooks.child_setup(s->sv->cfg.hooks.arg, sock);
        if (e)
            child_fail(report_w, 0, e);
    }
    execvp(sp->argv[0], sp->argv);
    child_fail(report_w, 1, errno);
    _exit(126); /* not reached */
}

static void close_pair(int p[2])
{
    if (p[0] >= 0)
        close(p[0]);
    if (p[1] >= 0)
        close(p[1]);
}

static void service_ended(struct svc *s, int status);

static void service_spawn(struct svc *s)
{
    struct supervisor *sv = s->sv;
    struct logmux *mux = sv->cfg.mux;
    int out[2] = {-1, -1}, err[2] = {-1, -1}, nfy[2] = {-1, -1}, rep[2] = {-1, -1};
    int sock[2] = {-1, -1};
    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 || pipe2(rep, O_CLOEXEC) < 0 ||
        (s->spec->notify_fd >= 0 && pipe2(nfy, O_CLOEXEC) < 0) ||
        (sv->cfg.hooks.pass_fd && socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sock) < 0)) {
        logmux_say(mux, "error", "cannot start %s: pipe: %s", s->display, strerror(errno));
        goto fail;
    }
    pid_t pid = fork();
    if (pid < 0) {
        logmux_say(mux, "error", "cannot start %s: fork: %s", s->display, strerror(errno));
        goto fail;
    }
    if (pid == 0)
        child_run(s, out[1], err[1], nfy[1], rep[1], sock[1]);
    setpgid(pid, pid); /* also here: no window where the group does not exist yet */
    close(out[1]);
    close(err[1]);
    close(rep[1]);
    if (nfy[1] >= 0)
        close(nfy[1]);
    if (sock[1] >= 0)
        close(sock[1]);
    s->pid = pid;
    s->state = SVC_RUNNING;
    s->ready = 0;
    s->stop_sent = 0;
    s->killed_by_us = 0;
    s->exec_failed = 0;
    s->started_ms = evloop_update_now(sv->loop);
    /* The report pipe closes on a successful exec (O_CLOEXEC) or carries the error: this
     * short blocking read is what lets exec failures be reported with their cause. */
    struct spawn_report r;
    ssize_t n;
    do
        n = read(rep[0], &r, sizeof(r));
    while (n < 0 && errno == EINTR);
    close(rep[0]);
    if (n == (ssize_t)sizeof(r)) {
        s->exec_failed = 1;
        if (r.stage == 1)
            logmux_say(mux, "error", "cannot execute %s: %s (exit %d)", s->spec->argv[0],
                       strerror(r.err), r.err == ENOENT ? 127 : 126);
        else
            logmux_say(mux, "error", "cannot prepare %s for exec: %s (exit 126)", s->spec->argv[0],
                       strerror(r.err));
    } else {
        logmux_say(mux, "info", "started %s[%d]: %s", s->display, (int)pid, s->spec->argv[0]);
    }
    if (sock[0] >= 0) {
        int fd = fdpass_recv(sock[0]);
        if (fd >= 0 && sv->cfg.hooks.child_fd)
            sv->cfg.hooks.child_fd(sv->cfg.hooks.arg, s->display, (int)pid, fd);
        else if (fd >= 0)
            close(fd);
        close(sock[0]);
    }
    if (pipe_watch_add(sv, out[0], s->display, (int)pid, "stdout") < 0)
        close(out[0]);
    if (pipe_watch_add(sv, err[0], s->display, (int)pid, "stderr") < 0)
        close(err[0]);
    if (nfy[0] >= 0) {
        s->notify_rd = nfy[0];
        if (fcntl(nfy[0], F_SETFL, O_NONBLOCK) < 0 ||
            evloop_add_fd(sv->loop, nfy[0], EPOLLIN, on_notify, s) < 0) {
            close(nfy[0]);
            s->notify_rd = -1;
        }
    }
    if (s->spec->notify_fd < 0 && !s->exec_failed)
        set_ready(s);
    return;
fail:
    close_pair(out);
    close_pair(err);
    close_pair(nfy);
    close_pair(rep);
    close_pair(sock);
    /* Treated like a failed run: the restart policy and backoff apply. */
    s->state = SVC_RUNNING;
    s->started_ms = evloop_update_now(sv->loop);
    service_ended(s, 126 << 8);
}

/* ---- exits and restarts ---- */

static void describe(int status, char *buf, size_t len)
{
    if (WIFSIGNALED(status))
        snprintf(buf, len, "killed by %s (%d)", spec_signal_name(WTERMSIG(status)),
                 WTERMSIG(status));
    else
        snprintf(buf, len, "exited with code %d", WEXITSTATUS(status));
}

static int status_code(int status)
{
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

/* The exit code this service contributes when it ends for good. */
static int final_code(const struct svc *s, int status)
{
    int code = status_code(status);
    if (!s->stop_sent)
        return code;
    if (s->killed_by_us)
        return 128 + SIGKILL;
    /* Ended because we asked: no 143. A shell reports 128+signal as an exit code. */
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    if (code == 0 || sig == SIGTERM || sig == SIGINT || sig == s->spec->stop_signal ||
        code == 128 + SIGTERM || code == 128 + SIGINT || code == 128 + s->spec->stop_signal)
        return 0;
    return code;
}

static void set_exit(struct supervisor *sv, int code)
{
    if (!sv->exit_status_set && code != 0) {
        sv->exit_status = code;
        sv->exit_status_set = 1;
    }
}

static int any_state(struct supervisor *sv, enum svc_state st)
{
    for (size_t i = 0; i < sv->n; i++)
        if (sv->svcs[i].state == st)
            return 1;
    return 0;
}

static void check_all_ended(struct supervisor *sv)
{
    if (any_state(sv, SVC_RUNNING) || any_state(sv, SVC_BACKOFF))
        return;
    for (size_t i = 0; i < sv->n; i++) {
        struct svc *s = &sv->svcs[i];
        if (s->state == SVC_WAITING) {
            if (sv->phase == PH_RUNNING)
                logmux_say(sv->cfg.mux, "warn", "%s not started: its dependencies ended",
                           s->display);
            s->state = SVC_DONE;
        }
    }
    if (sv->phase == PH_RUNNING || sv->phase == PH_STOPPING)
        phase_terminate(sv);
}

static void on_restart_timer(evloop *loop, void *arg)
{
    struct svc *s = arg;
    s->restart_timer = NULL;
    s->state = SVC_WAITING;
    if (deps_ready(s))
        service_spawn(s);
    /* else: started by start_waiting() once its dependencies are ready again. */
}

static void send_stop_signals(struct supervisor *sv);

static void service_ended(struct svc *s, int status)
{
    struct supervisor *sv = s->sv;
    uint64_t now = evloop_update_now(sv->loop);
    uint64_t up = now - s->started_ms;
    char what[64];
    describe(status, what, sizeof(what));
    int pid = (int)s->pid;
    s->pid = 0;
    s->ready = 0;
    notify_close(s);
    int code = status_code(status);
    int failed = code != 0;
    int permanent = s->exec_failed || (s->spec->permanent_exit >= 0 && WIFEXITED(status) &&
                                       code == s->spec->permanent_exit);
    int again =
        sv->phase == PH_RUNNING && !permanent &&
        (s->spec->restart == RESTART_ALWAYS || (s->spec->restart == RESTART_ON_FAILURE && failed));
    if (again) {
        s->restarts = backoff_after_run(&sv->cfg.backoff, s->restarts, up);
        uint64_t delay = backoff_delay_ms(&sv->cfg.backoff, s->restarts);
        s->restarts++;
        logmux_say(sv->cfg.mux, "warn",
                   "%s[%d] %s after %llu.%03llu s; restart %u in %llu.%03llu s (restart=%s)",
                   s->display, pid, what, (unsigned long long)(up / 1000),
                   (unsigned long long)(up % 1000), s->restarts, (unsigned long long)(delay / 1000),
                   (unsigned long long)(delay % 1000), spec_restart_name(s->spec->restart));
        s->state = SVC_BACKOFF;
        s->restart_timer = evloop_timer_start(sv->loop, delay, on_restart_timer, s);
        s->final_code = code;
        return;
    }
    s->state = SVC_DONE;
    s->final_code = final_code(s, status);
    const char *why = sv->phase != PH_RUNNING       ? "stopping"
                      : permanent && s->exec_failed ? "not restarted: cannot execute"
                      : permanent                   ? "not restarted: permanent failure exit code"
                                                    : "not restarted (restart=";
    logmux_say(sv->cfg.mux, failed && !s->stop_sent ? "warn" : "info",
               "%s[%d] %s after %llu.%03llu s; %s%s%s", s->display, pid, what,
               (unsigned long long)(up / 1000), (unsigned long long)(up % 1000), why,
               sv->phase == PH_RUNNING && !permanent ? spec_restart_name(s->spec->restart) : "",
               sv->phase == PH_RUNNING && !permanent ? ")" : "");
    set_exit(sv, s->final_code);
    if (sv->phase == PH_STOPPING)
        send_stop_signals(sv);
    check_all_ended(sv);
}

/* ---- signals and shutdown ---- */

static int has_running_dependent(struct supervisor *sv, const struct svc *s)
{
    for (size_t i = 0; i < sv->n; i++) {
        const struct svc *o = &sv->svcs[i];
        if (o->state != SVC_RUNNING)
            continue;
        for (char *const *a = o->spec->after; *a; a++)
            if (!strcmp(*a, s->spec->name))
                return 1;
    }
    return 0;
}

static void send_stop_signals(struct supervisor *sv)
{
    for (size_t i = 0; i < sv->n; i++) {
        struct svc *s = &sv->svcs[i];
        if (s->state != SVC_RUNNING || s->stop_sent || has_running_dependent(sv, s))
            continue;
        int sig = sv->stop_sig == SIGINT ? SIGINT : s->spec->stop_signal;
        s->stop_sent = 1;
        logmux_say(sv->cfg.mux, "info", "sending %s to %s[%d]", spec_signal_name(sig), s->display,
                   (int)s->pid);
        kill(s->pid, sig);
    }
}

/* Reaps every exited child; returns 1 if children remain, 0 when there are none. */
static int reap(struct supervisor *sv)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid == 0)
            return 1;
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            return 0; /* ECHILD */
        }
        struct svc *s = NULL;
        for (size_t i = 0; i < sv->n; i++)
            if (sv->svcs[i].pid == pid && sv->svcs[i].state == SVC_RUNNING)
                s = &sv->svcs[i];
        if (s) {
            /* Its last words first: what it wrote before exiting precedes the exit line. */
            for (struct pipe_watch **pp = &sv->pipes; *pp;) {
                struct pipe_watch *w = *pp;
                if (w->pid != pid) {
                    pp = &w->next;
                    continue;
                }
                long n;
                int rounds = 0;
                while ((n = logmux_source_read(sv->cfg.mux, w->src, w->fd)) > 0 && ++rounds < 16)
                    ;
                if (n == 0) {
                    *pp = w->next;
                    pipe_free(w);
                } else {
                    pp = &w->next;
                }
            }
            service_ended(s, status);
        }
        /* Anything else is an orphan re-parented to us: reaping it is the whole job. */
    }
}

static void phase_done(struct supervisor *sv)
{
    if (sv->phase_timer) {
        evloop_timer_cancel(sv->loop, sv->phase_timer);
        sv->phase_timer = NULL;
    }
    sv->phase = PH_DONE;
    pipes_drain(sv);
}

static int signal_remaining(struct supervisor *sv, int sig)
{
    int n = proc_signal_descendants(getpid(), sv->cfg.pid1 ? 0 : sig);
    if (sv->cfg.pid1)
        kill(-1, sig); /* every process of the namespace but us, escapees included */
    /* Each service leads its own process group: this reaches its children even when /proc
     * cannot be read (the walk above then found nothing). */
    for (size_t i = 0; i < sv->n; i++)
        if (sv->svcs[i].state == SVC_RUNNING && sv->svcs[i].pid > 0)
            kill(-sv->svcs[i].pid, sig);
    return n;
}

static void on_kill_repeat(evloop *loop, void *arg)
{
    struct supervisor *sv = arg;
    sv->phase_timer = NULL;
    if (!reap(sv)) {
        phase_done(sv);
        return;
    }
    signal_remaining(sv, SIGKILL);
    sv->phase_timer = evloop_timer_start(sv->loop, KILL_REPEAT_MS, on_kill_repeat, sv);
}

static void phase_kill(struct supervisor *sv)
{
    sv->phase = PH_KILLING;
    for (size_t i = 0; i < sv->n; i++)
        if (sv->svcs[i].state == SVC_RUNNING)
            sv->svcs[i].killed_by_us = 1;
    int n = signal_remaining(sv, SIGKILL);
    logmux_say(sv->cfg.mux, "warn", "grace period over: SIGKILL to %d remaining process(es)", n);
    sv->phase_timer = evloop_timer_start(sv->loop, KILL_REPEAT_MS, on_kill_repeat, sv);
}

static void on_grace_timeout(evloop *loop, void *arg)
{
    struct supervisor *sv = arg;
    sv->phase_timer = NULL;
    if (!reap(sv))
        phase_done(sv);
    else
        phase_kill(sv);
}

static void phase_terminate(struct supervisor *sv)
{
    if (sv->phase_timer) {
        evloop_timer_cancel(sv->loop, sv->phase_timer);
        sv->phase_timer = NULL;
    }
    sv->phase = PH_TERMINATING;
    if (!reap(sv)) {
        phase_done(sv);
        return;
    }
    for (size_t i = 0; i < sv->n; i++)
        if (sv->svcs[i].state == SVC_RUNNING)
            sv->svcs[i].stop_sent = 1;
    int n = signal_remaining(sv, SIGTERM);
    logmux_say(sv->cfg.mux, "info",
               "SIGTERM to %d remaining process(es); SIGKILL in %llu ms if still there", n,
               (unsigned long long)sv->cfg.kill_grace_ms);
    sv->phase_timer = evloop_timer_start(sv->loop, sv->cfg.kill_grace_ms, on_grace_timeout, sv);
}

static void on_stop_timeout(evloop *loop, void *arg)
{
    struct supervisor *sv = arg;
    sv->phase_timer = NULL;
    logmux_say(sv->cfg.mux, "warn", "stop timeout (%llu ms) reached with services running",
               (unsigned long long)sv->cfg.stop_timeout_ms);
    phase_terminate(sv);
}

static void request_stop(struct supervisor *sv, int sig)
{
    if (sv->phase != PH_RUNNING) {
        logmux_say(sv->cfg.mux, "info", "%s received while already stopping; ignored",
                   spec_signal_name(sig));
        return;
    }
    sv->stop_requested = 1;
    sv->stop_sig = sig;
    sv->phase = PH_STOPPING;
    logmux_say(sv->cfg.mux, "info", "%s received: stopping (timeout %llu ms)",
               spec_signal_name(sig), (unsigned long long)sv->cfg.stop_timeout_ms);
    for (size_t i = 0; i < sv->n; i++) {
        struct svc *s = &sv->svcs[i];
        if (s->state == SVC_BACKOFF) {
            evloop_timer_cancel(sv->loop, s->restart_timer);
            s->restart_timer = NULL;
            s->state = SVC_DONE; /* final_code: its last failure, kept honest */
            set_exit(sv, s->final_code);
        } else if (s->state == SVC_WAITING) {
            s->state = SVC_DONE;
            s->final_code = 0;
        }
    }
    send_stop_signals(sv);
    sv->phase_timer = evloop_timer_start(sv->loop, sv->cfg.stop_timeout_ms, on_stop_timeout, sv);
    check_all_ended(sv);
}

void supervisor_signal(struct supervisor *sv, int sig)
{
    if (sig == SIGTERM || sig == SIGINT) {
        request_stop(sv, sig);
        return;
    }
    for (size_t i = 0; i < sv->n; i++) {
        struct svc *s = &sv->svcs[i];
        if (s->state != SVC_RUNNING)
            continue;
        /* Terminal resizes are frequent and say nothing about the service. */
        if (sig != SIGWINCH)
            logmux_say(sv->cfg.mux, "info", "forwarding %s to %s[%d]", spec_signal_name(sig),
                       s->display, (int)s->pid);
        kill(s->pid, sig);
    }
}

void supervisor_reap(struct supervisor *sv)
{
    int remain = reap(sv);
    if (!remain && (sv->phase == PH_TERMINATING || sv->phase == PH_KILLING))
        phase_done(sv);
}

void supervisor_start(struct supervisor *sv)
{
    start_waiting(sv);
    check_all_ended(sv);
}

int supervisor_finished(const struct supervisor *sv)
{
    return sv->phase == PH_DONE;
}

int supervisor_exit_status(const struct supervisor *sv)
{
    return sv->exit_status_set ? sv->exit_status : 0;
}
