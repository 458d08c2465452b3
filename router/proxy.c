/* TCP proxy core on lib/evloop.
 *
 * Both sockets of a session are registered once, edge-triggered, for IN|OUT|RDHUP; the
 * session keeps a readiness flag per socket and direction, set by events and cleared by
 * EAGAIN, so no epoll_ctl call is made per transfer. A direction borrows a pooled buffer
 * (or pipe, in splice mode) only while bytes are in flight: a request/response exchange
 * is recv -> send on the same turn, and 10,000 idle sessions hold no buffers at all.
 *
 * Half-close: EOF from one side is forwarded as shutdown(SHUT_WR) to the other once the
 * buffered bytes are written; the session ends when both directions are shut, on an
 * error, on the idle timeout, or when its target is withdrawn. */
#include "router/proxy.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "router/backend.h"
#include "router/nat_path.h"
#include "router/pg_refuse.h"
#include "router/select.h"
#include "router/sockmap.h"

/* S_NEW: accepted (or taken off the hold queue), on no list yet.
 * S_WAIT: accepted, waiting for the client's first byte before choosing a backend
 * (limits.connect_on_first_byte; on the listener's waiting list).
 * S_REFUSING: refused, but the client opened with an SSL/GSS request: it got 'N' and the
 * FATAL message follows its startup packet (also on the waiting list). */
enum { S_NEW, S_WAIT, S_HELD, S_CONNECTING, S_OPEN, S_REFUSING };

struct half {
    pool_buf *b;
    uint32_t off, len;
    pool_pipe *pp;
    size_t inpipe;
    uint8_t eof;      /* source sent FIN */
    uint8_t shut;     /* FIN forwarded to the destination */
    uint64_t counted; /* bytes of this direction already in the counters */
};

struct session {
    session *prev, *next;
    router *r;
    backend *be;
    uint8_t lsn, state, as_fallback;
    uint8_t splice; /* data path chosen at accept; a reload does not switch it midway */
    uint8_t kernel; /* paired in the sockmap: the kernel moves the bytes (router/sockmap.h) */
    /* Readiness, per socket and direction. rd: 0 drained, 1 readable, 2 readable and the
     * peer's FIN/RST already signalled (a short read must not clear it: no new edge would
     * announce the EOF). */
    uint8_t c_rd, c_wr, s_rd, s_wr;
    int cfd, sfd;
    struct half up;   /* client -> server */
    struct half down; /* server -> client */
    uint32_t attempts;
    backend_load *load; /* the shared 5001 count this session added to, if any */
    uint64_t accepted_ms, last_active_ms;
    uint64_t drain_since_ms; /* kernel mode: first time an EOF waited for in-flight bytes */
    ev_timer *timer;
};

/* ---- lists ---- */

static void list_push(session_list *l, session *s)
{
    s->prev = NULL;
    s->next = l->head;
    if (l->head)
        l->head->prev = s;
    l->head = s;
    l->count++;
}

static void list_remove(session_list *l, session *s, session **tail)
{
    if (!l || !s) /* never: keeps the static analyzer's path model honest */
        return;
    if (s->prev)
        s->prev->next = s->next;
    else
        l->head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else if (tail)
        *tail = s->prev;
    s->prev = s->next = NULL;
    l->count--;
}

static void held_append(proxy_listener *pl, session *s)
{
    s->next = NULL;
    s->prev = pl->held_tail;
    if (pl->held_tail)
        pl->held_tail->next = s;
    else
        pl->held.head = s;
    pl->held_tail = s;
    pl->held.count++;
}

/* ---- helpers ---- */

static void set_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void release_half(buffer_pool *p, struct half *h)
{
    if (h->b) {
        buffer_pool_put(p, h->b);
        h->b = NULL;
    }
    if (h->pp) {
        if (h->inpipe)
            buffer_pool_drop_pipe(p, h->pp);
        else
            buffer_pool_put_pipe(p, h->pp);
        h->pp = NULL;
    }
    h->off = h->len = 0;
    h->inpipe = 0;
}

static void detach_backend(session *s)
{
    if (!s->be)
        return;
    backend *b = s->be;
    list_remove(&b->sessions[s->lsn], s, NULL);
    b->st[s->lsn].scur--;
    if (s->load) {
        atomic_fetch_sub_explicit(&s->load->replicas_cur, 1, memory_order_relaxed);
        s->load = NULL;
    }
    s->be = NULL;
}

static void count_bytes(session *s, int upstream, size_t n);

/* Data bytes a source socket received: TCP_INFO counts a received FIN as one more (it
 * advances rcv_nxt). */
static int64_t received(int fd, const struct half *h)
{
    int64_t n = sockmap_bytes_received(fd);
    return n > 0 && h->eof ? n - 1 : n;
}

/* Kernel mode: the bytes never pass user space, so the counters catch up from what each
 * source socket has received (TCP_INFO), minus what was already counted. */
static void kernel_account(session *s)
{
    if (!s->kernel || !s->be)
        return;
    int64_t up = received(s->cfd, &s->up), down = received(s->sfd, &s->down);
    if (up > 0 && (uint64_t)up > s->up.counted)
        count_bytes(s, 1, (size_t)((uint64_t)up - s->up.counted));
    if (down > 0 && (uint64_t)down > s->down.counted)
        count_bytes(s, 0, (size_t)((uint64_t)down - s->down.counted));
}

enum close_reason { CLOSE_DONE, CLOSE_CLIENT_ERR, CLOSE_SERVER_ERR, CLOSE_KILLED, CLOSE_REFUSED };

static void session_close(session *s, enum close_reason why)
{
    router *r = s->r;
    proxy_listener *pl = &r->lsn[s->lsn];
    if (s->timer) {
        evloop_timer_cancel(r->loop, s->timer);
        s->timer = NULL;
    }
    if (s->kernel && s->be) {
        /* A FIN user space has not read yet still counts in TCP_INFO: note it first
         * (poll's RDHUP is the socket's shutdown state; recv() can return 0 early). */
        struct pollfd p[2] = {{.fd = s->cfd, .events = POLLRDHUP},
                              {.fd = s->sfd, .events = POLLRDHUP}};
        if (poll(p, 2, 0) > 0) {
            s->up.eof |= (p[0].revents & POLLRDHUP) != 0;
            s->down.eof |= (p[1].revents & POLLRDHUP) != 0;
        }
        kernel_account(s); /* before the sockets go (closing them also leaves the map) */
    }
    if (s->be) {
        server_stats *st = &s->be->st[s->lsn];
        if (why == CLOSE_CLIENT_ERR)
            st->cli_abrt++;
        else if (why == CLOSE_SERVER_ERR)
            st->srv_abrt++;
        else if (why == CLOSE_KILLED)
            st->killed++;
    }
    if (s->state == S_HELD) {
        list_remove(&pl->held, s, &pl->held_tail);
        pl->fe.qcur--;
    } else if (s->state == S_WAIT || s->state == S_REFUSING) {
        list_remove(&pl->waiting, s, NULL);
    }
    detach_backend(s);
    if (why == CLOSE_REFUSED) {
        pl->fe.denied++;
        /* Never opened, so nothing was sent to the client yet: tell it why. */
        if (s->cfd >= 0)
            pg_refuse(s->cfd, "57P03",
                      s->lsn == LSN_PRIMARY
                          ? "appliance-router: no primary available (switchover or failover in "
                            "progress?)"
                          : "appliance-router: no replica available");
    }
    if (s->sfd >= 0) {
        evloop_del_fd(r->loop, s->sfd);
        close(s->sfd);
    }
    if (s->cfd >= 0) {
        evloop_del_fd(r->loop, s->cfd);
        close(s->cfd);
    }
    release_half(&r->pool, &s->up);
    release_half(&r->pool, &s->down);
    pl->fe.scur--;
    r->sessions_total_cur--;
    if (r->all_sessions)
        atomic_fetch_sub_explicit(r->all_sessions, 1, memory_order_relaxed);
    free(s);
}

/* ---- data transfer ---- */

enum { XFER_OK = 0, XFER_SRC_ERR = -1, XFER_DST_ERR = -2 };

static void count_bytes(session *s, int upstream, size_t n)
{
    router *r = s->r;
    server_stats *st = &s->be->st[s->lsn];
    frontend_stats *fe = &r->lsn[s->lsn].fe;
    (upstream ? &s->up : &s->down)->counted += n;
    if (upstream) {
        st->bin += n;
        fe->bin += n;
    } else {
        st->bout += n;
        fe->bout += n;
    }
}

static int xfer_copy(session *s, struct half *h, int src, int dst, uint8_t *rd, uint8_t *wr,
                     int upstream)
{
    buffer_pool *pool = &s->r->pool;
    for (;;) {
        if (h->len) {
            if (!*wr)
                return XFER_OK;
            ssize_t n = send(dst, h->b->data + h->off, h->len, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    *wr = 0;
                    return XFER_OK;
                }
                if (errno == EINTR)
                    continue;
                return XFER_DST_ERR;
            }
            if ((size_t)n < h->len)
                *wr = 0; /* socket buffer full; EPOLLOUT will fire when it drains */
            h->off += (uint32_t)n;
            h->len -= (uint32_t)n;
            if (h->len == 0) {
                buffer_pool_put(pool, h->b);
                h->b = NULL;
                h->off = 0;
            }
            continue;
        }
        if (h->eof || !*rd)
            return XFER_OK;
        if (!h->b) {
            h->b = buffer_pool_get(pool);
            if (!h->b)
                return XFER_SRC_ERR; /* out of memory: drop this session, not the router */
        }
        ssize_t n = recv(src, h->b->data, h->b->size, MSG_DONTWAIT);
        if (n > 0) {
            h->len = (uint32_t)n;
            h->off = 0;
            count_bytes(s, upstream, (size_t)n);
            /* A short read drained the socket: with edge triggering the next arrival
             * raises a new event, so the EAGAIN read is skipped (2 syscalls per round
             * trip). */
            if ((size_t)n < h->b->size && *rd == 1)
                *rd = 0;
            continue;
        }
        buffer_pool_put(pool, h->b);
        h->b = NULL;
        if (n == 0 && s->kernel && *rd != 2) {
            /* A spliced socket's recv() can return 0 with no FIN while the verdict program
             * works through its queue (seen on 6.18 under load: the session then ended
             * before the data); a real FIN raises RDHUP, which set rd to 2. */
            *rd = 0;
            return XFER_OK;
        }
        if (n == 0) {
            h->eof = 1;
            return XFER_OK;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            *rd = 0;
            return XFER_OK;
        }
        if (errno == EINTR)
            continue;
        return XFER_SRC_ERR;
    }
}

static int xfer_splice(session *s, struct half *h, int src, int dst, uint8_t *rd, uint8_t *wr,
                       int upstream)
{
    buffer_pool *pool = &s->r->pool;
    for (;;) {
        if (h->inpipe) {
            if (!*wr)
                return XFER_OK;
            ssize_t n =
                splice(h->pp->fd[0], NULL, dst, NULL, h->inpipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n < 0) {
                if (errno == EAGAIN) {
                    *wr = 0;
                    return XFER_OK;
                }
                if (errno == EINTR)
                    continue;
                return XFER_DST_ERR;
            }
            if ((size_t)n < h->inpipe)
                *wr = 0;
            h->inpipe -= (size_t)n;
            if (!h->inpipe) {
                buffer_pool_put_pipe(pool, h->pp);
                h->pp = NULL;
            }
            continue;
        }
        if (h->eof || !*rd)
            return XFER_OK;
        if (!h->pp) {
            h->pp = buffer_pool_get_pipe(pool);
            if (!h->pp)
                return XFER_SRC_ERR;
        }
        ssize_t n = splice(src, NULL, h->pp->fd[1], NULL, pool->buf_size,
                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
            h->inpipe = (size_t)n;
            count_bytes(s, upstream, (size_t)n);
            if ((size_t)n < pool->buf_size && *rd == 1)
                *rd = 0;
            continue;
        }
        buffer_pool_put_pipe(pool, h->pp);
        h->pp = NULL;
        if (n == 0) {
            h->eof = 1;
            return XFER_OK;
        }
        /* The pipe is empty here, so EAGAIN is the socket's. */
        if (errno == EAGAIN) {
            *rd = 0;
            return XFER_OK;
        }
        if (errno == EINTR)
            continue;
        return XFER_SRC_ERR;
    }
}

static int half_empty(const struct half *h)
{
    return h->len == 0 && h->inpipe == 0;
}

static void on_timer(evloop *loop, void *arg);

/* Kernel mode: may the FIN from src be forwarded to dst yet? Segments the verdict program
 * redirected can still wait in the kernel's queue for dst (a worker sends them), and a
 * shutdown(SHUT_WR) before them would lose them. Everything src received is written to dst
 * once dst's written count catches up. Gives up waiting after 2 s (a wedged peer). */
static int kernel_drained(session *s, const struct half *h, int src, int dst)
{
    if (!s->kernel)
        return 1;
    int64_t in = received(src, h), out = sockmap_bytes_written(dst);
    uint64_t now = evloop_now_ms(s->r->loop);
    if (in < 0 || out < 0 || out >= in) {
        s->drain_since_ms = 0;
        return 1;
    }
    if (!s->drain_since_ms)
        s->drain_since_ms = now;
    if (now - s->drain_since_ms >= 2000) {
        log_warn("router: %lld bytes still queued in the kernel after 2 s; forwarding EOF anyway",
                 (long long)(in - out));
        return 1;
    }
    if (!s->timer)
        s->timer = evloop_timer_start(s->r->loop, 1, on_timer, s);
    return 0;
}

/* Moves bytes both ways. Returns 0 while the session lives, -1 once it was closed. */
static int session_pump(session *s)
{
    int splice_mode = s->splice;
    int rc = splice_mode ? xfer_splice(s, &s->up, s->cfd, s->sfd, &s->c_rd, &s->s_wr, 1)
                         : xfer_copy(s, &s->up, s->cfd, s->sfd, &s->c_rd, &s->s_wr, 1);
    if (rc != XFER_OK) {
        session_close(s, rc == XFER_SRC_ERR ? CLOSE_CLIENT_ERR : CLOSE_SERVER_ERR);
        return -1;
    }
    rc = splice_mode ? xfer_splice(s, &s->down, s->sfd, s->cfd, &s->s_rd, &s->c_wr, 0)
                     : xfer_copy(s, &s->down, s->sfd, s->cfd, &s->s_rd, &s->c_wr, 0);
    if (rc != XFER_OK) {
        session_close(s, rc == XFER_SRC_ERR ? CLOSE_SERVER_ERR : CLOSE_CLIENT_ERR);
        return -1;
    }
    if (s->up.eof && !s->up.shut && half_empty(&s->up) &&
        kernel_drained(s, &s->up, s->cfd, s->sfd)) {
        shutdown(s->sfd, SHUT_WR);
        s->up.shut = 1;
    }
    if (s->down.eof && !s->down.shut && half_empty(&s->down) &&
        kernel_drained(s, &s->down, s->sfd, s->cfd)) {
        shutdown(s->cfd, SHUT_WR);
        s->down.shut = 1;
    }
    if (s->up.shut && s->down.shut) {
        session_close(s, CLOSE_DONE);
        return -1;
    }
    s->last_active_ms = evloop_now_ms(s->r->loop);
    return 0;
}

/* ---- connect / hold ---- */

static void session_dispatch(session *s);

static void on_server_event(evloop *loop, int fd, uint32_t ev, void *arg);

/* Turns a client away with a PostgreSQL FATAL message. A client that opened with an
 * SSLRequest/GSSENCRequest would not show an error sent in answer to it (libpq since
 * 15.9/CVE-2024-10977 distrusts pre-TLS errors): it gets 'N' first, and the message once
 * its plain startup packet arrives (or the session ends after one second). */
static void refuse(session *s)
{
    router *r = s->r;
    unsigned char req[8];
    if (s->state != S_REFUSING && s->cfd >= 0 &&
        recv(s->cfd, req, sizeof(req), MSG_PEEK | MSG_DONTWAIT) == (ssize_t)sizeof(req) &&
        req[0] == 0 && req[1] == 0 && req[2] == 0 && req[3] == 8 && req[4] == 0x04 &&
        req[5] == 0xd2 && req[6] == 0x16 && (req[7] == 0x2f || req[7] == 0x30)) {
        if (s->timer)
            evloop_timer_cancel(r->loop, s->timer);
        s->timer = NULL;
        if (s->state == S_HELD) {
            list_remove(&r->lsn[s->lsn].held, s, &r->lsn[s->lsn].held_tail);
            r->lsn[s->lsn].fe.qcur--;
        }
        s->state = S_NEW; /* on no list now: a failure below closes it plainly */
        detach_backend(s);
        if (recv(s->cfd, req, sizeof(req), MSG_DONTWAIT) == (ssize_t)sizeof(req) &&
            send(s->cfd, "N", 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1) {
            s->state = S_REFUSING;
            list_push(&r->lsn[s->lsn].waiting, s);
            s->timer = evloop_timer_start(r->loop, 1000, on_timer, s);
            if (s->timer)
                return;
        }
    }
    session_close(s, CLOSE_REFUSED);
}

static void on_timer(evloop *loop, void *arg)
{
    session *s = arg;
    s->timer = NULL;
    if (s->state == S_REFUSING) {
        session_close(s, CLOSE_REFUSED);
        return;
    }
    if (s->state == S_HELD) {
        log_debug("router: %s: no target within %u ms, refusing a held client",
                  s->lsn == LSN_PRIMARY ? "primary" : "replicas", s->r->cfg.hold_ms);
        refuse(s);
        return;
    }
    if (s->state == S_CONNECTING) {
        errno = ETIMEDOUT;
        on_server_event(loop, s->sfd, EPOLLERR, s);
        return;
    }
    if (s->state == S_OPEN) /* kernel mode: an EOF waits for in-flight bytes */
        session_pump(s);
}

/* Hands a session to the kernel (data_path.splice: sockmap) as soon as it opens, while no
 * byte is buffered in user space. Bytes already queued on either socket (the client's
 * startup packet, read only by a MSG_PEEK so far) are not seen by the verdict program,
 * which runs on arrival: sockmap_kick runs it over the queue, in order, under the socket
 * lock, so nothing can overtake them. User space keeps EOF, errors and the session's end:
 * the sockets stay registered for RDHUP only (data no longer wakes the router). */
static void kernel_pair(session *s)
{
    router *r = s->r;
    if (!r->sockmap || s->kernel || s->splice || !half_empty(&s->up) || !half_empty(&s->down) ||
        s->up.eof || s->down.eof)
        return;
    if (sockmap_pair(r->sockmap, s->cfd, s->sfd) < 0) {
        log_debug("router: sockmap pairing failed (%s); the session stays in user space",
                  strerror(errno));
        return;
    }
    s->kernel = 1;
    r->kernel_paired++;
    evloop_mod_fd(r->loop, s->cfd, EPOLLRDHUP | EPOLLET);
    evloop_mod_fd(r->loop, s->sfd, EPOLLRDHUP | EPOLLET);
    if (sockmap_kick(s->cfd) < 0 || sockmap_kick(s->sfd) < 0)
        log_warn("router: SO_RCVLOWAT on a spliced session: %s", strerror(errno));
}

static void hold_or_refuse(session *s)
{
    router *r = s->r;
    proxy_listener *pl = &r->lsn[s->lsn];
    uint64_t now = evloop_now_ms(r->loop);
    uint64_t deadline = s->accepted_ms + r->cfg.hold_ms;
    if (r->cfg.hold_ms == 0 || now >= deadline || pl->held.count >= r->cfg.hold_max) {
        refuse(s);
        return;
    }
    s->state = S_HELD;
    held_append(pl, s);
    pl->fe.qcur++;
    pl->fe.held_total++;
    if (pl->fe.qcur > pl->fe.qmax)
        pl->fe.qmax = pl->fe.qcur;
    s->timer = evloop_timer_start(r->loop, deadline - now, on_timer, s);
    if (!s->timer)
        refuse(s);
}

static void connect_failed(session *s, int err)
{
    router *r = s->r;
    backend *b = s->be;
    if (b) {
        b->st[s->lsn].econ++;
        log_warn("router: connect to %s (%s:%u) failed: %s", b->conf.name, b->conf.host,
                 (unsigned)b->conf.port, strerror(err));
        backend_note_connect_failure(r, b);
    }
    if (s->timer) {
        evloop_timer_cancel(r->loop, s->timer);
        s->timer = NULL;
    }
    detach_backend(s);
    if (s->sfd >= 0) {
        evloop_del_fd(r->loop, s->sfd);
        close(s->sfd);
        s->sfd = -1;
    }
    s->s_rd = s->s_wr = 0;
    /* HAProxy's "retries": try again at once (the selection may have moved meanwhile).
     * When attempts are used up the client waits in the hold queue for the rest of its
     * hold window (a dying primary is usually replaced within it), then is refused:
     * never left hanging. */
    if (s->attempts <= r->cfg.retries) {
        session_dispatch(s);
        return;
    }
    hold_or_refuse(s);
}

static void session_connect(session *s, backend *b, int as_fallback)
{
    router *r = s->r;
    s->attempts++;
    s->be = b;
    s->as_fallback = (uint8_t)as_fallback;
    list_push(&b->sessions[s->lsn], s);
    if (s->lsn == LSN_REPLICAS && b->load) {
        s->load = b->load;
        atomic_fetch_add_explicit(&s->load->replicas_cur, 1, memory_order_relaxed);
    }
    server_stats *st = &b->st[s->lsn];
    st->scur++;
    st->stot++;
    if (st->scur > st->smax)
        st->smax = st->scur;
    st->lastsess_ms = evloop_now_ms(r->loop);
    s->state = S_CONNECTING;
    int fd = socket(b->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        connect_failed(s, errno);
        return;
    }
    set_nodelay(fd);
    s->sfd = fd;
    if (connect(fd, (struct sockaddr *)&b->addr, b->addrlen) < 0 && errno != EINPROGRESS) {
        connect_failed(s, errno);
        return;
    }
    if (evloop_add_fd(r->loop, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, on_server_event, s) <
        0) {
        connect_failed(s, errno);
        return;
    }
    s->timer = evloop_timer_start(r->loop, r->cfg.connect_timeout_ms, on_timer, s);
    if (!s->timer)
        session_close(s, CLOSE_REFUSED);
}

static void session_dispatch(session *s)
{
    router *r = s->r;
    backend *b = NULL;
    int fallback = 0;
    if (s->lsn == LSN_PRIMARY)
        b = r->write_target;
    else
        b = select_replica(r, &r->rr, &fallback);
    if (!b) {
        hold_or_refuse(s);
        return;
    }
    session_connect(s, b, fallback);
}

static void on_server_event(evloop *loop, int fd, uint32_t ev, void *arg)
{
    session *s = arg;
    if (s->state == S_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (ev & EPOLLERR) {
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err == 0)
                err = errno ? errno : ECONNREFUSED;
        } else if (!(ev & (EPOLLOUT | EPOLLHUP))) {
            return;
        } else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) {
            err = errno;
        }
        if (err == 0 && (ev & EPOLLHUP))
            err = ECONNRESET;
        if (err) {
            connect_failed(s, err);
            return;
        }
        evloop_timer_cancel(loop, s->timer);
        s->timer = NULL;
        s->state = S_OPEN;
        s->s_wr = 1;
        s->s_rd = (ev & (EPOLLRDHUP | EPOLLHUP)) ? 2 : 1; /* one EAGAIN at most */
        kernel_pair(s);
        session_pump(s);
        return;
    }
    if (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        s->s_rd = 2;
    else if ((ev & EPOLLIN) && !s->s_rd)
        s->s_rd = 1;
    if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        s->s_wr = 1;
    session_pump(s);
}

static void on_client_event(evloop *loop, int fd, uint32_t ev, void *arg)
{
    session *s = arg;
    if (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        s->c_rd = 2;
    else if ((ev & EPOLLIN) && !s->c_rd)
        s->c_rd = 1;
    if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        s->c_wr = 1;
    if (s->state == S_OPEN) {
        session_pump(s);
        return;
    }
    if (s->state == S_REFUSING) {
        if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            session_close(s, CLOSE_REFUSED); /* reads the startup packet, sends the FATAL */
        return;
    }
    if (s->state == S_WAIT && (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
        char probe;
        ssize_t n = recv(fd, &probe, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
            session_close(s, CLOSE_DONE); /* left without a word: no backend involved */
            return;
        }
        if (n < 0)
            return;
        /* First bytes (a PostgreSQL startup packet): now choose and connect. The hold
         * window starts now, not at accept. */
        list_remove(&s->r->lsn[s->lsn].waiting, s, NULL);
        s->state = S_NEW;
        s->accepted_ms = evloop_now_ms(loop);
        session_dispatch(s);
        return;
    }
    /* Waiting, held or connecting: nothing to forward yet, but a client that gives up (closes or
     * resets) is dropped now instead of occupying a queue slot. Bytes it already sent wait
     * in the socket until the session opens. */
    if (ev & (EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
        char probe;
        ssize_t n = recv(fd, &probe, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            session_close(s, CLOSE_CLIENT_ERR);
    }
}

/* ---- accept ---- */

static void listener_resume(evloop *loop, void *arg)
{
    proxy_listener *pl = arg;
    pl->resume = NULL;
    if (pl->fd >= 0)
        evloop_mod_fd(loop, pl->fd, EPOLLIN);
}

static void rate_tick(frontend_stats *fe, uint64_t now)
{
    /* conn_rate: sessions in the current second (HAProxy reports per-second rates). */
    if (now - fe->rate_window_start_ms >= 1000) {
        fe->rate_last = now - fe->rate_window_start_ms < 2000 ? fe->rate_count : 0;
        fe->rate_window_start_ms = now;
        fe->rate_count = 0;
    }
    fe->rate_count++;
    if (fe->rate_count > fe->rate_max)
        fe->rate_max = fe->rate_count;
}

static void on_accept(evloop *loop, int fd, uint32_t ev, void *arg)
{
    proxy_listener *pl = arg;
    router *r = pl->r;
    /* Bounded batch per turn so one busy listener cannot starve established sessions. */
    for (int i = 0; i < 64; i++) {
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Out of descriptors: stop accepting for a moment instead of spinning. */
                log_warn("router: accept: %s; pausing accepts for 100 ms", strerror(errno));
                evloop_mod_fd(loop, fd, 0);
                if (!pl->resume)
                    pl->resume = evloop_timer_start(loop, 100, listener_resume, pl);
            }
            return;
        }
        uint64_t now = evloop_now_ms(loop);
        if (r->nat && pl->idx == LSN_PRIMARY)
            nat_path_count_new(r); /* kernel-forwarded sessions count towards the limit */
        uint64_t held = r->all_sessions
                            ? atomic_load_explicit(r->all_sessions, memory_order_relaxed)
                            : r->sessions_total_cur;
        if (held >= r->cfg.max_connections) {
            pl->fe.denied++;
            pg_refuse(cfd, "53300", "appliance-router: too many connections");
            close(cfd);
            continue;
        }
        session *s = calloc(1, sizeof(*s));
        if (!s) {
            pl->fe.denied++;
            close(cfd);
            continue;
        }
        set_nodelay(cfd);
        s->r = r;
        s->lsn = (uint8_t)pl->idx;
        s->splice = (uint8_t)(r->cfg.splice == ROUTER_SPLICE_PIPE);
        s->cfd = cfd;
        s->sfd = -1;
        s->accepted_ms = s->last_active_ms = now;
        if (evloop_add_fd(loop, cfd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, on_client_event,
                          s) < 0) {
            pl->fe.denied++;
            close(cfd);
            free(s);
            continue;
        }
        r->sessions_total_cur++;
        if (r->all_sessions)
            atomic_fetch_add_explicit(r->all_sessions, 1, memory_order_relaxed);
        pl->fe.scur++;
        pl->fe.stot++;
        if (pl->fe.scur > pl->fe.smax)
            pl->fe.smax = pl->fe.scur;
        rate_tick(&pl->fe, now);
        if (r->cfg.connect_on_first_byte) {
            /* A client that connects and says nothing (a port probe, or one of many idle
             * clients) costs one descriptor and no backend connection. PostgreSQL clients
             * speak first, so the backend connect starts with their first packet. */
            s->state = S_WAIT;
            list_push(&pl->waiting, s);
            continue;
        }
        session_dispatch(s);
    }
}

/* ---- listeners ---- */

static int open_listener(const char *addr, int reuseport, char *err, size_t errsz)
{
    char host[ROUTER_HOST_MAX];
    uint16_t port;
    char portstr[8];
    if (router_split_hostport(addr, host, sizeof(host), &port) < 0) {
        snprintf(err, errsz, "listen address '%s' is not host:port", addr);
        return -1;
    }
    snprintf(portstr, sizeof(portstr), "%u", (unsigned)port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host[0] ? host : NULL, portstr, &hints, &res);
    if (gai != 0) {
        snprintf(err, errsz, "listen address '%s': %s", addr, gai_strerror(gai));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
        bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 4096) < 0) {
        snprintf(err, errsz, "listen on '%s': %s", addr, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    return fd;
}

int proxy_listen(router *r, int lsn, const char *addr, char *err, size_t errsz)
{
    proxy_listener *pl = &r->lsn[lsn];
    pl->r = r;
    pl->idx = lsn;
    if (pl->fd >= 0 && strcmp(pl->addr, addr) == 0)
        return 0;
    int fd = -1;
    if (addr[0]) {
        fd = open_listener(addr, r->cfg.reuseport, err, errsz);
        if (fd < 0)
            return -1;
        if (evloop_add_fd(r->loop, fd, EPOLLIN, on_accept, pl) < 0) {
            snprintf(err, errsz, "listen on '%s': %s", addr, strerror(errno));
            close(fd);
            return -1;
        }
    }
    if (pl->fd >= 0) {
        evloop_del_fd(r->loop, pl->fd);
        close(pl->fd);
    }
    if (pl->resume) {
        evloop_timer_cancel(r->loop, pl->resume);
        pl->resume = NULL;
    }
    pl->fd = fd;
    snprintf(pl->addr, sizeof(pl->addr), "%s", addr);
    return 0;
}

/* ---- reacting to selection changes ---- */

size_t proxy_kill_sessions(router *r, backend *b, int lsn)
{
    size_t n = 0;
    session *s = b->sessions[lsn].head;
    while (s) {
        session *next = s->next;
        session_close(s, CLOSE_KILLED);
        n++;
        s = next;
    }
    (void)r;
    return n;
}

static void dispatch_held(router *r, int lsn)
{
    proxy_listener *pl = &r->lsn[lsn];
    /* Take the whole queue first: a dispatch that finds no target re-queues at the tail. */
    session *s = pl->held.head;
    uint64_t n = pl->held.count;
    pl->held.head = pl->held_tail = NULL;
    pl->held.count = 0;
    pl->fe.qcur -= n;
    while (s) {
        session *next = s->next;
        s->prev = s->next = NULL;
        if (s->timer) {
            evloop_timer_cancel(r->loop, s->timer);
            s->timer = NULL;
        }
        s->state = S_NEW; /* off the queue; session_dispatch decides */
        session_dispatch(s);
        s = next;
    }
}

void proxy_targets_changed(router *r)
{
    backend *old = r->write_target;
    backend *now = select_write_target(r);
    if (now != old) {
        r->write_target = now;
        r->write_changes++;
        r->write_target_since_ms = evloop_now_ms(r->loop);
        if (!r->mirror) /* the extra loops follow the main one: one line is enough */
            log_info("router: write target %s -> %s", old ? old->conf.name : "(none)",
                     now ? now->conf.name : "(none)");
    }
    /* The kernel's rule first (and its flows to the old target ended): from here on new
     * 5000 connections reach the new target whichever path carries them. */
    nat_path_sync(r);
    if (now != old && old) {
        size_t k = proxy_kill_sessions(r, old, LSN_PRIMARY);
        if (k)
            log_info("router: closed %zu write sessions to %s", k, old->conf.name);
    }
    /* 5001: a replica that failed its check loses its sessions; so does a primary serving
     * as fallback once it stops being the write target. */
    for (size_t i = 0; i < r->n_all; i++) {
        backend *b = r->backends[i];
        int replica_ok = b->replica_chk.up && !b->conf.noloadbalance && !b->removed;
        session *s = b->sessions[LSN_REPLICAS].head;
        while (s) {
            session *next = s->next;
            if (s->as_fallback ? b != r->write_target : !replica_ok)
                session_close(s, CLOSE_KILLED);
            s = next;
        }
        if (b->removed) /* a reload dropped it: write sessions go too (target withdrawn) */
            proxy_kill_sessions(r, b, LSN_PRIMARY);
    }
    if (r->lsn[LSN_PRIMARY].held.count && r->write_target)
        dispatch_held(r, LSN_PRIMARY);
    if (r->lsn[LSN_REPLICAS].held.count) {
        size_t rr = 0;
        int fb;
        if (select_replica(r, &rr, &fb))
            dispatch_held(r, LSN_REPLICAS);
    }
    if (r->on_targets)
        r->on_targets(r, r->on_targets_arg);
}

/* ---- idle sweep ---- */

static void sweep(evloop *loop, void *arg)
{
    router *r = arg;
    r->sweep_timer = NULL;
    uint64_t now = evloop_now_ms(loop);
    uint32_t idle = r->cfg.idle_timeout_ms;
    if (idle) {
        for (int l = 0; l < LSN_COUNT; l++) {
            session *s = r->lsn[l].waiting.head;
            while (s) {
                session *next = s->next;
                if (now - s->last_active_ms >= idle)
                    session_close(s, CLOSE_DONE);
                s = next;
            }
        }
    }
    for (size_t i = 0; i < r->n_all; i++) {
        for (int l = 0; l < LSN_COUNT; l++) {
            session *s = r->backends[i]->sessions[l].head;
            while (s) {
                session *next = s->next;
                kernel_account(s); /* the 8404 byte counters of spliced sessions move too */
                if (idle) {
                    if (s->state == S_OPEN && s->kernel && now - s->last_active_ms >= idle) {
                        /* the kernel moved bytes meanwhile: ask it when data last came */
                        uint32_t a = sockmap_ms_since_recv(s->cfd);
                        uint32_t b = sockmap_ms_since_recv(s->sfd);
                        uint32_t since = a < b ? a : b;
                        if (since < idle)
                            s->last_active_ms = now - since;
                    }
                    if (s->state == S_OPEN && now - s->last_active_ms >= idle)
                        session_close(s, CLOSE_DONE);
                }
                s = next;
            }
        }
    }
    backend_gc(r);
    backend_retry_unresolved(r);
    uint32_t period = idle && idle / 4 < 1000 ? (idle / 4 ? idle / 4 : 1) : 1000;
    r->sweep_timer = evloop_timer_start(loop, period, sweep, r);
}

int proxy_start(router *r)
{
    if (!r->sweep_timer)
        r->sweep_timer = evloop_timer_start(r->loop, 1000, sweep, r);
    return r->sweep_timer ? 0 : -1;
}

void proxy_shutdown(router *r)
{
    for (int l = 0; l < LSN_COUNT; l++) {
        proxy_listener *pl = &r->lsn[l];
        for (session *s = pl->held.head, *next; s; s = next) {
            next = s->next;
            session_close(s, CLOSE_REFUSED);
        }
        for (session *s = pl->waiting.head, *next; s; s = next) {
            next = s->next;
            session_close(s, CLOSE_DONE);
        }
        if (pl->fd >= 0) {
            evloop_del_fd(r->loop, pl->fd);
            close(pl->fd);
            pl->fd = -1;
        }
        if (pl->resume) {
            evloop_timer_cancel(r->loop, pl->resume);
            pl->resume = NULL;
        }
    }
    for (size_t i = r->n_all; i-- > 0;)
        for (int l = 0; l < LSN_COUNT; l++)
            if (i < r->n_all)
                proxy_kill_sessions(r, r->backends[i], l);
    if (r->sweep_timer) {
        evloop_timer_cancel(r->loop, r->sweep_timer);
        r->sweep_timer = NULL;
    }
}

size_t proxy_buffers_in_use(const router *r)
{
    return r->pool.n_used_bufs + r->pool.n_used_pipes;
}
