/* Peer transport: dialing, handshake, framing, bounded queues (see transport.h). */
#include "dcs/transport.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dcs/crc32c.h"
#include "le_bytes.h"
#include "log.h"

#define HELLO_MAGIC    "PGADCSP"   /* 8 bytes with its NUL */
#define REFUSE_PREFIX  "PGADCSNO"  /* "PGADCSNO reason\n" */
#define JOIN_PREFIX    "PGADCSID"  /* answer to a join query, see answer_join */
#define FRAME_MAGIC    0x46414750u /* "PGAF" little-endian */
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 2000
#define REMOVED_MAX    16 /* removed member IDs remembered to tell them so */
#define MAX_INBOUND    32 /* accepted connections; more are closed at once */

enum out_state { OUT_IDLE, OUT_CONNECTING, OUT_HELLO, OUT_READY };

typedef struct buf {
    uint8_t *p;
    size_t off, len, cap; /* valid bytes are p[off .. off+len) */
} buf;

typedef struct out_conn {
    transport *t;
    int idx;
    int fd;
    int state;
    buf out;
    uint8_t in[TRANSPORT_HELLO_LEN + 256];
    size_t inlen;
    uint32_t backoff_ms;
    ev_timer *retry;
    int logged_down; /* log a refusal/failure once per outage, not per retry */
    bool want_out;   /* EPOLLOUT is armed (the socket refused part of the queue) */
} out_conn;

typedef struct in_conn {
    transport *t;
    int fd;
    int hello_done;
    uint64_t from;
    buf in;
    struct in_conn *next;
} in_conn;

struct transport {
    evloop *loop;
    transport_config cfg;
    transport_recv_cb cb;
    void *arg;
    int lfd[4];
    int nlfd;
    out_conn out[TRANSPORT_MAX_PEERS];
    in_conn *ins;
    size_t nins;
    uint64_t removed[REMOVED_MAX]; /* refused with "removed" (ring) */
    size_t nremoved;
    ev_timer *flush_timer; /* frames queued this loop turn go out at its end */
};

void transport_frame_header(uint8_t hdr[TRANSPORT_FRAME_HDR], int kind, uint32_t len, uint32_t crc)
{
    memset(hdr, 0, TRANSPORT_FRAME_HDR);
    put_u32(hdr, FRAME_MAGIC);
    hdr[4] = (uint8_t)kind;
    put_u32(hdr + 8, len);
    put_u32(hdr + 12, crc);
}

int transport_frame_parse(const uint8_t *p, size_t have, int *kind, uint32_t *len, char *why,
                          size_t whylen)
{
    if (have < TRANSPORT_FRAME_HDR)
        return 0;
    *len = get_u32(p + 8);
    *kind = p[4];
    if (get_u32(p) != FRAME_MAGIC || p[5] || p[6] || p[7] || *len > TRANSPORT_MAX_BODY) {
        snprintf(why, whylen, "bad frame header (magic/reserved/length %u)", *len);
        return -1;
    }
    if (have < TRANSPORT_FRAME_HDR + (size_t)*len)
        return 0;
    if (crc32c(p + TRANSPORT_FRAME_HDR, *len) != get_u32(p + 12)) {
        snprintf(why, whylen, "frame CRC mismatch");
        return -1;
    }
    return 1;
}

void transport_hello_encode(uint8_t out[TRANSPORT_HELLO_LEN], uint64_t cluster_id, uint64_t from,
                            uint64_t to)
{
    memset(out, 0, TRANSPORT_HELLO_LEN);
    memcpy(out, HELLO_MAGIC, 8);
    put_u32(out + 8, TRANSPORT_VERSION);
    put_u64(out + 16, cluster_id);
    put_u64(out + 24, from);
    put_u64(out + 32, to);
}

int transport_hello_check(const transport_config *cfg, const uint8_t in[TRANSPORT_HELLO_LEN],
                          int expect_from, uint64_t *from, char *why, size_t whylen)
{
    if (memcmp(in, HELLO_MAGIC, 8) != 0) {
        snprintf(why, whylen, "not an appliance-dcs peer (bad magic)");
        return -1;
    }
    uint32_t ver = get_u32(in + 8);
    if (get_u32(in + 12) != 0) {
        snprintf(why, whylen, "bad hello (reserved field not zero)");
        return -1;
    }
    if (ver != TRANSPORT_VERSION) {
        snprintf(why, whylen, "peer protocol version %u, we speak %u", ver,
                 (unsigned)TRANSPORT_VERSION);
        return -1;
    }
    uint64_t cid = get_u64(in + 16), f = get_u64(in + 24), to = get_u64(in + 32);
    if (cid != cfg->cluster_id) {
        snprintf(why, whylen,
                 "cluster ID mismatch (%016llx, ours %016llx): another --initial-cluster-token "
                 "or --initial-cluster",
                 (unsigned long long)cid, (unsigned long long)cfg->cluster_id);
        return -1;
    }
    if (to != cfg->self_id) {
        snprintf(why, whylen, "addressed to member %016llx, we are %016llx", (unsigned long long)to,
                 (unsigned long long)cfg->self_id);
        return -1;
    }
    int known = 0;
    for (size_t i = 0; i < cfg->npeers; i++)
        if (f != 0 && cfg->peer_ids[i] == f && (expect_from < 0 || (size_t)expect_from == i))
            known = 1;
    if (!known) {
        snprintf(why, whylen, "unknown member %016llx", (unsigned long long)f);
        return -1;
    }
    *from = f;
    return 0;
}

/* ---- buffers ---- */
static int buf_reserve(buf *b, size_t extra, size_t max)
{
    if (b->off && b->off + b->len + extra > b->cap) {
        memmove(b->p, b->p + b->off, b->len);
        b->off = 0;
    }
    if (b->len + extra > max)
        return -1;
    if (b->off + b->len + extra <= b->cap)
        return 0;
    size_t ncap = b->cap ? b->cap : 4096;
    while (ncap < b->len + extra)
        ncap *= 2;
    uint8_t *np = realloc(b->p, ncap);
    if (!np)
        return -1;
    b->p = np;
    b->cap = ncap;
    return 0;
}

static void buf_free(buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/* ---- outgoing ---- */
static void out_io(evloop *loop, int fd, uint32_t ev, void *arg);
static void out_dial(out_conn *o);

static void out_retry(evloop *loop, void *arg)
{
    out_conn *o = arg;
    o->retry = NULL;
    out_dial(o);
}

static void out_close(out_conn *o, const char *why)
{
    transport *t = o->t;
    if (o->fd >= 0) {
        evloop_del_fd(t->loop, o->fd);
        close(o->fd);
        o->fd = -1;
    }
    if (o->state == OUT_READY || !o->logged_down)
        log_warn("peer %016llx (%s:%s): %s", (unsigned long long)t->cfg.peer_ids[o->idx],
                 t->cfg.peer_host[o->idx], t->cfg.peer_port[o->idx], why);
    o->logged_down = 1;
    o->state = OUT_IDLE;
    o->want_out = false;
    buf_free(&o->out);
    o->inlen = 0;
    if (!o->retry) {
        o->retry = evloop_timer_start(t->loop, o->backoff_ms, out_retry, o);
        o->backoff_ms = o->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : o->backoff_ms * 2;
    }
}

/* Writes what the socket takes; EPOLLOUT is armed only while something is left, and the
 * registration changes only when that changes (an epoll_ctl per send cost as much as the
 * send itself under load). */
static void out_flush(out_conn *o)
{
    while (o->out.len) {
        ssize_t n = send(o->fd, o->out.p + o->out.off, o->out.len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (!o->want_out) {
                    o->want_out = true;
                    evloop_mod_fd(o->t->loop, o->fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
                }
                return;
            }
            if (errno == EINTR)
                continue;
            out_close(o, strerror(errno));
            return;
        }
        o->out.off += (size_t)n;
        o->out.len -= (size_t)n;
    }
    o->out.off = 0;
    if (o->want_out) {
        o->want_out = false;
        evloop_mod_fd(o->t->loop, o->fd, EPOLLIN | EPOLLRDHUP);
    }
}

static int out_queue(out_conn *o, const void *a, size_t alen, const void *b, size_t blen)
{
    size_t max = o->t->cfg.max_queue_bytes ? o->t->cfg.max_queue_bytes : (128u << 20);
    if (buf_reserve(&o->out, alen + blen, max) != 0)
        return -1;
    memcpy(o->out.p + o->out.off + o->out.len, a, alen);
    o->out.len += alen;
    if (blen) {
        memcpy(o->out.p + o->out.off + o->out.len, b, blen);
        o->out.len += blen;
    }
    return 0;
}

static void out_dial(out_conn *o)
{
    transport *t = o->t;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(t->cfg.peer_host[o->idx], t->cfg.peer_port[o->idx], &hints, &ai);
    if (rc != 0 || !ai) {
        out_close(o, rc ? gai_strerror(rc) : "no address");
        return;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        freeaddrinfo(ai);
        out_close(o, strerror(errno));
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (t->cfg.local_host[0]) {
        struct addrinfo lh = {.ai_socktype = SOCK_STREAM, .ai_family = ai->ai_family};
        struct addrinfo *la = NULL;
        if (getaddrinfo(t->cfg.local_host, NULL, &lh, &la) == 0 && la) {
            if (bind(fd, la->ai_addr, la->ai_addrlen) != 0)
                log_debug("peer dial: cannot bind %s (%s); dialing unbound", t->cfg.local_host,
                          strerror(errno));
            freeaddrinfo(la);
        }
    }
    rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    if (rc != 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        out_close(o, strerror(e));
        return;
    }
    o->fd = fd;
    o->state = OUT_CONNECTING;
    o->want_out = true; /* registered with EPOLLOUT until the hello is out */
    if (evloop_add_fd(t->loop, fd, EPOLLOUT | EPOLLIN | EPOLLRDHUP, out_io, o) != 0) {
        out_close(o, strerror(errno));
        return;
    }
}

static void out_io(evloop *loop, int fd, uint32_t ev, void *arg)
{
    out_conn *o = arg;
    transport *t = o->t;
    if (o->state == OUT_CONNECTING) {
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        if (soerr) {
            out_close(o, strerror(soerr));
            return;
        }
        if (!(ev & (EPOLLOUT | EPOLLIN)))
            return;
        uint8_t hello[TRANSPORT_HELLO_LEN];
        transport_hello_encode(hello, t->cfg.cluster_id, t->cfg.self_id, t->cfg.peer_ids[o->idx]);
        o->state = OUT_HELLO;
        if (out_queue(o, hello, sizeof(hello), NULL, 0) != 0) {
            out_close(o, "out of memory");
            return;
        }
        out_flush(o);
        return;
    }
    if (ev & EPOLLIN) {
        if (o->state == OUT_HELLO) {
            ssize_t n = recv(fd, o->in + o->inlen, sizeof(o->in) - 1 - o->inlen, 0);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                if (o->inlen >= 8 && memcmp(o->in, REFUSE_PREFIX, 8) == 0) {
                    o->in[o->inlen] = 0;
                    char *nl = strchr((char *)o->in, '\n');
                    if (nl)
                        *nl = 0;
                    char why[320];
                    snprintf(why, sizeof(why), "refused us: %s", (char *)o->in + 8);
                    o->logged_down = 0; /* always worth a line */
                    uint64_t peer = t->cfg.peer_ids[o->idx];
                    out_close(o, why);
                    /* the server decides what a refusal means (e.g. "removed") */
                    t->cb(t->arg, peer, TRANSPORT_REFUSED, (const uint8_t *)why, strlen(why));
                } else {
                    out_close(o, n == 0 ? "closed during handshake" : strerror(errno));
                }
                return;
            }
            if (n > 0)
                o->inlen += (size_t)n;
            if (o->inlen >= 8 && memcmp(o->in, REFUSE_PREFIX, 8) == 0)
                return; /* read the reason until the peer closes */
            if (o->inlen < TRANSPORT_HELLO_LEN)
                return;
            uint64_t from;
            char why[256];
            int expect = o->idx;
            if (transport_hello_check(&t->cfg, o->in, expect, &from, why, sizeof(why)) != 0) {
                char msg[320];
                snprintf(msg, sizeof(msg), "bad handshake answer: %s", why);
                o->logged_down = 0;
                out_close(o, msg);
                return;
            }
            o->state = OUT_READY;
            o->backoff_ms = BACKOFF_MIN_MS;
            if (o->logged_down)
                log_info("peer %016llx (%s:%s): connected", (unsigned long long)from,
                         t->cfg.peer_host[o->idx], t->cfg.peer_port[o->idx]);
            o->logged_down = 0;
        } else {
            /* nothing is expected from the acceptor after its hello: drain, detect EOF */
            uint8_t tmp[512];
            ssize_t n = recv(fd, tmp, sizeof(tmp), 0);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                out_close(o, n == 0 ? "connection closed" : strerror(errno));
                return;
            }
        }
    }
    if (ev & (EPOLLHUP | EPOLLERR)) {
        out_close(o, "connection lost");
        return;
    }
    if ((ev & EPOLLOUT) && o->fd >= 0)
        out_flush(o);
}

void transport_flush(transport *t)
{
    for (size_t i = 0; i < t->cfg.npeers; i++) {
        out_conn *o = &t->out[i];
        if (o->state == OUT_READY && o->out.len && !o->want_out)
            out_flush(o);
    }
}

static void flush_cb(evloop *loop, void *arg)
{
    transport *t = arg;
    (void)loop;
    t->flush_timer = NULL;
    transport_flush(t);
}

int transport_send2(transport *t, uint64_t to, int kind, const void *a, size_t alen, const void *b,
                    size_t blen)
{
    for (size_t i = 0; i < t->cfg.npeers; i++) {
        if (t->cfg.peer_ids[i] != to)
            continue;
        out_conn *o = &t->out[i];
        if (o->state != OUT_READY)
            return -1;
        size_t len = alen + blen;
        if (len > TRANSPORT_MAX_BODY)
            return -1;
        uint8_t hdr[TRANSPORT_FRAME_HDR];
        uint32_t crc = crc32c_update(0, a, alen);
        if (blen)
            crc = crc32c_update(crc, b, blen);
        transport_frame_header(hdr, kind, (uint32_t)len, crc);
        size_t max = t->cfg.max_queue_bytes ? t->cfg.max_queue_bytes : (128u << 20);
        if (o->out.len + sizeof(hdr) + len > max)
            return -1; /* bounded: drop, Raft retransmits */
        if (out_queue(o, hdr, sizeof(hdr), NULL, 0) != 0)
            return -1;
        if (out_queue(o, a, alen, b, blen) != 0) {
            o->out.len -= sizeof(hdr); /* keep the stream framed */
            return -1;
        }
        /* Corked: every frame of this loop turn to this peer leaves in one send (at
         * transport_flush or at the end of the turn), not one send per frame. */
        if (!o->want_out && !t->flush_timer)
            t->flush_timer = evloop_timer_start(t->loop, 0, flush_cb, t);
        if (!t->flush_timer)
            out_flush(o); /* no timer memory: send now rather than hold it */
        return 0;
    }
    return -1;
}

int transport_send(transport *t, uint64_t to, int kind, const void *body, size_t len)
{
    return transport_send2(t, to, kind, body, len, NULL, 0);
}

int transport_connected(const transport *t, uint64_t to)
{
    for (size_t i = 0; i < t->cfg.npeers; i++)
        if (t->cfg.peer_ids[i] == to)
            return t->out[i].state == OUT_READY;
    return 0;
}

/* ---- incoming ---- */
static void in_close(in_conn *c)
{
    transport *t = c->t;
    for (in_conn **pp = &t->ins; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    t->nins--;
    evloop_del_fd(t->loop, c->fd);
    close(c->fd);
    buf_free(&c->in);
    free(c);
}

static void in_refuse(in_conn *c, const char *why)
{
    char line[400];
    int n = snprintf(line, sizeof(line), "%s %s\n", REFUSE_PREFIX, why);
    if (n > 0) {
        ssize_t w = send(c->fd, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)w;
    }
    log_warn("refused peer connection: %s", why);
    in_close(c);
}

/* A joining member's question (hello with cluster, sender and receiver all 0, then
 * "JOIN host port\n"): which IDs do I and the cluster have? Answered only for a peer URL
 * that a member add already put into the configuration, then the connection is closed. */
static bool is_join_query(const uint8_t *p)
{
    return memcmp(p, HELLO_MAGIC, 8) == 0 && get_u32(p + 8) == TRANSPORT_VERSION &&
           get_u32(p + 12) == 0 && get_u64(p + 16) == 0 && get_u64(p + 24) == 0 &&
           get_u64(p + 32) == 0;
}

static void answer_join(in_conn *c, const uint8_t *q, size_t n)
{
    transport *t = c->t;
    char line[320], host[256], port[8];
    if (n == 0 || n >= sizeof(line)) {
        in_refuse(c, "bad join query");
        return;
    }
    memcpy(line, q, n);
    line[n] = 0;
    if (sscanf(line, "JOIN %255s %7s", host, port) != 2) {
        in_refuse(c, "bad join query");
        return;
    }
    size_t me = t->cfg.npeers;
    for (size_t i = 0; i < t->cfg.npeers; i++)
        if (t->cfg.peer_ids[i] && strcmp(t->cfg.peer_host[i], host) == 0 &&
            strcmp(t->cfg.peer_port[i], port) == 0)
            me = i;
    if (me == t->cfg.npeers) {
        char why[400];
        snprintf(why, sizeof(why),
                 "peer URL http://%s:%s is not a member of this cluster (member add it first)",
                 host, port);
        in_refuse(c, why);
        return;
    }
    char out[TRANSPORT_MAX_PEERS * 300 + 64];
    size_t off = (size_t)snprintf(out, sizeof(out), "%s %016llx %016llx %016llx", JOIN_PREFIX,
                                  (unsigned long long)t->cfg.cluster_id,
                                  (unsigned long long)t->cfg.peer_ids[me],
                                  (unsigned long long)t->cfg.self_id);
    for (size_t i = 0; i < t->cfg.npeers && off < sizeof(out); i++)
        if (t->cfg.peer_ids[i])
            off += (size_t)snprintf(out + off, sizeof(out) - off, " %016llx=%s:%s",
                                    (unsigned long long)t->cfg.peer_ids[i], t->cfg.peer_host[i],
                                    t->cfg.peer_port[i]);
    if (off + 1 < sizeof(out)) {
        out[off++] = '\n';
        ssize_t w = send(c->fd, out, off, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)w;
    }
    log_info("join query from http://%s:%s answered", host, port);
    in_close(c);
}

/* Consumes complete frames; returns -1 when the connection was closed. */
static int in_parse(in_conn *c)
{
    transport *t = c->t;
    while (1) {
        uint8_t *p = c->in.p + c->in.off;
        size_t have = c->in.len;
        if (!c->hello_done) {
            if (have < TRANSPORT_HELLO_LEN)
                return 0;
            if (is_join_query(p)) {
                const uint8_t *nl =
                    memchr(p + TRANSPORT_HELLO_LEN, '\n', have - TRANSPORT_HELLO_LEN);
                if (!nl && have < TRANSPORT_HELLO_LEN + 300)
                    return 0;
                answer_join(c, p + TRANSPORT_HELLO_LEN,
                            nl ? (size_t)(nl - p) - TRANSPORT_HELLO_LEN : 0);
                return -1;
            }
            char why[256];
            uint64_t claimed = get_u64(p + 24);
            for (size_t i = 0; i < REMOVED_MAX && claimed; i++)
                if (t->removed[i] == claimed && get_u64(p + 16) == t->cfg.cluster_id) {
                    snprintf(why, sizeof(why), "member %016llx was removed from the cluster",
                             (unsigned long long)claimed);
                    in_refuse(c, why);
                    return -1;
                }
            if (transport_hello_check(&t->cfg, p, -1, &c->from, why, sizeof(why)) != 0) {
                in_refuse(c, why);
                return -1;
            }
            uint8_t hello[TRANSPORT_HELLO_LEN];
            transport_hello_encode(hello, t->cfg.cluster_id, t->cfg.self_id, c->from);
            if (send(c->fd, hello, sizeof(hello), MSG_NOSIGNAL | MSG_DONTWAIT) !=
                (ssize_t)sizeof(hello)) {
                in_close(c);
                return -1;
            }
            c->hello_done = 1;
            c->in.off += TRANSPORT_HELLO_LEN;
            c->in.len -= TRANSPORT_HELLO_LEN;
            continue;
        }
        uint32_t len;
        int kind;
        char why[128];
        int rc = transport_frame_parse(p, have, &kind, &len, why, sizeof(why));
        if (rc == 0)
            return 0;
        if (rc < 0) {
            log_warn("peer %016llx: %s: closing", (unsigned long long)c->from, why);
            in_close(c);
            return -1;
        }
        c->in.off += TRANSPORT_FRAME_HDR + len;
        c->in.len -= TRANSPORT_FRAME_HDR + len;
        t->cb(t->arg, c->from, kind, p + TRANSPORT_FRAME_HDR, len);
    }
}

static void in_io(evloop *loop, int fd, uint32_t ev, void *arg)
{
    in_conn *c = arg;
    for (int rounds = 0; rounds < 16; rounds++) { /* share the loop with other sockets */
        if (buf_reserve(&c->in, 65536, TRANSPORT_MAX_BODY + TRANSPORT_FRAME_HDR + 65536) != 0) {
            log_warn("peer %016llx: out of memory for input: closing", (unsigned long long)c->from);
            in_close(c);
            return;
        }
        size_t room = c->in.cap - c->in.off - c->in.len;
        ssize_t n = recv(fd, c->in.p + c->in.off + c->in.len, room, 0);
        if (n == 0) {
            in_close(c);
            return;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (errno == EINTR)
                continue;
            in_close(c);
            return;
        }
        c->in.len += (size_t)n;
        if (in_parse(c) != 0)
            return;
        if ((size_t)n < room)
            return;
    }
}

static void listen_io(evloop *loop, int fd, uint32_t ev, void *arg)
{
    transport *t = arg;
    for (int i = 0; i < 16; i++) {
        int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0)
            return;
        if (t->nins >= MAX_INBOUND) {
            close(c);
            continue;
        }
        int one = 1;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        in_conn *ic = calloc(1, sizeof(*ic));
        if (!ic) {
            close(c);
            continue;
        }
        ic->t = t;
        ic->fd = c;
        if (evloop_add_fd(loop, c, EPOLLIN | EPOLLRDHUP, in_io, ic) != 0) {
            close(c);
            free(ic);
            continue;
        }
        ic->next = t->ins;
        t->ins = ic;
        t->nins++;
    }
}

int transport_listen(transport *t, const char *host, const char *port)
{
    if (t->nlfd == 4) {
        errno = EMFILE;
        return -1;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    if (getaddrinfo(host, port, &hints, &ai) != 0 || !ai) {
        errno = EADDRNOTAVAIL;
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 64) != 0 ||
        evloop_add_fd(t->loop, fd, EPOLLIN, listen_io, t) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        errno = e;
        return -1;
    }
    freeaddrinfo(ai);
    t->lfd[t->nlfd++] = fd;
    return 0;
}

transport *transport_new(evloop *loop, const transport_config *cfg, transport_recv_cb cb, void *arg)
{
    if (cfg->npeers > TRANSPORT_MAX_PEERS)
        return NULL;
    transport *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->loop = loop;
    t->cfg = *cfg;
    t->cb = cb;
    t->arg = arg;
    for (size_t i = 0; i < cfg->npeers; i++) {
        out_conn *o = &t->out[i];
        o->t = t;
        o->idx = (int)i;
        o->fd = -1;
        o->backoff_ms = BACKOFF_MIN_MS;
        out_dial(o);
    }
    return t;
}

int transport_add_peer(transport *t, uint64_t id, const char *host, const char *port)
{
    size_t slot = t->cfg.npeers;
    for (size_t i = 0; i < t->cfg.npeers; i++) {
        if (t->cfg.peer_ids[i] == id)
            return 0;
        if (t->cfg.peer_ids[i] == 0 && slot == t->cfg.npeers)
            slot = i;
    }
    if (id == 0 || slot == TRANSPORT_MAX_PEERS || strlen(host) >= sizeof(t->cfg.peer_host[0]) ||
        strlen(port) >= sizeof(t->cfg.peer_port[0]))
        return -1;
    t->cfg.peer_ids[slot] = id;
    snprintf(t->cfg.peer_host[slot], sizeof(t->cfg.peer_host[0]), "%s", host);
    snprintf(t->cfg.peer_port[slot], sizeof(t->cfg.peer_port[0]), "%s", port);
    if (slot == t->cfg.npeers)
        t->cfg.npeers++;
    out_conn *o = &t->out[slot];
    memset(o, 0, sizeof(*o));
    o->t = t;
    o->idx = (int)slot;
    o->fd = -1;
    o->backoff_ms = BACKOFF_MIN_MS;
    out_dial(o);
    return 0;
}

void transport_remove_peer(transport *t, uint64_t id)
{
    size_t i = 0;
    while (i < t->cfg.npeers && (id == 0 || t->cfg.peer_ids[i] != id))
        i++;
    if (i == t->cfg.npeers)
        return;
    out_conn *o = &t->out[i];
    if (o->retry)
        evloop_timer_cancel(t->loop, o->retry);
    o->retry = NULL;
    if (o->fd >= 0) {
        evloop_del_fd(t->loop, o->fd);
        close(o->fd);
        o->fd = -1;
    }
    buf_free(&o->out);
    o->state = OUT_IDLE;
    o->want_out = false;
    t->cfg.peer_ids[i] = 0; /* a free slot: no dialing, its hello is refused */
    t->removed[t->nremoved++ % REMOVED_MAX] = id;
    /* its inbound connections too: its next hello learns that it was removed */
    for (in_conn **pp = &t->ins; *pp;) {
        in_conn *c = *pp;
        if (c->from != id) {
            pp = &c->next;
            continue;
        }
        *pp = c->next; /* unlinked here; in_close then finds nothing to unlink */
        in_close(c);
    }
}

void transport_free(transport *t)
{
    if (!t)
        return;
    if (t->flush_timer)
        evloop_timer_cancel(t->loop, t->flush_timer);
    for (size_t i = 0; i < t->cfg.npeers; i++) {
        out_conn *o = &t->out[i];
        if (o->retry)
            evloop_timer_cancel(t->loop, o->retry);
        if (o->fd >= 0) {
            evloop_del_fd(t->loop, o->fd);
            close(o->fd);
        }
        buf_free(&o->out);
    }
    in_conn *c = t->ins;
    t->ins = NULL;
    while (c) {
        in_conn *nx = c->next;
        evloop_del_fd(t->loop, c->fd);
        close(c->fd);
        buf_free(&c->in);
        free(c);
        c = nx;
    }
    for (int i = 0; i < t->nlfd; i++) {
        evloop_del_fd(t->loop, t->lfd[i]);
        close(t->lfd[i]);
    }
    free(t);
}
