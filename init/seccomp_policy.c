/* Seccomp filter building, loading in the child, and the denial monitor in PID 1 (see
 * seccomp_policy.h). */
#include "seccomp_policy.h"

#include "supervisor/fdpass.h"
#include "seccomp_allow.h"

#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Each distinct denied syscall is logged the first few times per listener, then every
 * LOG_EVERY-th time with the count: a program retrying a denied call in a loop must not
 * flood the stream. */
#define LOG_FIRST  3
#define LOG_EVERY  1000
#define NR_TRACKED 512

struct monitor {
    struct seccomp_policy *p;
    struct monitor *next;
    evloop *loop;
    struct logmux *mux;
    int fd;
    char child[64];
    int pid;
    unsigned counts[NR_TRACKED];
};

struct seccomp_policy {
    scmp_filter_ctx ctx;
    enum seccomp_mode mode;
    int notify;
    int count;
    struct seccomp_notif *req;
    struct seccomp_notif_resp *resp;
    struct monitor *monitors;
};

static int add_list(struct seccomp_policy *p, const char *const *list, const char *what, char *err,
                    size_t errlen)
{
    for (; *list; list++) {
        int nr = seccomp_syscall_resolve_name(*list);
        if (nr == __NR_SCMP_ERROR) {
            snprintf(err, errlen, "seccomp: unknown syscall '%s' in the %s allowlist", *list, what);
            return -1;
        }
        int rc = seccomp_rule_add(p->ctx, SCMP_ACT_ALLOW, nr, 0);
        if (rc < 0 && rc != -EEXIST) {
            snprintf(err, errlen, "seccomp: cannot allow '%s' (%s allowlist): %s", *list, what,
                     strerror(-rc));
            return -1;
        }
    }
    return 0;
}

struct seccomp_policy *seccomp_policy_new(const struct role *role, enum seccomp_mode mode,
                                          char *err, size_t errlen)
{
    struct seccomp_policy *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "seccomp: out of memory");
        return NULL;
    }
    p->mode = mode;
    /* libseccomp API level 5 brings SCMP_ACT_NOTIFY; 6 means a kernel recent enough
     * (>= 5.7) that SECCOMP_USER_NOTIF_FLAG_CONTINUE, which SECCOMP_ACTION=log needs, exists
     * too. Below that, denials still get EPERM but cannot be logged. */
    p->notify = mode != SECCOMP_KILL && seccomp_api_get() >= 6;
    uint32_t def = mode == SECCOMP_KILL ? SCMP_ACT_KILL_PROCESS
                   : p->notify          ? SCMP_ACT_NOTIFY
                                        : SCMP_ACT_ERRNO(EPERM);
    p->ctx = seccomp_init(def);
    if (!p->ctx) {
        snprintf(err, errlen, "seccomp: seccomp_init failed");
        free(p);
        return NULL;
    }
    if (add_list(p, seccomp_allow_bootstrap, "bootstrap", err, errlen) < 0 ||
        add_list(p, seccomp_allow_base, "base", err, errlen) < 0 ||
        add_list(p, role->allowlist, role->name, err, errlen) < 0) {
        seccomp_policy_free(p);
        return NULL;
    }
    /* Count distinct allowed syscalls (lists overlap on purpose: each is complete alone). */
    const char *const *lists[] = {seccomp_allow_bootstrap, seccomp_allow_base, role->allowlist};
    int seen[1024] = {0};
    for (size_t l = 0; l < 3; l++)
        for (const char *const *n = lists[l]; *n; n++) {
            int nr = seccomp_syscall_resolve_name(*n);
            if (nr >= 0 && nr < 1024 && !seen[nr]) {
                seen[nr] = 1;
                p->count++;
            }
        }
    if (p->notify && seccomp_notify_alloc(&p->req, &p->resp) < 0) {
        snprintf(err, errlen, "seccomp: cannot allocate notification buffers");
        seccomp_policy_free(p);
        return NULL;
    }
    return p;
}

void seccomp_policy_free(struct seccomp_policy *p)
{
    if (!p)
        return;
    while (p->monitors) {
        struct monitor *m = p->monitors;
        p->monitors = m->next;
        evloop_del_fd(m->loop, m->fd);
        close(m->fd);
        free(m);
    }
    if (p->req)
        seccomp_notify_free(p->req, p->resp);
    if (p->ctx)
        seccomp_release(p->ctx);
    free(p);
}

int seccomp_policy_count(const struct seccomp_policy *p)
{
    return p->count;
}

int seccomp_policy_notifies(const struct seccomp_policy *p)
{
    return p->notify;
}

int seccomp_policy_load_child(struct seccomp_policy *p, int sock)
{
    int rc = seccomp_load(p->ctx);
    if (rc < 0)
        return -rc;
    if (!p->notify)
        return 0;
    int fd = seccomp_notify_fd(p->ctx);
    if (fd < 0)
        return EINVAL;
    if (sock < 0 || fdpass_send(sock, fd) < 0)
        return errno ? errno : EPIPE;
    close(fd);
    return 0;
}

/* ---- monitor ---- */

static void monitor_close(struct monitor *m)
{
    struct seccomp_policy *p = m->p;
    evloop_del_fd(m->loop, m->fd);
    close(m->fd);
    for (struct monitor **pp = &p->monitors; *pp; pp = &(*pp)->next) {
        if (*pp == m) {
            *pp = m->next;
            break;
        }
    }
    free(m);
}

static void comm_of(int pid, char *buf, size_t len)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/comm", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, len - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n <= 0) {
        snprintf(buf, len, "?");
        return;
    }
    buf[n] = '\0';
    char *nl = strchr(buf, '\n');
    if (nl)
        *nl = '\0';
}

static void on_listener(evloop *loop, int fd, uint32_t events, void *arg)
{
    struct monitor *m = arg;
    struct seccomp_policy *p = m->p;
    if (!(events & EPOLLIN)) {
        /* EPOLLHUP: every process using this filter is gone. */
        monitor_close(m);
        return;
    }
    /* The kernel wants a zeroed request buffer. */
    memset(p->req, 0, sizeof(*p->req));
    if (seccomp_notify_receive(fd, p->req) < 0) {
        /* ENOENT: the caller died meanwhile; anything else ends this listener. */
        if (errno != ENOENT && errno != EINTR)
            monitor_close(m);
        return;
    }
    int nr = p->req->data.nr;
    char *name = seccomp_syscall_resolve_num_arch(p->req->data.arch, nr);
    unsigned n = nr >= 0 && nr < NR_TRACKED ? ++m->counts[nr] : 1;
    if (n <= LOG_FIRST || n % LOG_EVERY == 0) {
        char comm[32];
        comm_of((int)p->req->pid, comm, sizeof(comm));
        char origin[96] = "";
        if ((int)p->req->pid != m->pid)
            snprintf(origin, sizeof(origin), " (under %s[%d])", m->child, m->pid);
        logmux_say(m->mux, "warn", "seccomp: %s %s in %s[%d]%s%s",
                   p->mode == SECCOMP_LOG ? "allowed (SECCOMP_ACTION=log)" : "denied",
                   name ? name : "?", comm, (int)p->req->pid, origin,
                   n > LOG_FIRST ? " (repeated; logging every 1000th)" : "");
    }
    free(name);
    memset(p->resp, 0, sizeof(*p->resp));
    p->resp->id = p->req->id;
    if (p->mode == SECCOMP_LOG) {
        p->resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    } else {
        p->resp->error = -EPERM;
    }
    /* ENOENT here too means the caller is gone: nothing to answer. */
    (void)seccomp_notify_respond(fd, p->resp);
}

void seccomp_monitor_add(struct seccomp_policy *p, evloop *loop, struct logmux *mux,
                         const char *child, int pid, int fd)
{
    struct monitor *m = calloc(1, sizeof(*m));
    if (!m) {
        close(fd);
        return;
    }
    m->p = p;
    m->loop = loop;
    m->mux = mux;
    m->fd = fd;
    m->pid = pid;
    snprintf(m->child, sizeof(m->child), "%s", child);
    if (evloop_add_fd(loop, fd, EPOLLIN, on_listener, m) < 0) {
        logmux_say(mux, "error", "seccomp: cannot watch the listener of %s[%d]: %s", child, pid,
                   strerror(errno));
        close(fd);
        free(m);
        return;
    }
    m->next = p->monitors;
    p->monitors = m;
}
