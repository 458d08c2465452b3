/* Asynchronous HTTP client: libcurl's multi interface driven by lib/evloop.
 *
 * curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION -> evloop fds) and when
 * to call it back (CURLMOPT_TIMERFUNCTION -> one evloop timer); readiness goes back in
 * through curl_multi_socket_action. No curl_multi_wait/poll, no threads of our own (the
 * release curl's threaded resolver has its own, which curl manages).
 *
 * Decisions:
 * - Proxies are disabled (CURLOPT_PROXY ""): an http_proxy variable in a container's
 *   environment must not reroute cluster-internal calls.
 * - "Expect:" is always sent empty: curl would otherwise wait for "100 Continue" on large
 *   bodies; our peers answer directly.
 * - A cancel from inside a curl callback (e.g. on_data, or code it calls, dropping its
 *   own watch) only marks the request; it is removed once curl has returned. A cancelled
 *   request never calls done or on_data again.
 * - The buffered body over max_body_bytes aborts the transfer: status 0 and an error
 *   naming the bound (a partial body is never handed out as if complete).
 * - http_client_free from inside a done/on_data callback is allowed: it cancels
 *   everything and the memory is released when the callback returns. */
#include "http_client.h"
#include "log.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_CONNECT_TIMEOUT_MS 1000
#define DEFAULT_MAX_BODY           ((size_t)4 * 1024 * 1024)
#define MAX_CACHED_CONNECTIONS     32
#define MAX_HEADER_BYTES           16384 /* response header lines kept per request */

struct http_client_req {
    http_client *cli;
    http_client_req *prev, *next;
    CURL *easy;
    struct curl_slist *headers;
    http_client_done_cb done;
    http_client_data_cb on_data;
    void *arg;
    char *body;
    size_t body_len, body_cap, max_body;
    char *hdrs;
    size_t hdrs_len;
    int overflow;     /* buffered body exceeded max_body */
    int data_aborted; /* on_data returned -1 */
    int cancelled;    /* marked from inside curl; removed afterwards */
    int pending_add;  /* started from inside curl; added to the multi afterwards */
    char errbuf[CURL_ERROR_SIZE];
};

struct http_client {
    evloop *loop;
    CURLM *multi;
    ev_timer *timer;
    http_client_req *reqs;
    int in_curl;      /* >0 while curl_multi_socket_action runs (its callbacks may call us) */
    int in_callback;  /* >0 while a done callback runs */
    int free_pending; /* http_client_free called from a callback */
};

/* curl_multi_assign marker: this socket is registered with the loop. */
static char registered_marker;

static void req_unlink(http_client_req *r)
{
    http_client *c = r->cli;
    if (r->prev)
        r->prev->next = r->next;
    else
        c->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

static void req_destroy(http_client_req *r)
{
    req_unlink(r);
    if (!r->pending_add)
        curl_multi_remove_handle(r->cli->multi, r->easy);
    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    free(r->body);
    free(r->hdrs);
    free(r);
}

/* ---- curl -> evloop ---- */

static void process(http_client *c, curl_socket_t fd, int action);

static void on_fd(evloop *loop, int fd, uint32_t events, void *arg)
{
    http_client *c = arg;
    int action = 0;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP))
        action |= CURL_CSELECT_IN;
    if (events & EPOLLOUT)
        action |= CURL_CSELECT_OUT;
    if (events & EPOLLERR)
        action |= CURL_CSELECT_ERR;
    process(c, fd, action);
    (void)loop;
}

static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    http_client *c = userp;
    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (socketp) {
            evloop_del_fd(c->loop, s);
            curl_multi_assign(c->multi, s, NULL);
        }
        return 0;
    }
    uint32_t ev = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        ev |= EPOLLIN;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        ev |= EPOLLOUT;
    if (socketp) {
        if (evloop_mod_fd(c->loop, s, ev) < 0)
            log_warn("http_client: epoll mod fd %d: failed", (int)s);
        return 0;
    }
    if (evloop_add_fd(c->loop, s, ev, on_fd, c) < 0) {
        log_error("http_client: cannot watch fd %d", (int)s);
        return -1; /* curl fails the transfer */
    }
    curl_multi_assign(c->multi, s, &registered_marker);
    return 0;
}

static void on_timer(evloop *loop, void *arg)
{
    http_client *c = arg;
    c->timer = NULL;
    process(c, CURL_SOCKET_TIMEOUT, 0);
    (void)loop;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    http_client *c = userp;
    (void)multi;
    if (c->timer)
        evloop_timer_cancel(c->loop, c->timer);
    c->timer = NULL;
    if (timeout_ms < 0)
        return 0;
    /* Never call curl from here (curl's rule): a zero delay fires from the loop. */
    c->timer = evloop_timer_start(c->loop, (uint64_t)timeout_ms, on_timer, c);
    return c->timer ? 0 : -1;
}

/* ---- completion ---- */

static void finish(http_client *c, http_client_req *r, CURLcode code)
{
    http_client_result res;
    memset(&res, 0, sizeof(res));
    long status = 0;
    double total = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME, &total);
    res.total_seconds = total;
    char err[CURL_ERROR_SIZE + 64];
    if (r->overflow) {
        snprintf(err, sizeof(err), "response body larger than max_body_bytes (%zu)", r->max_body);
        res.error = err;
    } else if (r->data_aborted) {
        res.error = "aborted by the data callback";
    } else if (code != CURLE_OK) {
        snprintf(err, sizeof(err), "%s", r->errbuf[0] ? r->errbuf : curl_easy_strerror(code));
        res.error = err;
    } else {
        res.status = (int)status;
    }
    if (res.status == 0 && !res.error)
        res.error = "no HTTP status received";
    res.body = r->body ? r->body : "";
    res.body_len = res.status ? r->body_len : 0;
    if (!res.status)
        res.body = "";
    res.headers = r->hdrs && res.status ? r->hdrs : "";
    res.headers_len = res.status ? r->hdrs_len : 0;
    http_client_done_cb done = r->done;
    void *arg = r->arg;
    /* Detach first: the callback may start new requests or cancel others. */
    req_unlink(r);
    if (!r->pending_add)
        curl_multi_remove_handle(c->multi, r->easy);
    c->in_callback++;
    done(&res, arg);
    c->in_callback--;
    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    free(r->body);
    free(r->hdrs);
    free(r);
}

static void client_release(http_client *c);

/* Runs curl for one event, then delivers completed transfers and drops cancelled ones. */
static void process(http_client *c, curl_socket_t fd, int action)
{
    int running = 0;
    c->in_curl++;
    curl_multi_socket_action(c->multi, fd, action, &running);
    c->in_curl--;
    c->in_callback++; /* keep c alive across done callbacks that free the client */
    /* Requests cancelled or started from inside curl's callbacks (curl forbids adding or
     * removing handles there). A deferred add that fails completes with an error. */
    for (int again = 1; again;) {
        again = 0;
        /* req_destroy unlinks before freeing, so c->reqs never holds a freed request; the
         * analyzer cannot follow the doubly linked list (same below). */
        for (http_client_req *r = c->reqs; r; r = r->next) {
            if (r->cancelled) { // NOLINT(clang-analyzer-unix.Malloc)
                req_destroy(r);
                again = 1; /* the list changed: start over */
                break;
            }
            if (r->pending_add) {
                r->pending_add = 0;
                if (curl_multi_add_handle(c->multi, r->easy) != CURLM_OK) {
                    snprintf(r->errbuf, sizeof(r->errbuf), "cannot start the transfer");
                    finish(c, r, CURLE_FAILED_INIT);
                    again = 1;
                    break;
                }
            }
        }
    }
    CURLMsg *msg;
    int left;
    while (!c->free_pending && (msg = curl_multi_info_read(c->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        char *priv = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        http_client_req *r = (http_client_req *)priv;
        CURLcode code = msg->data.result;
        if (!r)
            continue;
        if (r->cancelled) {
            req_destroy(r);
            continue;
        }
        finish(c, r, code);
    }
    c->in_callback--;
    if (c->free_pending && c->in_callback == 0 && c->in_curl == 0)
        client_release(c);
}

/* ---- write callback ---- */

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    http_client_req *r = userdata;
    size_t n = size * nmemb;
    if (r->cancelled)
        return 0;
    if (r->on_data) {
        if (r->on_data(ptr, n, r->arg) < 0) {
            r->data_aborted = 1;
            return 0;
        }
        return n;
    }
    if (n > r->max_body - r->body_len) {
        r->overflow = 1;
        return 0;
    }
    if (r->body_len + n + 1 > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 1024;
        while (cap < r->body_len + n + 1)
            cap *= 2;
        char *p = realloc(r->body, cap);
        if (!p)
            return 0;
        r->body = p;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, ptr, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return n;
}

/* One header line per call, status lines included. A status line starts a new response
 * (after "100 Continue" or a 1xx), so the kept lines are the final response's. */
static size_t header_cb(char *ptr, size_t size, size_t nitems, void *userdata)
{
    http_client_req *r = userdata;
    size_t n = size * nitems;
    if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) {
        r->hdrs_len = 0;
        if (r->hdrs)
            r->hdrs[0] = '\0';
        return n;
    }
    if (n <= 2 || r->hdrs_len + n + 1 > MAX_HEADER_BYTES)
        return n; /* the blank line, or beyond the bound: not kept */
    if (!r->hdrs) {
        r->hdrs = malloc(MAX_HEADER_BYTES);
        if (!r->hdrs)
            return n;
    }
    memcpy(r->hdrs + r->hdrs_len, ptr, n);
    r->hdrs_len += n;
    r->hdrs[r->hdrs_len] = '\0';
    return n;
}

int http_client_result_header(const http_client_result *res, const char *name, char *out,
                              size_t outsz)
{
    size_t nlen = strlen(name);
    const char *p = res->headers, *end = res->headers + res->headers_len;
    while (p && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = eol ? eol : end;
        const char *colon = memchr(p, ':', (size_t)(le - p));
        if (colon && (size_t)(colon - p) == nlen && strncasecmp(p, name, nlen) == 0) {
            const char *v = colon + 1, *ve = le;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            size_t vl = (size_t)(ve - v);
            if (vl + 1 > outsz)
                return -2;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return (int)vl;
        }
        p = eol ? eol + 1 : end;
    }
    return -1;
}

/* ---- public ---- */

http_client *http_client_new(evloop *loop)
{
    static int curl_ready;
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return NULL;
        curl_ready = 1;
    }
    http_client *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->loop = loop;
    c->multi = curl_multi_init();
    if (!c->multi) {
        free(c);
        return NULL;
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)MAX_CACHED_CONNECTIONS);
    return c;
}

static void client_release(http_client *c)
{
    while (c->reqs)
        req_destroy(c->reqs); // NOLINT(clang-analyzer-unix.Malloc)
    if (c->timer)
        evloop_timer_cancel(c->loop, c->timer);
    c->timer = NULL;
    /* Cleanup closes cached connections; their REMOVE callbacks unregister the fds. */
    curl_multi_cleanup(c->multi);
    if (c->timer)
        evloop_timer_cancel(c->loop, c->timer);
    free(c);
}

void http_client_free(http_client *c)
{
    if (!c)
        return;
    if (c->in_callback || c->in_curl) {
        c->free_pending = 1;
        for (http_client_req *r = c->reqs; r; r = r->next)
            r->cancelled = 1;
        return;
    }
    client_release(c);
}

static int method_is(const char *m, const char *want)
{
    return strcmp(m, want) == 0;
}

http_client_req *http_client_request(http_client *c, const char *url, const http_client_opts *opts,
                                     http_client_done_cb done, void *arg)
{
    if (!c || !url || !done || c->free_pending)
        return NULL;
    http_client_opts dflt;
    memset(&dflt, 0, sizeof(dflt));
    if (!opts)
        opts = &dflt;
    http_client_req *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->cli = c;
    r->done = done;
    r->on_data = opts->on_data;
    r->arg = arg;
    r->max_body = opts->max_body_bytes ? opts->max_body_bytes : DEFAULT_MAX_BODY;
    r->easy = curl_easy_init();
    if (!r->easy) {
        free(r);
        return NULL;
    }
    CURL *e = r->easy;
    const char *method = opts->method ? opts->method : "GET";
    int ok = 1;
    ok &= curl_easy_setopt(e, CURLOPT_URL, url) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)r) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_WRITEDATA, r) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_HEADERDATA, r) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_PROXY, "") == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)opts->timeout_ms) == CURLE_OK;
    ok &=
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                         (long)(opts->connect_timeout_ms ? opts->connect_timeout_ms
                                                         : DEFAULT_CONNECT_TIMEOUT_MS)) == CURLE_OK;
    if (opts->body || method_is(method, "POST") || method_is(method, "PUT") ||
        method_is(method, "PATCH")) {
        /* COPYPOSTFIELDS copies: the caller's body need not outlive this call. */
        ok &= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)opts->body_len) ==
              CURLE_OK;
        ok &= curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, opts->body ? opts->body : "") == CURLE_OK;
        if (!method_is(method, "POST"))
            ok &= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method) == CURLE_OK;
    } else if (method_is(method, "HEAD")) {
        ok &= curl_easy_setopt(e, CURLOPT_NOBODY, 1L) == CURLE_OK;
    } else if (!method_is(method, "GET")) {
        ok &= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method) == CURLE_OK;
    }
    struct curl_slist *h = curl_slist_append(NULL, "Expect:");
    for (const char *const *p = opts->headers; h && p && *p; p++) {
        struct curl_slist *n = curl_slist_append(h, *p);
        if (!n) {
            curl_slist_free_all(h);
            h = NULL;
            break;
        }
        h = n;
    }
    r->headers = h;
    ok &= h != NULL;
    ok &= curl_easy_setopt(e, CURLOPT_HTTPHEADER, h) == CURLE_OK;
    if (!ok) {
        log_error("http_client: cannot set up request to %s", url);
        curl_easy_cleanup(e);
        curl_slist_free_all(h);
        free(r);
        return NULL;
    }
    if (c->in_curl) {
        r->pending_add = 1; /* from inside a curl callback: added when curl returns */
    } else if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        curl_slist_free_all(h);
        free(r);
        return NULL;
    }
    r->next = c->reqs;
    if (c->reqs)
        c->reqs->prev = r;
    c->reqs = r;
    return r;
}

void http_client_cancel(http_client *c, http_client_req *req)
{
    if (!c || !req || req->cancelled)
        return;
    if (c->in_curl) {
        req->cancelled = 1; /* curl is on the stack: remove it once it returns */
        return;
    }
    req_destroy(req);
}
