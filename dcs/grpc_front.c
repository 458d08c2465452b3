/* The client port's front door: listeners, protocol sniffing, HTTP/2 connections
 * (see grpc_front.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dcs/grpc_internal.h"
#include "log.h"

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"; /* RFC 9113 3.4 */
#define PREFACE_LEN 24

struct sniff {
    sniff *prev, *next;
    grpc_front *g;
    int fd;
    char peer[64];
    ev_timer *timer;
};

struct gconn {
    gconn *prev, *next;
    grpc_front *g;
    h2_conn *c;
};

/* ---- HTTP/2 connections ---- */
static void conn_gone(h2_conn *c, void *arg)
{
    const grpc_ctx *ctx = arg; /* the connection's argument is the gRPC context */
    grpc_front *g = ctx->arg;
    for (gconn *x = g->conns; x; x = x->next) {
        if (x->c != c)
            continue;
        if (x->prev)
            x->prev->next = x->next;
        else
            g->conns = x->next;
        if (x->next)
            x->next->prev = x->prev;
        g->nconns--;
        free(x);
        return;
    }
}

static void start_h2(grpc_front *g, int fd)
{
    gconn *x = calloc(1, sizeof(*x));
    if (!x || g->nconns >= GRPC_MAX_CONNS) {
        free(x);
        close(fd);
        return;
    }
    h2_handler h;
    grpc_h2_handler(&h);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    x->g = g;
    x->c = h2_conn_new(g->s->loop, fd, &g->lim, &h, &g->ctx, conn_gone);
    if (!x->c) {
        free(x);
        return;
    }
    x->next = g->conns;
    if (g->conns)
        g->conns->prev = x;
    g->conns = x;
    g->nconns++;
}

/* ---- sniffing ---- */
static void sniff_free(sniff *sn, bool close_fd)
{
    grpc_front *g = sn->g;
    if (sn->prev)
        sn->prev->next = sn->next;
    else
        g->sniffing = sn->next;
    if (sn->next)
        sn->next->prev = sn->prev;
    g->nsniffing--;
    if (sn->timer)
        evloop_timer_cancel(g->s->loop, sn->timer);
    evloop_del_fd(g->s->loop, sn->fd);
    if (close_fd)
        close(sn->fd);
    free(sn);
}

static void sniff_timeout(evloop *loop, void *arg)
{
    sniff *sn = arg;
    sn->timer = NULL;
    sniff_free(sn, true); /* sent nothing (or a lone "P...") for GRPC_SNIFF_MS */
}

static void sniff_io(evloop *loop, int fd, uint32_t events, void *arg)
{
    sniff *sn = arg;
    grpc_front *g = sn->g;
    char buf[PREFACE_LEN];
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        sniff_free(sn, true);
        return;
    }
    bool match = memcmp(buf, preface, (size_t)n) == 0;
    if (match && n < PREFACE_LEN)
        return; /* edge-triggered: woken again when more bytes arrive */
    char peer[64];
    snprintf(peer, sizeof(peer), "%s", sn->peer);
    sniff_free(sn, false);
    if (match) {
        start_h2(g, fd);
    } else if (http_server_adopt(g->s->http, fd, peer) != 0) {
        /* adopt closed fd (connection limit) */
    }
}

static void accept_cb(evloop *loop, int lfd, uint32_t events, void *arg)
{
    grpc_front *g = arg;
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof(ss));
        socklen_t sl = sizeof(ss);
        int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN, or a transient error: the next event retries */
        if (g->nsniffing >= GRPC_MAX_SNIFFING) {
            close(fd);
            continue;
        }
        sniff *sn = calloc(1, sizeof(*sn));
        if (!sn) {
            close(fd);
            continue;
        }
        sn->g = g;
        sn->fd = fd;
        char host[INET6_ADDRSTRLEN] = "?";
        int port = 0;
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
            port = ntohs(a->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
            port = ntohs(a->sin6_port);
        }
        snprintf(sn->peer, sizeof(sn->peer), "%s:%d", host, port);
        if (evloop_add_fd(loop, fd, EPOLLIN | EPOLLRDHUP | EPOLLET, sniff_io, sn) != 0) {
            close(fd);
            free(sn);
            continue;
        }
        sn->next = g->sniffing;
        if (g->sniffing)
            g->sniffing->prev = sn;
        g->sniffing = sn;
        g->nsniffing++;
        sn->timer = evloop_timer_start(loop, GRPC_SNIFF_MS, sniff_timeout, sn);
        /* bytes that came with the connection are not announced again (edge-triggered) */
        sniff_io(loop, fd, EPOLLIN, sn);
    }
}

int grpc_front_listen(grpc_front *g, const char *host, const char *port)
{
    if (g->nlisten >= GRPC_MAX_LISTENERS) {
        errno = ENOSPC;
        return -1;
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    if (getaddrinfo(host && *host ? host : NULL, port, &hints, &res) != 0 || !res) {
        errno = EADDRNOTAVAIL;
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 512) != 0 ||
        evloop_add_fd(g->s->loop, fd, EPOLLIN, accept_cb, g) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        errno = e;
        return -1;
    }
    freeaddrinfo(res);
    g->lfd[g->nlisten++] = fd;
    return 0;
}

grpc_front *grpc_front_new(dcs_server *s)
{
    grpc_front *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    g->s = s;
    grpc_service_init(&g->svc);
    g->ctx.svc = &g->svc;
    g->ctx.arg = g;
    h2_limits_default(&g->lim);
    return g;
}

void grpc_front_store_reset(grpc_front *g)
{
    if (g)
        grpc_watch_reset_all(g);
}

void grpc_front_free(grpc_front *g)
{
    if (!g)
        return;
    g->freeing = true;
    for (size_t i = 0; i < g->nlisten; i++) {
        evloop_del_fd(g->s->loop, g->lfd[i]);
        close(g->lfd[i]);
    }
    while (g->sniffing)
        sniff_free(g->sniffing, true); // NOLINT(clang-analyzer-unix.Malloc): unlinks the head
    for (gconn *x = g->conns, *nx; x; x = nx) {
        nx = x->next;
        h2_conn_shutdown(x->c); /* conn_gone unlinks and frees x */
    }
    free(g);
}
