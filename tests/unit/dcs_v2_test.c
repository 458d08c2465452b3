/* etcd v2 keys store and codec: TTL expiry through the EXPIRE command (deterministic on
 * the carried time), refresh, hidden keys, in-order keys, dir rules, the 1000-event
 * history window (401 when cleared), waits matching, form parsing errors, rendering. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dcs/store_cmd_buf.h"
#include "dcs/v2_codec.h"
#include "dcs/v2_store.h"
#include "dcs/v2_watch.h"

static mvcc_arena A;

static v2_result op(v2_store *s, const char *method, const char *target, const char *body,
                    int64_t now)
{
    char path[256];
    snprintf(path, sizeof(path), "%s", target);
    char *q = strchr(path, '?');
    const char *query = "";
    if (q) {
        *q = 0;
        query = q + 1;
    }
    v2_request req;
    v2_result res;
    if (v2_parse_request(method, path, query, body, strlen(body), now, &A, &req, &res) != 0)
        return res;
    if (req.method == V2_GET)
        v2_store_get(s, &req, now, &A, &res);
    else
        v2_store_apply(s, &req, &A, &res);
    return res;
}

static char *render(const v2_result *r)
{
    jw w;
    jw_init(&w, 1 << 20);
    v2_render_result(&w, r);
    return jw_take(&w, NULL);
}

static int events;
static void hook(void *arg, const v2_result *ev)
{
    (void)arg;
    (void)ev;
    events++;
}

TEST(ttl_expiry_is_a_command)
{
    v2_store *s = v2_store_new();
    v2_store_set_hook(s, hook, NULL);
    const int64_t t0 = 1700000000000;
    v2_result r = op(s, "PUT", "/v2/keys/svc/leader", "value=pg1&ttl=30", t0);
    CHECK_EQ_INT(r.http_status, 201);
    CHECK_EQ_INT(r.node->ttl, 30);
    CHECK_EQ_INT(v2_store_next_expiry(s), t0 + 30000);
    r = op(s, "GET", "/v2/keys/svc/leader", "", t0 + 10500);
    CHECK_EQ_INT(r.node->ttl, 20); /* 19.5 s left, rounded up as etcd */
    char *js = render(&r);
    CHECK_STR(js, "{\"action\":\"get\",\"node\":{\"key\":\"/svc/leader\",\"value\":\"pg1\","
                  "\"expiration\":\"2023-11-14T22:13:50Z\",\"ttl\":20,\"modifiedIndex\":1,"
                  "\"createdIndex\":1}}");
    free(js);
    /* time alone expires nothing: only the EXPIRE command (leader's time) does */
    r = op(s, "GET", "/v2/keys/svc/leader", "", t0 + 99999);
    CHECK_EQ_INT(r.err, 0);
    v2_request ex = {.method = V2_EXPIRE, .time_ms = t0 + 29999};
    CHECK_EQ_INT(v2_store_apply(s, &ex, &A, &r), 0);
    CHECK_EQ_INT(v2_store_index(s), 1);
    ex.time_ms = t0 + 30000;
    events = 0;
    CHECK_EQ_INT(v2_store_apply(s, &ex, &A, &r), 0);
    CHECK_STR(r.action, "expire");
    CHECK_EQ_INT(events, 1);
    CHECK_EQ_INT(v2_store_index(s), 2);
    CHECK_EQ_INT(v2_store_next_expiry(s), 0);
    r = op(s, "GET", "/v2/keys/svc/leader", "", t0);
    CHECK_EQ_INT(r.err, 100);
    CHECK_STR(r.cause, "/svc/leader");
    /* the expire event is in the history for waiters */
    r = op(s, "GET", "/v2/keys/svc/leader?wait=true&waitIndex=2", "", t0);
    CHECK_STR(r.action, "expire");
    CHECK(r.prev_node && r.prev_node->value_len == 3);
    v2_store_free(s);
}

TEST(refresh_hidden_inorder_dirs)
{
    v2_store *s = v2_store_new();
    v2_store_set_hook(s, hook, NULL);
    const int64_t t0 = 1000000;
    op(s, "PUT", "/v2/keys/a", "value=1&ttl=10", t0);
    events = 0;
    v2_result r = op(s, "PUT", "/v2/keys/a?refresh=true&ttl=100&prevExist=true", "", t0);
    CHECK_EQ_INT(r.err, 0);
    CHECK_EQ_INT(events, 0); /* a refresh wakes no watcher */
    CHECK(r.node->value_len == 1 && r.node->value[0] == '1' && r.node->ttl == 100);
    op(s, "PUT", "/v2/keys/d/_hidden", "value=h", t0);
    op(s, "PUT", "/v2/keys/d/seen", "value=s", t0);
    r = op(s, "GET", "/v2/keys/d", "", t0);
    CHECK_EQ_INT(r.node->nnodes, 1);
    r = op(s, "GET", "/v2/keys/d/_hidden", "", t0);
    CHECK_EQ_INT(r.err, 0);
    r = op(s, "POST", "/v2/keys/q", "value=j1", t0);
    CHECK_EQ_INT(r.http_status, 201);
    CHECK_STR(r.node->key, "/q/00000000000000000005");
    r = op(s, "PUT", "/v2/keys/d", "value=x", t0);
    CHECK_EQ_INT(r.err, 102);
    CHECK_EQ_INT(r.http_status, 403);
    r = op(s, "PUT", "/v2/keys/a/b", "value=x", t0);
    CHECK_EQ_INT(r.err, 104);
    CHECK_EQ_INT(r.http_status, 400);
    r = op(s, "DELETE", "/v2/keys/d?dir=true", "", t0);
    CHECK_EQ_INT(r.err, 108);
    r = op(s, "DELETE", "/v2/keys/d?recursive=true", "", t0);
    CHECK_EQ_INT(r.err, 0);
    CHECK(r.node->dir);
    r = op(s, "PUT", "/v2/keys/", "value=x", t0);
    CHECK_EQ_INT(r.err, 107);
    r = op(s, "PUT", "/v2/keys/./x/../y//z", "value=1", t0);
    CHECK_STR(r.node->key, "/y/z");
    v2_store_free(s);
}

TEST(history_window)
{
    v2_store *s = v2_store_new();
    for (int i = 0; i < 1100; i++)
        op(s, "PUT", "/v2/keys/k", "value=v", 0);
    v2_result r = op(s, "GET", "/v2/keys/k?wait=true&waitIndex=50", "", 0);
    CHECK_EQ_INT(r.err, 401);
    CHECK_STR(r.cause, "the requested history has been cleared [101/50]");
    r = op(s, "GET", "/v2/keys/k?wait=true&waitIndex=101", "", 0);
    CHECK_EQ_INT(r.err, 0);
    CHECK_EQ_INT(r.node->modified_index, 101);
    r = op(s, "GET", "/v2/keys/k?wait=true", "", 0);
    CHECK(r.pending); /* nothing after the current index yet */
    r = op(s, "GET", "/v2/keys/?wait=true&recursive=true&waitIndex=1100", "", 0);
    CHECK(!r.pending && r.node->modified_index == 1100);
    v2_result ev = {0};
    v2_node_out n = {.key = "/a/b", .dir = true};
    ev.node = &n;
    ev.action = "delete";
    CHECK(v2_event_matches(&ev, "/a/b/c", false)); /* dir removal ends watches below */
    CHECK(v2_event_matches(&ev, "/a", true));
    CHECK(!v2_event_matches(&ev, "/a", false));
    CHECK(!v2_event_matches(&ev, "/a/bc", false));
    /* the history survives a snapshot */
    cmd_writer w;
    cw_init(&w, 1 << 24);
    v2_store_save(s, &w);
    CHECK(!w.err);
    cmd_reader rd;
    cr_init(&rd, w.p, w.len);
    v2_store *t = v2_store_load(&rd);
    CHECK(t != NULL);
    CHECK_EQ_INT(cr_left(&rd), 0);
    r = op(t, "GET", "/v2/keys/k?wait=true&waitIndex=101", "", 0);
    CHECK_EQ_INT(r.node->modified_index, 101);
    cw_free(&w);
    v2_store_free(t);
    v2_store_free(s);
}

TEST(form_errors)
{
    v2_store *s = v2_store_new();
    struct {
        const char *m, *t, *b;
        int code;
    } cases[] = {
        {"PUT", "/v2/keys/a?ttl=x", "value=1", 202},
        {"PUT", "/v2/keys/a", "value=1&ttl=-1", 202},
        {"PUT", "/v2/keys/a?prevIndex=-3", "value=1", 203},
        {"GET", "/v2/keys/a?waitIndex=z", "", 203},
        {"GET", "/v2/keys/a?sorted=maybe", "", 209},
        {"PUT", "/v2/keys/a?prevValue=", "value=1", 201},
        {"PUT", "/v2/keys/a", "value=%zz", 210},
        {"PUT", "/v2/keys/a?refresh=true", "", 212},
        {"DELETE", "/v2/keys/a?wait=true", "", 209},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        v2_result r = op(s, cases[i].m, cases[i].t, cases[i].b, 0);
        CHECK_EQ_INT(r.err, cases[i].code);
        CHECK_EQ_INT(r.http_status, 400);
        CHECK_EQ_INT(r.index, 0);
    }
    v2_request q;
    v2_result r;
    CHECK(v2_parse_request("PATCH", "/v2/keys/a", "", "", 0, 0, &A, &q, &r) != 0);
    CHECK_EQ_INT(r.http_status, 405);
    /* body fields win over the query, and '+' decodes to a space */
    CHECK_EQ_INT(
        v2_parse_request("PUT", "/v2/keys/a", "value=q", "value=a+b%21", 12, 0, &A, &q, &r), 0);
    CHECK(q.value_len == 4 && memcmp(q.value, "a b!", 4) == 0);
    char t[40];
    v2_format_time(1700000000120, t);
    CHECK_STR(t, "2023-11-14T22:13:20.12Z");
    v2_store_free(s);
}

TEST(quota_bounds_memory)
{
    v2_store *s = v2_store_new();
    v2_store_set_quota(s, (size_t)64 * 1024);
    char path[64];
    int i, err = 0;
    for (i = 0; i < 10000 && !err; i++) {
        snprintf(path, sizeof(path), "/v2/keys/q/k%d", i);
        err = op(s, "PUT", path, "value=0123456789012345678901234567890123456789", 0).err;
    }
    CHECK_EQ_INT(err, 300);
    CHECK(i > 100);
    CHECK(v2_store_bytes(s) <= (size_t)64 * 1024);
    v2_result r = op(s, "PUT", "/v2/keys/q/k1", "value=x", 0);
    CHECK_EQ_INT(r.http_status, 500);
    CHECK_EQ_INT(op(s, "DELETE", "/v2/keys/q?recursive=true", "", 0).err, 0);
    CHECK(v2_store_bytes(s) < 1024);
    CHECK_EQ_INT(op(s, "PUT", "/v2/keys/q/k1", "value=x", 0).err, 0);
    v2_store_free(s);
}

static int woke;
static uint64_t woke_index;
static void wake(void *arg, const v2_result *ev)
{
    (void)arg;
    woke++;
    woke_index = ev->index;
}

TEST(long_poll_waiters)
{
    v2_store *s = v2_store_new();
    v2_waiters *w = v2_waiters_new(s, 2);
    op(s, "PUT", "/v2/keys/svc/leader", "value=pg1", 0); /* index 1 */
    /* a waiter from the response's index + 1, as Patroni does */
    v2_result r = op(s, "GET", "/v2/keys/svc/leader?wait=true&waitIndex=2", "", 0);
    CHECK(r.pending);
    uint64_t h1 = v2_waiters_add(w, "/svc/leader", false, 2, wake, NULL);
    uint64_t h2 = v2_waiters_add(w, "/svc", true, 4, wake, NULL);
    CHECK(h1 && h2);
    CHECK_EQ_INT(v2_waiters_add(w, "/x", false, 0, wake, NULL), 0); /* full */
    op(s, "PUT", "/v2/keys/other", "value=1", 0);                   /* index 2: matches neither */
    CHECK_EQ_INT(woke, 0);
    op(s, "PUT", "/v2/keys/svc/leader", "value=pg2", 0); /* index 3 */
    CHECK_EQ_INT(woke, 1);
    CHECK_EQ_INT(woke_index, 3);
    CHECK_EQ_INT(v2_waiters_count(w), 1);
    op(s, "PUT", "/v2/keys/svc/members/a", "value=1", 0); /* index 4: recursive one */
    CHECK_EQ_INT(woke, 2);
    CHECK_EQ_INT(v2_waiters_count(w), 0);
    /* hidden keys: not for a recursive waiter above them, but for one on the key itself */
    uint64_t hh = v2_waiters_add(w, "/svc", true, 0, wake, NULL);
    op(s, "PUT", "/v2/keys/svc/_hidden", "value=1", 0);
    CHECK_EQ_INT(woke, 2);
    v2_waiters_remove(w, hh);
    CHECK(v2_waiters_add(w, "/svc/_hidden", false, 0, wake, NULL) != 0);
    op(s, "PUT", "/v2/keys/svc/_hidden", "value=2", 0);
    CHECK_EQ_INT(woke, 3);
    uint64_t h3 = v2_waiters_add(w, "/svc/leader", false, 0, wake, NULL);
    v2_waiters_remove(w, h3);
    v2_waiters_remove(w, 12345);
    op(s, "DELETE", "/v2/keys/svc/leader", "", 0);
    CHECK_EQ_INT(woke, 3);
    v2_waiters_free(w);
    v2_store_free(s);
}

int main(void)
{
    mvcc_arena_init(&A, 0);
    RUN(ttl_expiry_is_a_command);
    RUN(refresh_hidden_inorder_dirs);
    RUN(history_window);
    RUN(form_errors);
    RUN(quota_bounds_memory);
    RUN(long_poll_waiters);
    mvcc_arena_free(&A);
    return check_done();
}
