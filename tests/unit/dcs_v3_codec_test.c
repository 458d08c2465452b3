/* etcd v3 JSON codec: request spellings (proto and lowerCamelCase names, int64 as number
 * or string, enums by name or number, null, empty body), strict errors naming the field,
 * limits (txn ops, nesting), and exact response rendering (omitted zero values, Go string
 * escaping, keepalive framing). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dcs/v3_cluster.h"
#include "dcs/v3_jsonw.h"
#include "dcs/v3_request.h"
#include "dcs/v3_response.h"

static mvcc_arena A;
static v3_request Q;
static v3_error E;

static int parse(int ep, const char *body)
{
    return v3_parse_request(ep, body, strlen(body), &A, &Q, &E);
}

TEST(request_spellings)
{
    CHECK_EQ_INT(parse(V3_KV_RANGE, "{\"key\":\"YQ==\",\"rangeEnd\":\"Yg==\",\"limit\":\"5\","
                                    "\"sortOrder\":2,\"sortTarget\":\"MOD\",\"countOnly\":true,"
                                    "\"maxModRevision\":7,\"revision\":null}"),
                 0);
    const mvcc_range_req *r = &Q.op.u.range;
    CHECK(r->key_len == 1 && r->key[0] == 'a' && r->range_end[0] == 'b');
    CHECK_EQ_INT(r->limit, 5);
    CHECK_EQ_INT(r->sort_order, MVCC_SORT_DESCEND);
    CHECK_EQ_INT(r->sort_target, MVCC_TARGET_MOD);
    CHECK(r->count_only);
    CHECK_EQ_INT(r->max_mod_revision, 7);
    CHECK_EQ_INT(parse(V3_LEASE_GRANT, "{\"TTL\":30}"), 0);
    CHECK_EQ_INT(Q.ttl, 30);
    CHECK_EQ_INT(parse(V3_LEASE_KEEPALIVE, "{\"ID\":\"7587862072907329069\"}"), 0);
    CHECK_EQ_INT(Q.id, 7587862072907329069LL);
    CHECK_EQ_INT(parse(V3_LEASE_LEASES, ""), 0); /* empty body = empty request */
    CHECK_EQ_INT(parse(V3_KV_TXN, "{\"compare\":[{\"key\":\"YQ==\",\"target\":\"CREATE\","
                                  "\"create_revision\":\"0\"}],\"success\":[{\"requestPut\":"
                                  "{\"key\":\"YQ==\",\"value\":\"cGcx\",\"lease\":\"9\"}}]}"),
                 0);
    CHECK_EQ_INT(Q.op.u.txn.compare[0].target, MVCC_TARGET_CREATE);
    CHECK_EQ_INT(Q.op.u.txn.success[0].u.put.lease, 9);
    /* the compare's number comes from the field matching its target only */
    CHECK_EQ_INT(parse(V3_KV_TXN, "{\"compare\":[{\"key\":\"YQ==\",\"target\":\"MOD\","
                                  "\"version\":\"5\"}]}"),
                 0);
    CHECK_EQ_INT(Q.op.u.txn.compare[0].number, 0);
    CHECK_EQ_INT(parse(V3_WATCH, "{\"create_request\":{\"key\":\"YQ==\",\"start_revision\":\"3\","
                                 "\"filters\":[\"NODELETE\",0],\"prev_kv\":true}}"),
                 0);
    CHECK_EQ_INT(Q.watch_kind, V3_WATCH_CREATE);
    CHECK(Q.watch.filter_noput && Q.watch.filter_nodelete && Q.watch.prev_kv);
    CHECK_EQ_INT(Q.watch.start_revision, 3);
    CHECK_EQ_INT(v3_endpoint_of("/v3/kv/range"), V3_KV_RANGE);
    CHECK_EQ_INT(v3_endpoint_of("/v3beta/lease/keepalive"), V3_LEASE_KEEPALIVE);
    CHECK_EQ_INT(v3_endpoint_of("/v3/kv/lease/timetolive"), V3_LEASE_TIMETOLIVE);
    CHECK_EQ_INT(v3_endpoint_of("/v3/kv/rangex"), 0);
}

TEST(request_errors_name_the_field)
{
    struct {
        const char *body;
        const char *msg;
        int ep;
        int code;
    } c[] = {
        {"{\"key\":\"Y\"}", "illegal base64 data at input byte 0 (field \"key\")", V3_KV_RANGE, 3},
        {"{\"key\":\"YQ==\",\"range_end\":true}",
         "json: cannot unmarshal bool into Go value of type []uint8 (field \"range_end\")",
         V3_KV_RANGE, 3},
        {"{\"key\":\"YQ==\",\"limit\":\"12x\"}",
         "invalid character 'x' after top-level value (field \"limit\")", V3_KV_RANGE, 3},
        {"{\"key\":\"YQ==\",\"limit\":1.5}",
         "json: cannot unmarshal number 1.5 into Go value of type int64 (field \"limit\")",
         V3_KV_RANGE, 3},
        {"{\"key\":\"YQ==\",\"sort_target\":9}",
         "unknown value 9 for enum etcdserverpb.RangeRequest_SortTarget (field \"sort_target\")",
         V3_KV_RANGE, 3},
        {"{\"key\":\"YQ==\",\"prevKv\":1}",
         "json: cannot unmarshal number into Go value of type bool (field \"prevKv\")", V3_KV_PUT,
         3},
        {"{\"value\":\"YQ==\"}", "etcdserver: key is not provided", V3_KV_PUT, 3},
        {"{\"key\":\"YQ==\",\"lease\":\"1\",\"ignore_lease\":true}",
         "etcdserver: lease is provided", V3_KV_PUT, 3},
        {"[1]", "json: cannot unmarshal array into Go value of type etcdserverpb.RangeRequest",
         V3_KV_RANGE, 3},
        {"{\"success\":[{}]}", "etcdserver: request op has no request set (field \"request\")",
         V3_KV_TXN, 3},
        {"{}", "etcdserver: watch request has no request set (field \"request_union\")", V3_WATCH,
         3},
        {"{\"create_request\":{\"filters\":[\"NOPE\"]}}",
         "unknown value \"NOPE\" for enum "
         "etcdserverpb.WatchCreateRequest_FilterType (field \"filters\")",
         V3_WATCH, 3},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        CHECK_EQ_INT(parse(c[i].ep, c[i].body), -1);
        CHECK_EQ_INT(E.grpc_code, c[i].code);
        CHECK_STR(E.message, c[i].msg);
    }
    CHECK_EQ_INT(parse(V3_KV_RANGE, "{\"key\":"), -1);
    CHECK(strncmp(E.message, "json: ", 6) == 0);
}

TEST(limits)
{
    /* 129 ops: over etcd's --max-txn-ops default */
    size_t cap = 129 * 40 + 64;
    char *b = malloc(cap);
    size_t n = (size_t)snprintf(b, cap, "{\"success\":[");
    for (int i = 0; i < 129; i++)
        n += (size_t)snprintf(b + n, cap - n, "%s{\"request_range\":{\"key\":\"YQ==\"}}",
                              i ? "," : "");
    snprintf(b + n, cap - n, "]}");
    CHECK_EQ_INT(parse(V3_KV_TXN, b), -1);
    CHECK_STR(E.message, "etcdserver: too many operations in txn request");
    free(b);
    /* nesting deeper than 16 */
    char deep[2048] = "";
    for (int i = 0; i < 20; i++)
        strcat(deep, "{\"success\":[{\"request_txn\":");
    strcat(deep, "{}");
    for (int i = 0; i < 20; i++)
        strcat(deep, "}]}");
    CHECK_EQ_INT(parse(V3_KV_TXN, deep), -1);
}

static char *take(jw *w)
{
    return jw_take(w, NULL);
}

TEST(rendering_is_exact)
{
    jw w;
    jw_init(&w, 1 << 20);
    mvcc_kv kvs[2] = {{(const uint8_t *)"a", 1, NULL, 0, 2, 3, 1, 0},
                      {(const uint8_t *)"<b>", 3, (const uint8_t *)"v", 1, 4, 4, 1, 77}};
    mvcc_op_resp r = {.type = MVCC_OP_RANGE, .revision = 9};
    r.u.range.kvs = kvs;
    r.u.range.nkvs = 2;
    r.u.range.count = 2;
    v3_header h = {10, 11, 12, 9};
    v3_render_op_resp(&w, &h, &r);
    char *s = take(&w);
    CHECK_STR(s, "{\"header\":{\"cluster_id\":\"10\",\"member_id\":\"11\",\"revision\":\"9\","
                 "\"raft_term\":\"12\"},\"kvs\":[{\"key\":\"YQ==\",\"create_revision\":\"2\","
                 "\"mod_revision\":\"3\",\"version\":\"1\"},{\"key\":\"PGI+\","
                 "\"create_revision\":\"4\",\"mod_revision\":\"4\",\"version\":\"1\","
                 "\"value\":\"dg==\",\"lease\":\"77\"}],\"count\":\"2\"}");
    free(s);
    jw_init(&w, 1 << 20);
    v3_render_lease_keepalive(&w, &h, 5, 0);
    s = take(&w);
    CHECK_STR(s, "{\"result\":{\"header\":{\"cluster_id\":\"10\",\"member_id\":\"11\","
                 "\"revision\":\"9\",\"raft_term\":\"12\"},\"ID\":\"5\"}}\n");
    free(s);
    jw_init(&w, 1 << 20);
    v3_error e = {5, "etcdserver: requested lease not found"};
    v3_render_error(&w, &e);
    CHECK_EQ_INT(v3_error_http_status(&e), 404);
    s = take(&w);
    CHECK_STR(s, "{\"error\":\"etcdserver: requested lease not found\",\"message\":"
                 "\"etcdserver: requested lease not found\",\"code\":5}");
    free(s);
    /* Go escaping: HTML characters, control characters, invalid UTF-8, U+2028 */
    jw_init(&w, 1 << 20);
    jw_str(&w, "<&>\"\\\n\x01\xff\xe2\x80\xa8\xc3\xa9", 13);
    s = take(&w);
    CHECK_STR(s, "\"\\u003c\\u0026\\u003e\\\"\\\\\\n\\u0001\\ufffd\\u2028\xc3\xa9\"");
    free(s);
    /* the bound is enforced */
    jw_init(&w, 8);
    jw_cstr(&w, "this is longer than eight bytes");
    CHECK(jw_take(&w, NULL) == NULL);
}

/* numbers as etcd's gateway prints them (int64 quoted), at the edges of their ranges */
TEST(numbers_render_exactly)
{
    jw w;
    jw_init(&w, 4096);
    jw_arr(&w);
    jw_i64_quoted(&w, 0);
    jw_i64_quoted(&w, -1);
    jw_i64_quoted(&w, INT64_MIN);
    jw_i64_quoted(&w, INT64_MAX);
    jw_u64_quoted(&w, UINT64_MAX);
    jw_i64(&w, -42);
    jw_i64(&w, INT64_MIN);
    jw_u64(&w, 0);
    jw_u64(&w, 10);
    jw_u64(&w, 14841639068965178418u);
    jw_arr_end(&w);
    size_t n;
    char *out = jw_take(&w, &n);
    CHECK_STR(out, "[\"0\",\"-1\",\"-9223372036854775808\",\"9223372036854775807\","
                   "\"18446744073709551615\",-42,-9223372036854775808,0,10,14841639068965178418]");
    free(out);
}

/* The PutRequest fast path agrees with the full parser on common and odd spellings
 * (order, spaces, lease, prevKv, duplicates, escapes, null, bad base64, numbers that
 * jansson reads differently, trailing data), including every error message. */
TEST(put_fast_path_matches_full_parser)
{
    static const char *const bodies[] = {
        "{\"key\":\"YQ==\",\"value\":\"Yg==\"}",
        " {\n\"value\" : \"Yg==\" ,\t\"key\":\"YmVuY2gva2V5MDAwMQ==\" } ",
        "{\"key\":\"YQ==\",\"lease\":7587862072907329069}",
        "{\"key\":\"YQ==\",\"lease\":-5,\"prev_kv\":true}",
        "{\"key\":\"YQ==\",\"prevKv\":true}",
        "{\"key\":\"YQ==\",\"prev_kv\":false,\"prevKv\":true}",
        "{\"key\":\"YQ==\",\"key\":\"Yg==\"}",
        "{\"key\":\"Y\\u0051==\"}",
        "{\"key\":\"YQ==\",\"value\":null}",
        "{\"key\":\"YQ\"}",
        "{\"key\":\"\"}",
        "{}",
        "{\"value\":\"Yg==\"}",
        "{\"key\":\"YQ==\",\"lease\":01}",
        "{\"key\":\"YQ==\",\"lease\":-0}",
        "{\"key\":\"YQ==\",\"lease\":1.0}",
        "{\"key\":\"YQ==\",\"lease\":1e3}",
        "{\"key\":\"YQ==\",\"lease\":\"12\"}",
        "{\"key\":\"YQ==\",\"lease\":99999999999999999999}",
        "{\"key\":\"YQ==\",\"prev_kv\":truex}",
        "{\"key\":\"YQ==\",\"ignore_value\":true,\"value\":\"Yg==\"}",
        "{\"key\":\"YQ==\",\"other\":1}",
        "{\"key\":\"YQ==\"} trailing",
        "{\"key\":\"YQ==\",}",
        "{\"key\":\"YQ==\"",
        "[\"key\"]",
    };
    int agree = 0;
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        v3_request f, g;
        v3_error fe, ge;
        int rf = v3_parse_request(V3_KV_PUT, bodies[i], strlen(bodies[i]), &A, &f, &fe);
        v3_request_full_only = true;
        int rg = v3_parse_request(V3_KV_PUT, bodies[i], strlen(bodies[i]), &A, &g, &ge);
        v3_request_full_only = false;
        const mvcc_put_req *x = &f.op.u.put, *y = &g.op.u.put;
        bool same = rf == rg;
        if (same && rf != 0)
            same = fe.grpc_code == ge.grpc_code && strcmp(fe.message, ge.message) == 0;
        else if (same)
            same = x->key_len == y->key_len && memcmp(x->key, y->key, x->key_len) == 0 &&
                   x->value_len == y->value_len &&
                   (x->value_len == 0 || memcmp(x->value, y->value, x->value_len) == 0) &&
                   x->lease == y->lease && x->prev_kv == y->prev_kv &&
                   x->ignore_value == y->ignore_value;
        if (same)
            agree++;
        else
            printf("# differs: %s\n", bodies[i]);
    }
    CHECK_EQ_INT(agree, (int)(sizeof(bodies) / sizeof(bodies[0])));
    /* and the common shape parses to what it says */
    CHECK_EQ_INT(parse(V3_KV_PUT, "{\"key\":\"YQ==\",\"value\":\"Yg==\",\"lease\":42}"), 0);
    CHECK(Q.op.type == MVCC_OP_PUT && Q.op.u.put.key_len == 1 && Q.op.u.put.key[0] == 'a' &&
          Q.op.u.put.value_len == 1 && Q.op.u.put.value[0] == 'b' && Q.op.u.put.lease == 42);
}

TEST(duplicate_keys_as_etcd_check_intervals)
{
#define PUT(k)    "{\"request_put\":{\"key\":\"" k "\"}}"
#define DEL(k, e) "{\"request_delete_range\":{\"key\":\"" k "\",\"range_end\":\"" e "\"}}"
#define TXN(s, f) "{\"request_txn\":{\"success\":[" s "],\"failure\":[" f "]}}"
    /* a key put in both branches of a nested txn is fine: they exclude each other */
    CHECK_EQ_INT(parse(V3_KV_TXN, "{\"success\":[" TXN(PUT("YQ=="), PUT("YQ==")) "]}"), 0);
    /* ... but not when the outer level puts it too */
    CHECK_EQ_INT(parse(V3_KV_TXN, "{\"success\":[" PUT("YQ==") "," TXN(PUT("YQ=="), "") "]}"), -1);
    CHECK_STR(E.message, "etcdserver: duplicate key given in txn request");
    /* a put inside a deleted range, also across levels and in the failure list */
    CHECK_EQ_INT(parse(V3_KV_TXN, "{\"failure\":[" DEL("YQ==", "Yw==") "," PUT("Yg==") "]}"), -1);
    CHECK_EQ_INT(
        parse(V3_KV_TXN, "{\"success\":[" DEL("YQ==", "Yw==") "," TXN("", PUT("Yg==")) "]}"), -1);
    /* success and failure lists are checked separately */
    CHECK_EQ_INT(parse(V3_KV_TXN, "{\"success\":[" PUT("YQ==") "],\"failure\":[" PUT("YQ==") "]}"),
                 0);
    CHECK_EQ_INT(parse(V3_KV_TXN, "{\"success\":[" DEL("YQ==", "Yw==") "," PUT("Yw==") "]}"), 0);
#undef PUT
#undef DEL
#undef TXN
}

TEST(cluster_status_version_health)
{
    /* shapes as etcd 3.4.23 printed them on this machine */
    jw w;
    jw_init(&w, 1 << 16);
    const char *peers[] = {"http://127.0.50.1:2380"}, *clients[] = {"http://127.0.50.1:2379"};
    v3_member m = {15024778627834509036ULL, "p", peers, 1, clients, 1, false};
    v3_header h = {9930881492670398590ULL, 15024778627834509036ULL, 2, 0};
    v3_render_member_list(&w, &h, &m, 1);
    char *s = jw_take(&w, NULL);
    CHECK_STR(s, "{\"header\":{\"cluster_id\":\"9930881492670398590\",\"member_id\":"
                 "\"15024778627834509036\",\"raft_term\":\"2\"},\"members\":[{\"ID\":"
                 "\"15024778627834509036\",\"name\":\"p\",\"peerURLs\":[\"http://"
                 "127.0.50.1:2380\"],\"clientURLs\":[\"http://127.0.50.1:2379\"]}]}");
    free(s);
    jw_init(&w, 1 << 16);
    v3_status st = {"3.4.23", 24576, 16384, 15024778627834509036ULL, 29, 2, 29, NULL, 0, false};
    h.revision = 5;
    v3_render_status(&w, &h, &st);
    s = jw_take(&w, NULL);
    CHECK_STR(s, "{\"header\":{\"cluster_id\":\"9930881492670398590\",\"member_id\":"
                 "\"15024778627834509036\",\"revision\":\"5\",\"raft_term\":\"2\"},"
                 "\"version\":\"3.4.23\",\"dbSize\":\"24576\",\"leader\":"
                 "\"15024778627834509036\",\"raftIndex\":\"29\",\"raftTerm\":\"2\","
                 "\"raftAppliedIndex\":\"29\",\"dbSizeInUse\":\"16384\"}");
    free(s);
    jw_init(&w, 1 << 16);
    v3_render_version(&w, "3.4.23", "3.4.0");
    s = jw_take(&w, NULL);
    CHECK_STR(s, "{\"etcdserver\":\"3.4.23\",\"etcdcluster\":\"3.4.0\"}");
    free(s);
    jw_init(&w, 1 << 16);
    v3_render_health(&w, true);
    s = jw_take(&w, NULL);
    CHECK_STR(s, "{\"health\":\"true\"}");
    free(s);
}

int main(void)
{
    mvcc_arena_init(&A, 0);
    RUN(request_spellings);
    RUN(request_errors_name_the_field);
    RUN(limits);
    RUN(rendering_is_exact);
    RUN(numbers_render_exactly);
    RUN(put_fast_path_matches_full_parser);
    RUN(duplicate_keys_as_etcd_check_intervals);
    RUN(cluster_status_version_health);
    mvcc_arena_free(&A);
    return check_done();
}
