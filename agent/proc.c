/* fork/exec with a pidfd per child and a pipe for its output. */
#include "agent/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"

#define PROC_CAPTURE_MAX 65536
#define PROC_LINE_MAX    2048

struct proc {
    evloop *loop;
    pid_t pid;
    int pidfd;
    int outfd;
    proc_exit_cb cb;
    void *arg;
    char prefix[32];
    int quiet;
    char line[PROC_LINE_MAX];
    size_t line_len;
    char *capture;
    size_t cap_len;
};

static void flush_line(proc *p)
{
    if (p->line_len == 0)
        return;
    p->line[p->line_len] = '\0';
    if (!p->quiet)
        log_info("%s: %s", p->prefix, p->line);
    p->line_len = 0;
}

static void drain(proc *p)
{
    char buf[4096];
    for (;;) {
        ssize_t n = read(p->outfd, buf, sizeof(buf));
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; i++) {
            if (p->cap_len + 1 < PROC_CAPTURE_MAX && p->capture)
                p->capture[p->cap_len++] = buf[i];
            if (buf[i] == '\n') {
                flush_line(p);
            } else if (p->line_len < PROC_LINE_MAX - 1) {
                p->line[p->line_len++] = buf[i];
            } else {
                flush_line(p); /* over-long line: cut, never block */
                p->line[p->line_len++] = buf[i];
            }
        }
    }
    if (p->capture)
        p->capture[p->cap_len] = '\0';
}

static void on_output(evloop *loop, int fd, uint32_t events, void *arg)
{
    proc *p = arg;
    drain(p);
    if (events & (EPOLLHUP | EPOLLERR)) {
        /* The child (and everything that inherited the pipe) closed it. */
        evloop_del_fd(loop, fd);
        close(fd);
        p->outfd = -1;
    }
}

static void on_exit_fd(evloop *loop, int fd, uint32_t events, void *arg)
{
    proc *p = arg;
    int status = 0;
    pid_t r = waitpid(p->pid, &status, WNOHANG);
    if (r == 0)
        return; /* spurious */
    evloop_del_fd(loop, fd);
    close(fd);
    if (p->outfd >= 0) {
        drain(p);
        flush_line(p);
        evloop_del_fd(loop, p->outfd);
        close(p->outfd);
    }
    if (p->cb)
        p->cb(p, status, p->capture ? p->capture : "", p->arg);
    free(p->capture);
    free(p);
}

proc *proc_spawn(evloop *loop, char *const argv[], const proc_opts *o, proc_exit_cb cb, void *arg)
{
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0)
        return NULL;
    proc *p = calloc(1, sizeof(*p));
    if (!p) {
        close(pipefd[0]);
        close(pipefd[1]);
        return NULL;
    }
    p->capture = malloc(PROC_CAPTURE_MAX);
    p->loop = loop;
    p->cb = cb;
    p->arg = arg;
    p->quiet = o->quiet;
    snprintf(p->prefix, sizeof(p->prefix), "%s", o->log_prefix ? o->log_prefix : argv[0]);
    /* Environment: minimal and explicit; secrets travel via the pgpass file, not env. */
    char *env[32];
    size_t ne = 0;
    env[ne++] = "PATH=/usr/local/bin:/usr/bin:/bin";
    env[ne++] = "LC_ALL=C.UTF-8";
    for (char *const *e = o->extra_env; e && *e && ne < 30; e++)
        env[ne++] = *e;
    env[ne] = NULL;
    pid_t agent_pid = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(pipefd[0]);
        close(pipefd[1]);
        free(p->capture);
        free(p);
        return NULL;
    }
    if (pid == 0) {
        /* Default dispositions before unblocking: an ignored SIGINT/SIGQUIT is inherited
         * across exec (bash starts background jobs that way), and postgres would then drop
         * a fast-shutdown request that arrives before it installs its handlers. A signal
         * sent meanwhile stays pending (blocked here, as in the agent) and acts at once. */
        for (int s = 1; s < NSIG; s++)
            if (s != SIGKILL && s != SIGSTOP)
                signal(s, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        setpgid(0, 0); /* own process group: a terminal ^C to the agent is the agent's */
        int in = open(o->stdin_path ? o->stdin_path : "/dev/null", O_RDONLY);
        if (in >= 0 && in != 0) {
            dup2(in, 0);
            close(in);
        }
        dup2(pipefd[1], 1);
        dup2(pipefd[1], 2);
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
        if (o->uid != 0 && getuid() == 0) {
            if (setgroups(0, NULL) != 0 || setgid(o->gid) != 0 || setuid(o->uid) != 0) {
                dprintf(2, "cannot switch to uid %d: %s\n", (int)o->uid, strerror(errno));
                _exit(126);
            }
        }
        if (o->cwd && chdir(o->cwd) != 0) {
            dprintf(2, "cannot chdir to %s: %s\n", o->cwd, strerror(errno));
            _exit(126);
        }
        /* If the agent dies (a crash, an OOM kill), what it started must not run on
         * unmanaged: another member takes over once the lease expires, and a primary nobody
         * fences would take writes beside the new one (the restarted agent could not even
         * start postgres over the running one). Set after the uid switch, which clears it;
         * an agent that died before this line is caught by the parent check. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != agent_pid) {
            dprintf(2, "the agent is gone: not starting %s\n", argv[0]);
            _exit(125);
        }
        execve(argv[0], argv, env);
        dprintf(2, "cannot execute %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(pipefd[1]);
    p->pid = pid;
    p->outfd = pipefd[0];
    fcntl(p->outfd, F_SETFL, O_NONBLOCK);
    p->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (p->pidfd < 0) {
        log_error("pidfd_open(%d): %s", (int)pid, strerror(errno));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        close(p->outfd);
        free(p->capture);
        free(p);
        return NULL;
    }
    evloop_add_fd(loop, p->outfd, EPOLLIN, on_output, p);
    evloop_add_fd(loop, p->pidfd, EPOLLIN, on_exit_fd, p);
    return p;
}

pid_t proc_pid(const proc *p)
{
    return p->pid;
}

int proc_signal(proc *p, int sig)
{
    return kill(p->pid, sig);
}

void proc_detach(proc *p)
{
    p->cb = NULL;
}
