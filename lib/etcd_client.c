/* etcd v3 JSON gateway client: request building (base64, int64 as strings), endpoint
 * failover within a deadline, response parsing, and a chunked watch stream splitter. */
#include "etcd_client.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "etcd_parse_internal.h"
#include "log.h"

#define ETCD_MAX_RESPONSE     ((size_t)8 << 20)
#define ETCD_WATCH_MAX_OBJECT ((size_t)4 << 20)
#define ETCD_MIN_TRY_MS       500
#define ETCD_ROUND_PAUSE_MS   100 /* between two rounds over all endpoints */
#define ETCD_MAX_TRIES        64  /* bound on tries per call, whatever the deadline */

struct etcd_client {
    evloop *loop;
    http_client *http;
    char *endpoints[ETCD_MAX_ENDPOINTS];
    size_t n;
    size_t current;
    struct etcd_call *calls; /* pending, for cancel on free */
    struct etcd_watch *watches;
};

typedef struct etcd_call {
    etcd_client *c;
    char path[64];
    char *body;
    uint64_t deadline;
    size_t tries;
    size_t endpoint;
    etcd_cb cb;
    void *arg;
    http_client_req *req;
    ev_timer *backoff; /* armed between two rounds over every endpoint */
    struct etcd_call *next, *prev;
} etcd_call;

struct etcd_watch {
    etcd_client *c;
    http_client_req *req;
    etcd_json_splitter split;
    etcd_watch_event_cb on_event;
    etcd_watch_end_cb on_end;
    void *arg;
    int ended;
    char *body;
    struct etcd_watch *next, *prev;
};

/* ---- JSON helpers ---- */

static json_t *b64(const char *data, size_t len)
{
    size_t n = base64_encoded_size(len);
    char *tmp = malloc(n);
    if (!tmp)
        return NULL;
    base64_encode(data, len, tmp);
    json_t *s = json_string(tmp);
    free(tmp);
    return s;
}

static json_t *i64s(int64_t v)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%" PRId64, v);
    return json_string(buf);
}

/* ---- calls ---- */

static void call_try(etcd_call *call);

static void on_backoff(evloop *loop, void *arg)
{
    (void)loop;
    etcd_call *call = arg;
    call->backoff = NULL;
    call_try(call);
}

static void call_finish(etcd_call *call, const etcd_result *res)
{
    etcd_client *c = call->c;
    if (call->prev)
        call->prev->next = call->next;
    else
        c->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    etcd_cb cb = call->cb;
    void *arg = call->arg;
    free(call->body);
    free(call);
    if (cb)
        cb(res, arg);
}

static void call_done(const http_client_result *hr, void *arg)
{
    etcd_call *call = arg;
    etcd_client *c = call->c;
    call->req = NULL;
    etcd_result res;
    char errbuf[320];
    int retry = 0;
    if (hr->status == 0) {
        memset(&res, 0, sizeof(res));
        snprintf(errbuf, sizeof(errbuf), "%s: %s", c->endpoints[call->endpoint],
                 hr->error ? hr->error : "transport error");
        res.error = errbuf;
        retry = 1;
    } else {
        etcd_parse_response(hr->body, hr->body_len, hr->status, &res, errbuf, sizeof(errbuf));
        /* Unavailable (no leader, timeout on the member) or a 5xx: try another member. */
        if (!res.ok && (res.grpc_code == 14 || hr->status >= 500))
            retry = 1;
    }
    if (retry) {
        /* During an election every member answers "no leader" (and a killed one refuses
         * connections) within a millisecond: going round the list without a pause would
         * spend every try in a few ms and fail the call long before its deadline, while
         * etcd needs about one election timeout to have a leader again. So: the next
         * member at once, but after a full round a short pause, until the deadline. */
        uint64_t now = evloop_update_now(c->loop);
        if (call->tries < ETCD_MAX_TRIES && now + 50 < call->deadline) {
            etcd_result_clear(&res);
            c->current = (call->endpoint + 1) % c->n;
            log_debug("etcd: %s; trying %s", errbuf, c->endpoints[c->current]);
            if (call->tries % c->n != 0) {
                call_try(call);
                return;
            }
            uint64_t pause = ETCD_ROUND_PAUSE_MS;
            if (now + pause + 50 > call->deadline)
                pause = call->deadline - now - 50;
            call->backoff = evloop_timer_start(c->loop, pause, on_backoff, call);
            if (call->backoff)
                return;
            call_try(call);
            return;
        }
    } else {
        c->current = call->endpoint;
    }
    call_finish(call, &res);
    etcd_result_clear(&res);
}

static void call_try(etcd_call *call)
{
    etcd_client *c = call->c;
    uint64_t now = evloop_update_now(c->loop);
    uint64_t left = call->deadline > now ? call->deadline - now : 1;
    uint64_t per = left / (c->n > 1 ? 2 : 1);
    if (per < ETCD_MIN_TRY_MS)
        per = left;
    call->endpoint = c->current;
    call->tries++;
    char url[512];
    snprintf(url, sizeof(url), "%s%s", c->endpoints[call->endpoint], call->path);
    static const char *const headers[] = {"Content-Type: application/json", NULL};
    http_client_opts o;
    memset(&o, 0, sizeof(o));
    o.method = "POST";
    o.headers = headers;
    o.body = call->body;
    o.body_len = strlen(call->body);
    o.timeout_ms = (uint32_t)per;
    o.connect_timeout_ms = (uint32_t)(per < 1000 ? per : 1000);
    o.max_body_bytes = ETCD_MAX_RESPONSE;
    call->req = http_client_request(c->http, url, &o, call_done, call);
    if (!call->req) {
        etcd_result res;
        memset(&res, 0, sizeof(res));
        res.error = "cannot start HTTP request";
        call_finish(call, &res);
    }
}

static int call_start(etcd_client *c, const char *path, json_t *body, uint32_t timeout_ms,
                      etcd_cb cb, void *arg)
{
    if (!body)
        return -1;
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    etcd_call *call = calloc(1, sizeof(*call));
    if (!text || !call) {
        free(text);
        free(call);
        return -1;
    }
    call->c = c;
    snprintf(call->path, sizeof(call->path), "%s", path);
    call->body = text;
    call->deadline = evloop_update_now(c->loop) + (timeout_ms ? timeout_ms : 5000);
    call->cb = cb;
    call->arg = arg;
    call->next = c->calls;
    if (c->calls)
        c->calls->prev = call;
    c->calls = call;
    call_try(call);
    return 0;
}

etcd_client *etcd_client_new(evloop *loop, http_client *http, const char *const *endpoints,
                             size_t n)
{
    if (n == 0 || n > ETCD_MAX_ENDPOINTS)
        return NULL;
    etcd_client *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->loop = loop;
    c->http = http;
    for (size_t i = 0; i < n; i++) {
        c->endpoints[i] = strdup(endpoints[i]);
        if (!c->endpoints[i]) {
            c->n = i;
            etcd_client_free(c);
            return NULL;
        }
        /* no trailing slash: paths start with '/' */
        size_t l = strlen(c->endpoints[i]);
        if (l && c->endpoints[i][l - 1] == '/')
            c->endpoints[i][l - 1] = '\0';
    }
    c->n = n;
    return c;
}

void etcd_client_free(etcd_client *c)
{
    if (!c)
        return;
    while (c->calls) {
        etcd_call *call = c->calls;
        c->calls = call->next;
        if (call->req)
            http_client_cancel(c->http, call->req);
        if (call->backoff)
            evloop_timer_cancel(c->loop, call->backoff);
        free(call->body);
        free(call);
    }
    while (c->watches)
        etcd_watch_cancel(c->watches);
    for (size_t i = 0; i < c->n; i++)
        free(c->endpoints[i]);
    free(c);
}

const char *etcd_client_current_endpoint(const etcd_client *c)
{
    return c->endpoints[c->current];
}

int etcd_range(etcd_client *c, const char *key, size_t key_len, const char *range_end,
               size_t range_end_len, int serializable, uint32_t timeout_ms, etcd_cb cb, void *arg)
{
    json_t *b = json_object();
    json_object_set_new(b, "key", b64(key, key_len));
    if (range_end)
        json_object_set_new(b, "range_end", b64(range_end, range_end_len));
    if (serializable)
        json_object_set_new(b, "serializable", json_true());
    return call_start(c, "/v3/kv/range", b, timeout_ms, cb, arg);
}

static json_t *put_obj(const char *key, size_t key_len, const char *value, size_t value_len,
                       int64_t lease)
{
    json_t *b = json_object();
    json_object_set_new(b, "key", b64(key, key_len));
    json_object_set_new(b, "value", b64(value, value_len));
    if (lease)
        json_object_set_new(b, "lease", i64s(lease));
    return b;
}

int etcd_put(etcd_client *c, const char *key, size_t key_len, const char *value, size_t value_len,
             int64_t lease, uint32_t timeout_ms, etcd_cb cb, void *arg)
{
    return call_start(c, "/v3/kv/put", put_obj(key, key_len, value, value_len, lease), timeout_ms,
                      cb, arg);
}

static json_t *delete_obj(const char *key, size_t key_len, const char *range_end,
                          size_t range_end_len)
{
    json_t *b = json_object();
    json_object_set_new(b, "key", b64(key, key_len));
    if (range_end)
        json_object_set_new(b, "range_end", b64(range_end, range_end_len));
    return b;
}

int etcd_delete(etcd_client *c, const char *key, size_t key_len, const char *range_end,
                size_t range_end_len, uint32_t timeout_ms, etcd_cb cb, void *arg)
{
    return call_start(c, "/v3/kv/deleterange", delete_obj(key, key_len, range_end, range_end_len),
                      timeout_ms, cb, arg);
}

static json_t *ops_array(const etcd_op *ops, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        const etcd_op *op = &ops[i];
        if (op->type == ETCD_OP_PUT)
            json_array_append_new(
                a, json_pack("{s:o}", "request_put",
                             put_obj(op->key, op->key_len, op->value, op->value_len, op->lease)));
        else
            json_array_append_new(
                a, json_pack("{s:o}", "request_delete_range",
                             delete_obj(op->key, op->key_len, op->range_end, op->range_end_len)));
    }
    return a;
}

int etcd_txn(etcd_client *c, const etcd_compare *cmp, size_t ncmp, const etcd_op *success,
             size_t nsuccess, const etcd_op *failure, size_t nfailure, uint32_t timeout_ms,
             etcd_cb cb, void *arg)
{
    static const char *const targets[] = {"VERSION", "CREATE", "MOD", "VALUE", "LEASE"};
    static const char *const results[] = {"EQUAL", "GREATER", "LESS", "NOT_EQUAL"};
    static const char *const fields[] = {"version", "create_revision", "mod_revision", "value",
                                         "lease"};
    json_t *b = json_object();
    json_t *ca = json_array();
    for (size_t i = 0; i < ncmp; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "key", b64(cmp[i].key, cmp[i].key_len));
        json_object_set_new(o, "target", json_string(targets[cmp[i].target]));
        if (cmp[i].result != ETCD_EQUAL)
            json_object_set_new(o, "result", json_string(results[cmp[i].result]));
        if (cmp[i].target == ETCD_CMP_VALUE)
            json_object_set_new(o, "value", b64(cmp[i].value, cmp[i].value_len));
        else
            json_object_set_new(o, fields[cmp[i].target], i64s(cmp[i].number));
        json_array_append_new(ca, o);
    }
    json_object_set_new(b, "compare", ca);
    json_object_set_new(b, "success", ops_array(success, nsuccess));
    if (nfailure)
        json_object_set_new(b, "failure", ops_array(failure, nfailure));
    return call_start(c, "/v3/kv/txn", b, timeout_ms, cb, arg);
}

int etcd_lease_grant(etcd_client *c, int64_t ttl, uint32_t timeout_ms, etcd_cb cb, void *arg)
{
    return call_start(c, "/v3/lease/grant", json_pack("{s:I}", "TTL", (json_int_t)ttl), timeout_ms,
                      cb, arg);
}

int etcd_lease_keepalive(etcd_client *c, int64_t id, uint32_t timeout_ms, etcd_cb cb, void *arg)
{
    return call_start(c, "/v3/lease/keepalive", json_pack("{s:o}", "ID", i64s(id)), timeout_ms, cb,
                      arg);
}

int etcd_lease_revoke(etcd_client *c, int64_t id, uint32_t timeout_ms, etcd_cb cb, void *arg)
{
    return call_start(c, "/v3/lease/revoke", json_pack("{s:o}", "ID", i64s(id)), timeout_ms, cb,
                      arg);
}

/* ---- watch ---- */

static void watch_end(etcd_watch *w, const char *why)
{
    if (w->ended)
        return;
    w->ended = 1;
    etcd_watch_end_cb on_end = w->on_end;
    void *arg = w->arg;
    etcd_watch_cancel(w);
    if (on_end)
        on_end(why, arg);
}

static int watch_object(const char *obj, size_t len, void *arg)
{
    etcd_watch *w = arg;
    json_t *root = json_loadb(obj, len, 0, NULL);
    json_t *r = json_object_get(root, "result");
    if (!json_is_object(r)) {
        json_decref(root);
        return -1; /* {"error":...} or garbage: end the stream */
    }
    if (json_is_true(json_object_get(r, "canceled"))) {
        json_decref(root);
        return -1;
    }
    int64_t rev = etcd_get_i64(json_object_get(r, "header"), "revision");
    json_t *events = json_object_get(r, "events");
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev)
    {
        etcd_kv kv;
        if (etcd_parse_kv(json_object_get(ev, "kv"), &kv) != 0)
            continue;
        json_t *type = json_object_get(ev, "type");
        int del = json_is_string(type) && strcmp(json_string_value(type), "DELETE") == 0;
        if (w->on_event)
            w->on_event(del, &kv, rev, w->arg);
        free(kv.key);
        free(kv.value);
        if (w->ended)
            break;
    }
    json_decref(root);
    return w->ended ? -1 : 0;
}

static int watch_data(const char *data, size_t len, void *arg)
{
    etcd_watch *w = arg;
    if (etcd_splitter_feed(&w->split, data, len, watch_object, w) != 0)
        return -1;
    return 0;
}

static void watch_done(const http_client_result *hr, void *arg)
{
    etcd_watch *w = arg;
    w->req = NULL;
    watch_end(w, hr->status == 0 ? (hr->error ? hr->error : "watch transport error")
                                 : "watch stream ended");
}

etcd_watch *etcd_watch_start(etcd_client *c, const char *key, size_t key_len, const char *range_end,
                             size_t range_end_len, int64_t start_revision,
                             etcd_watch_event_cb on_event, etcd_watch_end_cb on_end, void *arg)
{
    etcd_watch *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    json_t *cr = json_object();
    json_object_set_new(cr, "key", b64(key, key_len));
    if (range_end)
        json_object_set_new(cr, "range_end", b64(range_end, range_end_len));
    if (start_revision)
        json_object_set_new(cr, "start_revision", i64s(start_revision));
    json_t *b = json_pack("{s:o}", "create_request", cr);
    w->body = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    w->c = c;
    w->on_event = on_event;
    w->on_end = on_end;
    w->arg = arg;
    etcd_splitter_init(&w->split, ETCD_WATCH_MAX_OBJECT);
    char url[512];
    snprintf(url, sizeof(url), "%s/v3/watch", c->endpoints[c->current]);
    static const char *const headers[] = {"Content-Type: application/json", NULL};
    http_client_opts o;
    memset(&o, 0, sizeof(o));
    o.method = "POST";
    o.headers = headers;
    o.body = w->body;
    o.body_len = w->body ? strlen(w->body) : 0;
    o.timeout_ms = 0;
    o.connect_timeout_ms = 1000;
    o.on_data = watch_data;
    w->next = c->watches;
    if (c->watches)
        c->watches->prev = w;
    c->watches = w;
    w->req = w->body ? http_client_request(c->http, url, &o, watch_done, w) : NULL;
    if (!w->req) {
        etcd_watch_cancel(w);
        return NULL;
    }
    return w;
}

void etcd_watch_cancel(etcd_watch *w)
{
    etcd_client *c = w->c;
    if (w->req)
        http_client_cancel(c->http, w->req);
    if (w->prev)
        w->prev->next = w->next;
    else
        c->watches = w->next;
    if (w->next)
        w->next->prev = w->prev;
    etcd_splitter_free(&w->split);
    free(w->body);
    free(w);
}
