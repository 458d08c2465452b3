/* HTTP/1.1 server on lib/evloop: accepts, reads into a bounded per-connection buffer,
 * parses with http_parse_request_r, hands one request at a time to the handler and writes
 * the answers in order.
 *
 * Connection life: a connection is "waiting" (header timer: the whole request must arrive
 * within header_timeout_ms), "busy" (the handler owns the request until it answers; no
 * timer, no further reading, so pipelined requests wait in the buffer), or "idle"
 * (keep-alive, idle_timeout_ms). Output that does not drain for idle_timeout_ms closes the
 * connection (a reader that stopped reading cannot pin memory forever).
 *
 * Decisions:
 * - The request and its strings stay valid until the answer is complete (http_respond or
 *   http_stream_end), so deferred answerers may keep using them.
 * - A peer that closes its sending side while its request is in flight is treated as gone
 *   (on_close runs, the answer is dropped), like nginx and Go do: deferred answerers and
 *   watch streams must learn that their client left. Requests already buffered before the
 *   EOF are still answered when the handler answers at once.
 * - An answer given outside the loop's callback for this connection (deferred) does not run
 *   the handler for the next pipelined request from inside http_respond: that resumes from
 *   a zero-delay timer, so a caller answering a list of waiters never re-enters itself.
 * - After a connection is closed (on_close ran) its pointer is invalid once the public call
 *   in progress returns; calls on it from inside on_close are ignored.
 * - Errors found by the server (parse errors, 408) answer with a short text body and close.
 * - Expect: 100-continue is answered "100 Continue" once the header section is complete
 *   (curl sends it for chunked uploads and waits a second otherwise). */
#include "http.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_LISTENERS    16
#define ACCEPT_BURST     64  /* accepts per wakeup, so a flood cannot starve others */
#define ACCEPT_PAUSE_MS  100 /* after EMFILE & co. */
#define IN_INITIAL       4096
#define IN_KEEP_MAX      65536 /* input buffer kept between requests; larger ones freed */
#define OUT_KEEP_MAX     65536 /* output buffer kept between answers; larger ones freed */
#define READ_PER_WAKEUP  ((size_t)256 * 1024)
#define REQS_PER_WAKEUP  64 /* pipelined requests handled before others get a turn */
#define CHUNK_HEAD_BYTES 24 /* "%zx\r\n" + "\r\n" */

enum timer_kind { TK_NONE, TK_HEADER, TK_IDLE, TK_WRITE };

struct http_conn {
    http_server *srv;
    http_conn *prev, *next;
    int fd;
    char peer[64];

    char *in;
    size_t in_off, in_len, in_cap; /* unparsed input is in[in_off..in_len) */
    char *out;
    size_t out_off, out_len, out_cap;

    http_request req;
    http_parse_resume parse_resume; /* of the request being received; zeroed when one ends */
    size_t req_consumed;
    int busy;           /* a request is with the handler */
    int streaming;      /* http_stream_begin was called for it */
    int stream_chunked; /* HTTP/1.1 stream: chunked; HTTP/1.0: close-delimited */
    int head;           /* the request is HEAD: no body bytes */
    int keep_alive;     /* of the current request */
    int close_after;    /* close once output drains */
    int peer_eof;
    int continue_sent;
    int served; /* at least one request started: idle timer applies between requests */

    int depth; /* >0 while loop code for this connection is on the stack */
    int dead;  /* closed; freed when depth returns to 0 */
    uint32_t events;
    ev_timer *timer;
    enum timer_kind timer_kind;
    ev_timer *resume;

    void (*on_close)(http_conn *c, void *arg);
    void *on_close_arg;
};

struct http_server {
    evloop *loop;
    http_limits lim;
    http_handler handler;
    void *arg;
    int lfd[MAX_LISTENERS];
    size_t nlfd;
    ev_timer *accept_pause;
    http_conn *conns;
    uint32_t nconns;
    size_t in_max; /* input buffer bound: header section + largest wire body */
};

static void conn_process(http_conn *c);
static size_t in_pending(const http_conn *c)
{
    return c->in_len - c->in_off;
}
static void conn_rearm(http_conn *c, int restart);
static void conn_resume(evloop *loop, void *arg);

/* ---- lifetime ---- */

static void conn_free(http_conn *c)
{
    free(c->in);
    free(c->out);
    free(c);
}

static void conn_close(http_conn *c)
{
    if (c->dead)
        return;
    c->dead = 1;
    http_server *srv = c->srv;
    evloop_del_fd(srv->loop, c->fd);
    close(c->fd);
    c->fd = -1;
    if (c->timer)
        evloop_timer_cancel(srv->loop, c->timer);
    c->timer = NULL;
    if (c->resume)
        evloop_timer_cancel(srv->loop, c->resume);
    c->resume = NULL;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->nconns--;
    if (c->on_close) {
        void (*cb)(http_conn *, void *) = c->on_close;
        c->on_close = NULL;
        c->depth++;
        cb(c, c->on_close_arg);
        c->depth--;
    }
    if (c->depth == 0)
        conn_free(c);
}

/* Leaves loop code for c: frees it if it was closed meanwhile. */
static void conn_leave(http_conn *c)
{
    if (--c->depth == 0 && c->dead)
        conn_free(c);
}

/* ---- output ---- */

static int out_reserve(http_conn *c, size_t more)
{
    if (c->out_off > 0 && c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if (c->out_len + more <= c->out_cap)
        return 0;
    if (c->out_off > 0) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
        if (c->out_len + more <= c->out_cap)
            return 0;
    }
    size_t n = c->out_cap ? c->out_cap : 1024;
    while (n < c->out_len + more)
        n *= 2;
    char *p = realloc(c->out, n);
    if (!p)
        return -1;
    c->out = p;
    c->out_cap = n;
    return 0;
}

static int out_append(http_conn *c, const void *data, size_t len)
{
    if (len == 0)
        return 0;
    if (out_reserve(c, len) < 0)
        return -1;
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
    return 0;
}

__attribute__((format(printf, 2, 3))) static int out_printf(http_conn *c, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return -1;
    return out_append(c, tmp, (size_t)n);
}

static void conn_update_events(http_conn *c)
{
    if (c->dead)
        return;
    /* Once the peer's EOF is seen, RDHUP would stay raised (level-triggered): drop it. */
    uint32_t ev = c->peer_eof ? 0 : EPOLLRDHUP;
    if (!c->busy && !c->close_after && !c->peer_eof && in_pending(c) < c->srv->in_max)
        ev |= EPOLLIN;
    if (c->out_len > c->out_off)
        ev |= EPOLLOUT;
    if (ev != c->events) {
        c->events = ev;
        evloop_mod_fd(c->srv->loop, c->fd, ev);
    }
}

/* Writes what the socket takes. -1 when the connection was closed (error or done). */
static int conn_flush(http_conn *c)
{
    int progressed = 0;
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
            progressed = 1;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        log_debug("http: %s: send: %s", c->peer, strerror(errno));
        conn_close(c);
        return -1;
    }
    if (c->out_off == c->out_len) {
        c->out_off = c->out_len = 0;
        if (c->out_cap > OUT_KEEP_MAX) {
            free(c->out);
            c->out = NULL;
            c->out_cap = 0;
        }
        if (c->close_after && !c->busy) {
            conn_close(c);
            return -1;
        }
    }
    conn_update_events(c);
    conn_rearm(c, progressed);
    return 0;
}

/* ---- timers ---- */

static void conn_timer_fired(evloop *loop, void *arg)
{
    http_conn *c = arg;
    c->timer = NULL;
    enum timer_kind k = c->timer_kind;
    c->timer_kind = TK_NONE;
    c->depth++;
    if (k == TK_HEADER && in_pending(c) > 0 && !c->close_after) {
        /* Part of a request arrived, too slowly: say so, then close. */
        static const char body[] = "Request Timeout\n";
        log_debug("http: %s: request not complete within %u ms", c->peer,
                  c->srv->lim.header_timeout_ms);
        c->close_after = 1;
        if (out_printf(c,
                       "HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain\r\n"
                       "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                       sizeof(body) - 1, body) < 0)
            conn_close(c);
        else
            conn_flush(c);
        /* A reader that also does not read gets the write-stall timer from flush; make
         * sure it cannot stay beyond one more header timeout either. */
    } else {
        log_debug("http: %s: %s timeout", c->peer, k == TK_IDLE ? "idle" : "timeout");
        conn_close(c);
    }
    conn_leave(c);
    (void)loop;
}

/* Puts the one timer of c in the state its situation needs. restart: output made progress,
 * so a running write-stall timer starts over. */
static void conn_rearm(http_conn *c, int restart)
{
    if (c->dead)
        return;
    enum timer_kind want;
    uint32_t ms = 0;
    const http_limits *lim = &c->srv->lim;
    if (c->out_len > c->out_off) {
        want = TK_WRITE;
        ms = lim->idle_timeout_ms;
    } else if (c->busy) {
        want = TK_NONE;
    } else if (in_pending(c) > 0 || !c->served) {
        want = TK_HEADER;
        ms = lim->header_timeout_ms;
    } else {
        want = TK_IDLE;
        ms = lim->idle_timeout_ms;
    }
    if (want == c->timer_kind && !(want == TK_WRITE && restart))
        return;
    if (c->timer)
        evloop_timer_cancel(c->srv->loop, c->timer);
    c->timer = NULL;
    c->timer_kind = want;
    if (want != TK_NONE) {
        c->timer = evloop_timer_start(c->srv->loop, ms, conn_timer_fired, c);
        if (!c->timer)
            c->timer_kind = TK_NONE;
    }
}

/* ---- answers ---- */

/* "Name: value\r\n" lines only, no bare CR/LF, no NUL: a handler must not be able to
 * split the response by accident. Framing stays the server's: Content-Length and
 * Transfer-Encoding are refused; "Connection: close" is honoured (the connection closes
 * after this answer, e.g. for Patroni's one-request-per-connection behaviour) and any
 * other Connection value is refused. Returns 0 when invalid; *close_conn set on close. */
static int extra_headers_ok(const char *h, int *close_conn)
{
    *close_conn = 0;
    if (!h)
        return 1;
    const char *p = h;
    while (*p) {
        const char *colon = NULL;
        const char *s = p;
        while (*p && *p != '\r' && *p != '\n') {
            if (*p == ':' && !colon)
                colon = p;
            p++;
        }
        if (!colon || colon == s || p[0] != '\r' || p[1] != '\n')
            return 0;
        size_t nlen = (size_t)(colon - s);
        const char *v = colon + 1, *ve = p;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        if ((nlen == 14 && strncasecmp(s, "Content-Length", 14) == 0) ||
            (nlen == 17 && strncasecmp(s, "Transfer-Encoding", 17) == 0))
            return 0;
        if (nlen == 10 && strncasecmp(s, "Connection", 10) == 0) {
            if (ve - v != 5 || strncasecmp(v, "close", 5) != 0)
                return 0;
            *close_conn = 1;
        }
        p += 2;
    }
    return 1;
}

static int status_has_body(int status)
{
    return status >= 200 && status != 204 && status != 304;
}

/* Status line and headers of an answer to the current request. */
static int queue_head(http_conn *c, int status, const char *extra, const char *ctype,
                      const char *framing, int connection_header)
{
    if (out_printf(c, "HTTP/1.1 %d %s\r\n", status, http_status_reason(status)) < 0)
        return -1;
    if (ctype && *ctype && out_printf(c, "Content-Type: %s\r\n", ctype) < 0)
        return -1;
    if (framing && out_append(c, framing, strlen(framing)) < 0)
        return -1;
    if (extra && out_append(c, extra, strlen(extra)) < 0)
        return -1;
    const char *conn = NULL;
    if (!connection_header)
        conn = NULL;
    else if (!c->keep_alive)
        conn = "Connection: close\r\n";
    else if (c->req.version_minor == 0)
        conn = "Connection: keep-alive\r\n";
    if (conn && out_append(c, conn, strlen(conn)) < 0)
        return -1;
    return out_append(c, "\r\n", 2);
}

/* The answer to the current request is complete: drop it from the input, go on. */
static void response_done(http_conn *c)
{
    c->busy = 0;
    c->streaming = 0;
    if (c->req_consumed) {
        /* No memmove per request (quadratic for a deep pipeline): conn_read compacts. */
        c->in_off += c->req_consumed;
        c->req_consumed = 0;
        memset(&c->parse_resume, 0, sizeof(c->parse_resume));
        if (c->in_off == c->in_len)
            c->in_off = c->in_len = 0;
    }
    if (c->in_len == 0 && c->in_cap > IN_KEEP_MAX) {
        /* A large upload is done: do not keep its buffer for the connection's lifetime. */
        free(c->in);
        c->in = NULL;
        c->in_cap = 0;
    }
    c->continue_sent = 0;
    if (!c->keep_alive)
        c->close_after = 1;
    if (conn_flush(c) < 0)
        return;
    if (c->depth == 0 && in_pending(c) > 0 && !c->resume && !c->close_after) {
        /* Deferred answer: continue with the pipelined request from the loop. */
        c->resume = evloop_timer_start(c->srv->loop, 0, conn_resume, c);
    }
}

static void conn_resume(evloop *loop, void *arg)
{
    http_conn *c = arg;
    c->resume = NULL;
    c->depth++;
    conn_process(c);
    conn_leave(c);
    (void)loop;
}

void http_respond_ex(http_conn *c, int status, const char *extra_headers, const char *content_type,
                     const void *body, size_t len)
{
    if (!c || c->dead)
        return;
    if (!c->busy || c->streaming) {
        log_warn("http: %s: answer without a pending request (status %d) ignored", c->peer, status);
        return;
    }
    int close_conn = 0;
    if (status < 200 || status > 599 || !extra_headers_ok(extra_headers, &close_conn)) {
        log_error("http: %s: handler gave invalid status %d or extra headers; answering 500",
                  c->peer, status);
        static const char msg[] = "invalid response from handler\n";
        status = 500;
        extra_headers = NULL;
        content_type = "text/plain";
        body = msg;
        len = sizeof(msg) - 1;
    }
    int own_connection_header = 1;
    if (close_conn) {
        c->keep_alive = 0; /* the handler's "Connection: close" says it already */
        own_connection_header = 0;
    }
    char framing[64] = "";
    if (status_has_body(status))
        snprintf(framing, sizeof(framing), "Content-Length: %zu\r\n", len);
    if (queue_head(c, status, extra_headers, content_type, framing, own_connection_header) < 0 ||
        (!c->head && status_has_body(status) && out_append(c, body, len) < 0)) {
        log_error("http: %s: out of memory queueing an answer", c->peer);
        conn_close(c);
        return;
    }
    response_done(c);
}

void http_respond(http_conn *c, int status, const char *content_type, const void *body, size_t len)
{
    http_respond_ex(c, status, NULL, content_type, body, len);
}

int http_stream_begin(http_conn *c, int status, const char *content_type)
{
    if (!c || c->dead || !c->busy || c->streaming)
        return -1;
    if (status < 200 || status > 599 || !status_has_body(status))
        return -1;
    c->streaming = 1;
    const char *framing;
    if (c->req.version_minor >= 1) {
        c->stream_chunked = 1;
        framing = "Transfer-Encoding: chunked\r\n";
    } else {
        /* HTTP/1.0 has no chunked coding: the body ends when the connection does. */
        c->stream_chunked = 0;
        c->keep_alive = 0;
        framing = NULL;
    }
    if (queue_head(c, status, NULL, content_type, framing, 1) < 0) {
        conn_close(c);
        return -1;
    }
    return conn_flush(c);
}

int http_stream_write(http_conn *c, const void *data, size_t len)
{
    if (!c || c->dead || !c->busy || !c->streaming)
        return -1;
    if (len == 0 || c->head)
        return 0; /* a zero-size chunk would end the stream */
    size_t queued = c->out_len - c->out_off;
    if (queued + len + CHUNK_HEAD_BYTES > c->srv->lim.max_output_bytes) {
        log_warn("http: %s: client reads too slowly (%zu bytes queued), closing stream", c->peer,
                 queued);
        conn_close(c);
        return -1;
    }
    if ((c->stream_chunked && out_printf(c, "%zx\r\n", len) < 0) || out_append(c, data, len) < 0 ||
        (c->stream_chunked && out_append(c, "\r\n", 2) < 0)) {
        conn_close(c);
        return -1;
    }
    return conn_flush(c);
}

void http_stream_end(http_conn *c)
{
    if (!c || c->dead || !c->busy || !c->streaming)
        return;
    if (c->stream_chunked && !c->head && out_append(c, "0\r\n\r\n", 5) < 0) {
        conn_close(c);
        return;
    }
    response_done(c);
}

void http_conn_on_close(http_conn *c, void (*cb)(http_conn *c, void *arg), void *arg)
{
    if (!c || c->dead)
        return;
    c->on_close = cb;
    c->on_close_arg = arg;
}

const char *http_conn_peer(const http_conn *c)
{
    return c ? c->peer : "";
}

/* ---- input ---- */

static void answer_error(http_conn *c, int status, const char *reason)
{
    /* The body names the problem (a fixed text from the parser, never request bytes) so a
     * client author can see what the server objected to. */
    char body[192];
    int n = snprintf(body, sizeof(body), "%s: %s\n", http_status_reason(status),
                     reason ? reason : "bad request");
    if (n < 0 || (size_t)n >= sizeof(body))
        n = (int)strlen(body);
    log_debug("http: %s: answering %d: %s", c->peer, status, reason ? reason : "");
    c->close_after = 1;
    c->busy = 0;
    c->in_off = c->in_len = 0; /* nothing after a framing error can be trusted */
    if (out_printf(c,
                   "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                   "Connection: close\r\n\r\n",
                   status, http_status_reason(status), n) < 0 ||
        out_append(c, body, (size_t)n) < 0) {
        conn_close(c);
        return;
    }
    conn_flush(c);
}

/* Header section complete, body still coming, and the client asked for 100-continue? The
 * parser said MORE, so the complete header section found here is already valid. */
static void maybe_send_continue(http_conn *c)
{
    const char *in = c->in + c->in_off;
    size_t lim =
        in_pending(c) < c->srv->lim.max_header_bytes ? in_pending(c) : c->srv->lim.max_header_bytes;
    const char *end = memmem(in, lim, "\r\n\r\n", 4);
    if (!end)
        return;
    const char *line = memchr(in, '\n', (size_t)(end - in));
    if (!line || (size_t)(line - in) < 10 || memcmp(line - 10, " HTTP/1.1\r", 10) != 0)
        return;
    while (line && line < end) {
        line++;
        const char *eol = memchr(line, '\r', (size_t)(end + 2 - line));
        if (!eol)
            break;
        if (eol - line > 7 && strncasecmp(line, "expect:", 7) == 0) {
            const char *v = line + 7;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            if (eol - v >= 12 && strncasecmp(v, "100-continue", 12) == 0) {
                c->continue_sent = 1;
                if (out_append(c, "HTTP/1.1 100 Continue\r\n\r\n", 25) < 0)
                    conn_close(c);
                else
                    conn_flush(c);
                return;
            }
        }
        line = memchr(line, '\n', (size_t)(end + 2 - line));
    }
}

/* Hands buffered requests to the handler while it answers them at once. */
static void conn_process(http_conn *c)
{
    http_server *srv = c->srv;
    int handled = 0;
    while (!c->dead && !c->busy && !c->close_after && in_pending(c) > 0) {
        if (handled++ == REQS_PER_WAKEUP) {
            /* A deep pipeline: let other connections have the loop, continue next turn. */
            if (!c->resume)
                c->resume = evloop_timer_start(srv->loop, 0, conn_resume, c);
            if (c->resume)
                break;
        }
        size_t consumed = 0;
        int status = 0;
        const char *reason = NULL;
        enum http_parse_result r =
            http_parse_request_r(c->in + c->in_off, in_pending(c), &srv->lim, &c->req, &consumed,
                                 &status, &reason, &c->parse_resume);
        if (r == HTTP_PARSE_ERROR) {
            answer_error(c, status, reason);
            break;
        }
        if (r == HTTP_PARSE_MORE) {
            if (c->peer_eof) {
                conn_close(c); /* half a request, and the client is gone */
                break;
            }
            if (!c->continue_sent)
                maybe_send_continue(c);
            break;
        }
        c->busy = 1;
        c->served = 1;
        c->streaming = 0;
        c->req_consumed = consumed;
        c->keep_alive = c->req.keep_alive;
        c->head = strcmp(c->req.method, "HEAD") == 0;
        conn_update_events(c);
        conn_rearm(c, 0);
        srv->handler(c, &c->req, srv->arg);
        if (c->dead)
            break;
        if (c->busy && c->peer_eof) {
            conn_close(c); /* deferred, but the client already left */
            break;
        }
    }
    if (!c->dead && c->peer_eof && !c->busy) {
        /* Every complete request before the EOF is answered: finish writing, then close. */
        c->close_after = 1;
        if (c->out_len == c->out_off)
            conn_close(c);
    }
    if (!c->dead) {
        conn_update_events(c);
        conn_rearm(c, 0);
    }
}

/* Reads what is there (bounded per wakeup and by in_max). */
static void conn_read(http_conn *c)
{
    size_t budget = READ_PER_WAKEUP;
    if (c->in_off > 0) { /* compact what the answered requests left (only read when idle) */
        memmove(c->in, c->in + c->in_off, in_pending(c));
        c->in_len -= c->in_off;
        c->in_off = 0;
    }
    while (budget > 0 && !c->peer_eof && c->in_len < c->srv->in_max) {
        if (c->in_len == c->in_cap) {
            size_t n = c->in_cap ? c->in_cap * 2 : IN_INITIAL;
            if (n > c->srv->in_max)
                n = c->srv->in_max;
            char *p = realloc(c->in, n);
            if (!p) {
                log_error("http: %s: out of memory for input", c->peer);
                conn_close(c);
                return;
            }
            c->in = p;
            c->in_cap = n;
        }
        size_t room = c->in_cap - c->in_len;
        ssize_t n = recv(c->fd, c->in + c->in_len, room < budget ? room : budget, 0);
        if (n > 0) {
            c->in_len += (size_t)n;
            budget -= (size_t)n;
            if ((size_t)n < room)
                break; /* drained */
            continue;
        }
        if (n == 0) {
            c->peer_eof = 1;
            break;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            log_debug("http: %s: recv: %s", c->peer, strerror(errno));
            conn_close(c);
        }
        break;
    }
}

static void conn_io(evloop *loop, int fd, uint32_t events, void *arg)
{
    http_conn *c = arg;
    c->depth++;
    if (events & EPOLLERR) {
        conn_close(c);
    } else {
        if ((events & EPOLLOUT) && c->out_len > c->out_off)
            conn_flush(c);
        if (!c->dead && (events & EPOLLIN) && !c->busy && !c->close_after) {
            int had_data = in_pending(c) > 0;
            conn_read(c);
            if (!c->dead && !had_data && in_pending(c) > 0 && c->timer_kind == TK_IDLE)
                c->timer_kind = TK_NONE; /* a new request starts: header timer from now */
        }
        if (!c->dead && (events & (EPOLLRDHUP | EPOLLHUP)) && !(events & EPOLLIN))
            c->peer_eof = 1;
        if (!c->dead && (events & EPOLLHUP) && c->out_len > c->out_off)
            conn_close(c); /* nobody will read what is queued */
        if (!c->dead && c->peer_eof && c->busy)
            conn_close(c);
        if (!c->dead)
            conn_process(c);
    }
    conn_leave(c);
    (void)loop;
    (void)fd;
}

/* ---- listening ---- */

static void set_listeners(http_server *srv, uint32_t events)
{
    for (size_t i = 0; i < srv->nlfd; i++)
        evloop_mod_fd(srv->loop, srv->lfd[i], events);
}

static void accept_resume(evloop *loop, void *arg)
{
    http_server *srv = arg;
    srv->accept_pause = NULL;
    set_listeners(srv, EPOLLIN);
    (void)loop;
}

static void format_peer(const struct sockaddr_storage *ss, char *out, size_t outsz)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        port = ntohs(a->sin_port);
        snprintf(out, outsz, "%s:%u", host, port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        port = ntohs(a->sin6_port);
        snprintf(out, outsz, "[%s]:%u", host, port);
    } else {
        snprintf(out, outsz, "unknown");
    }
}

int http_server_adopt(http_server *srv, int fd, const char *peer)
{
    if (srv->nconns >= srv->lim.max_connections) {
        close(fd);
        errno = EMFILE;
        return -1;
    }
    http_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        errno = ENOMEM;
        return -1;
    }
    c->srv = srv;
    c->fd = fd;
    snprintf(c->peer, sizeof(c->peer), "%s", peer ? peer : "unknown");
    c->events = EPOLLIN | EPOLLRDHUP;
    if (evloop_add_fd(srv->loop, fd, c->events, conn_io, c) < 0) {
        int e = errno;
        close(fd);
        free(c);
        errno = e;
        return -1;
    }
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->nconns++;
    conn_rearm(c, 0);
    return 0;
}

static void on_accept(evloop *loop, int lfd, uint32_t events, void *arg)
{
    http_server *srv = arg;
    for (int i = 0; i < ACCEPT_BURST; i++) {
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof(ss));
        socklen_t sl = sizeof(ss);
        int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Level-triggered listeners would spin: pause accepting briefly. */
                log_warn("http: accept: %s; pausing accepts for %d ms", strerror(errno),
                         ACCEPT_PAUSE_MS);
                if (!srv->accept_pause) {
                    set_listeners(srv, 0);
                    srv->accept_pause =
                        evloop_timer_start(loop, ACCEPT_PAUSE_MS, accept_resume, srv);
                    if (!srv->accept_pause)
                        set_listeners(srv, EPOLLIN);
                }
            }
            return;
        }
        char peer[64];
        format_peer(&ss, peer, sizeof(peer));
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        http_server_adopt(srv, fd, peer);
    }
    (void)events;
}

http_server *http_server_new(evloop *loop, const http_limits *lim, http_handler handler, void *arg)
{
    if (!loop || !handler)
        return NULL;
    http_server *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return NULL;
    srv->loop = loop;
    if (lim)
        srv->lim = *lim;
    else
        http_limits_default(&srv->lim);
    srv->handler = handler;
    srv->arg = arg;
    /* Largest buffer a parse can need before it decides: the header section, a chunked
     * body's wire bound and its trailers (see http_parse.c). */
    srv->in_max = srv->lim.max_header_bytes * 2 + srv->lim.max_body_bytes * 2 + 65536;
    return srv;
}

int http_server_listen(http_server *srv, const char *host, const char *port)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        log_error("http: listen %s:%s: %s", host ? host : "*", port, gai_strerror(rc));
        errno = EINVAL;
        return -1;
    }
    int bound = 0, err = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (srv->nlfd == MAX_LISTENERS) {
            err = EMFILE;
            break;
        }
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (ai->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 511) < 0 ||
            evloop_add_fd(srv->loop, fd, srv->accept_pause ? 0 : EPOLLIN, on_accept, srv) < 0) {
            err = errno;
            close(fd);
            continue;
        }
        srv->lfd[srv->nlfd++] = fd;
        bound++;
    }
    freeaddrinfo(res);
    if (!bound) {
        log_error("http: listen %s:%s: %s", host ? host : "*", port, strerror(err));
        errno = err ? err : EADDRNOTAVAIL;
        return -1;
    }
    return 0;
}

int http_server_bound_port(const http_server *srv)
{
    if (!srv || srv->nlfd == 0)
        return -1;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t sl = sizeof(ss);
    if (getsockname(srv->lfd[srv->nlfd - 1], (struct sockaddr *)&ss, &sl) < 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

void http_server_free(http_server *srv)
{
    if (!srv)
        return;
    for (size_t i = 0; i < srv->nlfd; i++) {
        evloop_del_fd(srv->loop, srv->lfd[i]);
        close(srv->lfd[i]);
    }
    if (srv->accept_pause)
        evloop_timer_cancel(srv->loop, srv->accept_pause);
    /* conn_close unlinks the head (it has no prev) before freeing it; the analyzer cannot
     * follow that through the list. An on_close callback may answer (and so close) other
     * connections, which is why this re-reads the head instead of caching next. */
    while (srv->conns)
        conn_close(srv->conns); // NOLINT(clang-analyzer-unix.Malloc)
    free(srv);
}
