/* Protobuf wire codec and etcd message mapping (dcs/pb_wire.h, dcs/pb_etcd.h): bounds,
 * malformed input, unknown fields, etcd's v3rpc checks, responses read back. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dcs/grpc_call.h"
#include "dcs/pb_etcd.h"
#include "dcs/pb_wire.h"

static int decode(int ep, const pb_buf *b, mvcc_arena *a, v3_request *r, v3_error *e)
{
    return pb_decode_request(ep, b->data, b->len, a, r, e);
}

TEST(varint_roundtrip_and_limits)
{
    static const uint64_t vals[] = {0, 1, 127, 128, 300, 16383, 16384, 1ull << 35, UINT64_MAX};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        pb_buf b;
        pb_buf_init(&b, 64);
        pb_tag(&b, 5, PB_VARINT);
        pb_varint(&b, vals[i]);
        CHECK_EQ_INT(b.len, 1 + pb_varint_size(vals[i]));
        pb_reader r;
        pb_field f;
        pb_reader_init(&r, b.data, b.len);
        CHECK_EQ_INT(pb_next(&r, &f), 1);
        CHECK_EQ_INT(f.num, 5);
        CHECK(f.u == vals[i]);
        CHECK_EQ_INT(pb_next(&r, &f), 0);
        pb_buf_free(&b);
    }
    /* 11-byte varint, 10th byte > 1, truncation, group, field 0, length past the end */
    static const uint8_t bad[][12] = {
        {0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01},
        {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02},
        {0x08, 0x80},
        {0x0b},
        {0x00, 0x01},
        {0x0a, 0x05, 'a'},
        {0x0d, 1, 2},
    };
    static const size_t lens[] = {12, 11, 2, 1, 2, 3, 3};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        pb_reader r;
        pb_field f;
        pb_reader_init(&r, bad[i], lens[i]);
        CHECK_EQ_INT(pb_next(&r, &f), -1);
    }
}

TEST(nested_length_prefix_grows)
{
    pb_buf b;
    pb_buf_init(&b, 1 << 20);
    size_t m = pb_begin(&b, 2);
    char big[300];
    memset(big, 'x', sizeof(big));
    pb_bytes(&b, 1, big, sizeof(big));
    pb_end(&b, m);
    CHECK(!b.failed);
    pb_reader r;
    pb_field f;
    pb_reader_init(&r, b.data, b.len);
    CHECK_EQ_INT(pb_next(&r, &f), 1);
    CHECK_EQ_INT(f.num, 2);
    CHECK_EQ_INT(f.len, 3 + 300); /* tag, 2-byte length, body */
    pb_reader in;
    pb_reader_init(&in, f.ptr, f.len);
    CHECK_EQ_INT(pb_next(&in, &f), 1);
    CHECK_EQ_INT(f.len, 300);
    pb_buf_free(&b);
}

TEST(buffer_bound_fails_cleanly)
{
    pb_buf b;
    pb_buf_init(&b, 16);
    char big[64] = {0};
    pb_bytes(&b, 1, big, sizeof(big));
    CHECK(b.failed);
    pb_i64(&b, 2, 5); /* further writes are ignored */
    CHECK(b.failed);
    pb_buf_free(&b);
}

TEST(put_request_and_v3rpc_checks)
{
    mvcc_arena a;
    mvcc_arena_init(&a, 1 << 20);
    pb_buf b;
    pb_buf_init(&b, 4096);
    pb_bytes(&b, 1, "k", 1);
    pb_bytes(&b, 2, "val", 3);
    pb_i64(&b, 3, 42);
    pb_bool(&b, 4, true);
    pb_bytes(&b, 99, "unknown", 7); /* skipped */
    v3_request r;
    v3_error e;
    CHECK_EQ_INT(decode(V3_KV_PUT, &b, &a, &r, &e), 0);
    CHECK_EQ_INT(r.op.type, MVCC_OP_PUT);
    CHECK(r.op.u.put.key_len == 1 && memcmp(r.op.u.put.key, "k", 1) == 0);
    CHECK(r.op.u.put.value_len == 3 && memcmp(r.op.u.put.value, "val", 3) == 0);
    CHECK_EQ_INT(r.op.u.put.lease, 42);
    CHECK(r.op.u.put.prev_kv);
    pb_buf_free(&b);

    pb_buf_init(&b, 4096);
    pb_bytes(&b, 2, "v", 1);
    CHECK_EQ_INT(decode(V3_KV_PUT, &b, &a, &r, &e), -1);
    CHECK_EQ_INT(e.grpc_code, 3);
    CHECK_STR(e.message, "etcdserver: key is not provided");
    pb_buf_free(&b);

    pb_buf_init(&b, 4096);
    pb_bytes(&b, 1, "k", 1);
    pb_bytes(&b, 2, "v", 1);
    pb_bool(&b, 5, true);
    CHECK_EQ_INT(decode(V3_KV_PUT, &b, &a, &r, &e), -1);
    CHECK_STR(e.message, "etcdserver: value is provided");
    pb_buf_free(&b);

    /* a bytes field sent as a varint is malformed, named by message type */
    pb_buf_init(&b, 4096);
    pb_u64(&b, 1, 7);
    CHECK_EQ_INT(decode(V3_KV_RANGE, &b, &a, &r, &e), -1);
    CHECK_EQ_INT(e.grpc_code, 3);
    CHECK(strstr(e.message, "etcdserverpb.RangeRequest") != NULL);
    pb_buf_free(&b);
    mvcc_arena_free(&a);
}

TEST(txn_with_compares_and_nested_ops)
{
    mvcc_arena a;
    mvcc_arena_init(&a, 1 << 20);
    pb_buf b;
    pb_buf_init(&b, 4096);
    size_t m = pb_begin(&b, 1); /* compare: VALUE("k") == "v" */
    pb_u64(&b, 1, 0);
    pb_u64(&b, 2, 3);
    pb_bytes(&b, 3, "k", 1);
    pb_bytes(&b, 7, "v", 1);
    pb_end(&b, m);
    m = pb_begin(&b, 1); /* compare: MOD("k") > 5 */
    pb_u64(&b, 1, 1);
    pb_u64(&b, 2, 2);
    pb_bytes(&b, 3, "k", 1);
    pb_i64(&b, 6, 5);
    pb_end(&b, m);
    m = pb_begin(&b, 2); /* success: put k=w */
    size_t m2 = pb_begin(&b, 2);
    pb_bytes(&b, 1, "k", 1);
    pb_bytes(&b, 2, "w", 1);
    pb_end(&b, m2);
    pb_end(&b, m);
    m = pb_begin(&b, 3); /* failure: range k */
    m2 = pb_begin(&b, 1);
    pb_bytes(&b, 1, "k", 1);
    pb_end(&b, m2);
    pb_end(&b, m);
    v3_request r;
    v3_error e;
    CHECK_EQ_INT(decode(V3_KV_TXN, &b, &a, &r, &e), 0);
    const mvcc_txn_req *t = &r.op.u.txn;
    CHECK_EQ_INT(t->ncompare, 2);
    CHECK_EQ_INT(t->compare[0].target, MVCC_TARGET_VALUE);
    CHECK(t->compare[0].value_len == 1 && t->compare[0].value[0] == 'v');
    CHECK_EQ_INT(t->compare[1].target, MVCC_TARGET_MOD);
    CHECK_EQ_INT(t->compare[1].result, MVCC_CMP_GREATER);
    CHECK_EQ_INT(t->compare[1].number, 5);
    CHECK_EQ_INT(t->nsuccess, 1);
    CHECK_EQ_INT(t->success[0].type, MVCC_OP_PUT);
    CHECK_EQ_INT(t->nfailure, 1);
    CHECK_EQ_INT(t->failure[0].type, MVCC_OP_RANGE);
    pb_buf_free(&b);

    /* a RequestOp without a member is rejected with etcd's text */
    pb_buf_init(&b, 4096);
    m = pb_begin(&b, 2);
    pb_end(&b, m);
    CHECK_EQ_INT(decode(V3_KV_TXN, &b, &a, &r, &e), -1);
    CHECK_STR(e.message, "etcdserver: request op has no request set");
    pb_buf_free(&b);

    /* nesting deeper than 16 txns */
    pb_buf_init(&b, 1 << 16);
    size_t marks[40];
    for (size_t i = 0; i < 40; i += 2) {
        marks[i] = pb_begin(&b, 2);
        marks[i + 1] = pb_begin(&b, 4);
    }
    for (size_t i = 40; i > 0; i--)
        pb_end(&b, marks[i - 1]);
    CHECK_EQ_INT(decode(V3_KV_TXN, &b, &a, &r, &e), -1);
    CHECK_STR(e.message, "etcdserver: too many operations in txn request");
    pb_buf_free(&b);
    mvcc_arena_free(&a);
}

TEST(watch_requests)
{
    mvcc_arena a;
    mvcc_arena_init(&a, 1 << 20);
    pb_buf b;
    pb_buf_init(&b, 4096);
    size_t m = pb_begin(&b, 1);
    pb_bytes(&b, 1, "a", 1);
    pb_bytes(&b, 2, "b", 1);
    pb_i64(&b, 3, 7);
    pb_bool(&b, 6, true);
    uint8_t packed[] = {0, 1};
    pb_bytes(&b, 5, packed, 2);
    pb_end(&b, m);
    v3_request r;
    v3_error e;
    CHECK_EQ_INT(decode(V3_WATCH, &b, &a, &r, &e), 0);
    CHECK_EQ_INT(r.watch_kind, V3_WATCH_CREATE);
    CHECK_EQ_INT(r.watch.start_revision, 7);
    CHECK(r.watch.prev_kv && r.watch.filter_noput && r.watch.filter_nodelete);
    pb_buf_free(&b);
    pb_buf_init(&b, 4096);
    m = pb_begin(&b, 2);
    pb_i64(&b, 1, 3);
    pb_end(&b, m);
    CHECK_EQ_INT(decode(V3_WATCH, &b, &a, &r, &e), 0);
    CHECK_EQ_INT(r.watch_kind, V3_WATCH_CANCEL);
    CHECK_EQ_INT(r.watch_id, 3);
    pb_buf_free(&b);
    mvcc_arena_free(&a);
}

TEST(range_response_encoding)
{
    mvcc_kv kv = {(const uint8_t *)"foo", 3, (const uint8_t *)"bar", 3, 2, 5, 3, 0};
    mvcc_op_resp r;
    memset(&r, 0, sizeof(r));
    r.type = MVCC_OP_RANGE;
    r.u.range.kvs = &kv;
    r.u.range.nkvs = 1;
    r.u.range.count = 1;
    v3_header h = {11, 22, 4, 9};
    pb_buf b;
    pb_buf_init(&b, 4096);
    pb_enc_op_resp(&b, &h, &r);
    /* header{1:11 2:22 3:9 4:4} kvs{1:"foo" 2:2 3:5 4:3 5:"bar"} count:1 */
    static const uint8_t want[] = {0x0a, 0x08, 0x08, 11,   0x10, 22,  0x18, 9,    0x20, 4,
                                   0x12, 0x10, 0x0a, 3,    'f',  'o', 'o',  0x10, 2,    0x18,
                                   5,    0x20, 3,    0x2a, 3,    'b', 'a',  'r',  0x20, 1};
    CHECK_EQ_INT(b.len, sizeof(want));
    CHECK(memcmp(b.data, want, sizeof(want)) == 0);
    pb_buf_free(&b);
}

TEST(grpc_message_percent_encoding)
{
    char out[64];
    grpc_percent_encode("a b%\n\xc3\xa9", out, sizeof(out));
    CHECK_STR(out, "a b%25%0A%C3%A9");
    CHECK_EQ_INT(grpc_method_of("/etcdserverpb.KV/Range"), GM_RANGE);
    CHECK_EQ_INT(grpc_method_of("/etcdserverpb.Auth/UserAdd"), GM_NONE);
    CHECK(grpc_method_streams(GM_WATCH) && !grpc_method_streams(GM_PUT));
}

int main(void)
{
    RUN(varint_roundtrip_and_limits);
    RUN(nested_length_prefix_grows);
    RUN(buffer_bound_fails_cleanly);
    RUN(put_request_and_v3rpc_checks);
    RUN(txn_with_compares_and_nested_ops);
    RUN(watch_requests);
    RUN(range_response_encoding);
    RUN(grpc_message_percent_encoding);
    return check_done();
}
