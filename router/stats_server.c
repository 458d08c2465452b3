/* 8404: stats in four formats over lib/http's strict, bounded server. The page is
 * rendered per request into a capped buffer (a few KB for a 3-node cluster). */
#include "router/stats_server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/config.h"
#include "router/stats.h"

enum { STATS_PAGE_MAX = 1 << 20 };

struct stats_server {
    router *r;
    http_server *srv;
};

static int dispatch_view(const router *r, const char *method, const char *path, const char *query,
                         strbuf *body, const char **ct);

int stats_dispatch(const router *r, const char *method, const char *path, const char *query,
                   strbuf *body, const char **ct)
{
    /* Several loops: render every loop's counters added up (a copy; nothing shared). */
    router *view = r->stats_view ? r->stats_view(r, r->stats_view_arg) : NULL;
    int code = dispatch_view(view ? view : r, method, path, query, body, ct);
    free(view);
    return code;
}

static int dispatch_view(const router *r, const char *method, const char *path, const char *query,
                         strbuf *body, const char **ct)
{
    uint64_t now = evloop_now_ms(r->loop);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        *ct = "text/plain";
        strbuf_puts(body, "only GET and HEAD\n");
        return 405;
    }
    if (strcmp(path, "/;csv") == 0 || strcmp(path, "/csv") == 0 ||
        (strcmp(path, "/") == 0 && strcmp(query, "csv") == 0)) {
        *ct = "text/plain";
        stats_render_csv(r, now, body);
    } else if (strcmp(path, "/;json") == 0 || strcmp(path, "/json") == 0) {
        *ct = "application/json";
        stats_render_json(r, now, body);
    } else if (strcmp(path, "/metrics") == 0) {
        *ct = "text/plain; version=0.0.4";
        stats_render_prometheus(r, now, body);
    } else if (strcmp(path, "/") == 0) {
        *ct = "text/html; charset=utf-8";
        stats_render_html(r, now, body);
    } else if (strcmp(path, "/health") == 0) {
        *ct = "text/plain";
        strbuf_puts(body, "ok\n");
    } else {
        *ct = "text/plain";
        strbuf_puts(body, "not found\n");
        return 404;
    }
    if (body->overflow) {
        strbuf_free(body);
        body->overflow = 0;
        strbuf_puts(body, "page too large\n");
        *ct = "text/plain";
        return 500;
    }
    return 200;
}

static void handle(http_conn *c, const http_request *req, void *arg)
{
    stats_server *s = arg;
    strbuf body;
    strbuf_init(&body, STATS_PAGE_MAX);
    const char *ct = "text/plain";
    int status = stats_dispatch(s->r, req->method, req->path, req->query, &body, &ct);
    http_respond_ex(c, status, status == 405 ? "Allow: GET, HEAD\r\n" : NULL, ct,
                    body.data ? body.data : "", body.len);
    strbuf_free(&body);
}

stats_server *stats_server_new(router *r, const char *addr, char *err, size_t errsz)
{
    stats_server *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    s->r = r;
    if (!addr[0])
        return s;
    char host[ROUTER_HOST_MAX];
    uint16_t port;
    char portstr[8];
    if (router_split_hostport(addr, host, sizeof(host), &port) < 0) {
        snprintf(err, errsz, "listen.stats: '%s' is not host:port", addr);
        free(s);
        return NULL;
    }
    snprintf(portstr, sizeof(portstr), "%u", (unsigned)port);
    http_limits lim;
    http_limits_default(&lim);
    /* A stats page needs small requests only; slow or oversized clients are cut early. */
    lim.max_header_bytes = 4096;
    lim.max_body_bytes = 0;
    lim.header_timeout_ms = 5000;
    lim.idle_timeout_ms = 30000;
    lim.max_connections = 64;
    s->srv = http_server_new(r->loop, &lim, handle, s);
    if (!s->srv || http_server_listen(s->srv, host[0] ? host : "0.0.0.0", portstr) < 0) {
        snprintf(err, errsz, "listen.stats on '%s': %s", addr, strerror(errno));
        stats_server_free(s);
        return NULL;
    }
    return s;
}

void stats_server_free(stats_server *s)
{
    if (!s)
        return;
    if (s->srv)
        http_server_free(s->srv);
    free(s);
}
