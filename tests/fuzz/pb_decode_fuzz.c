/* Fuzzes the protobuf wire reader and the etcd request decoder (dcs/pb_wire.h,
 * dcs/pb_etcd.h): byte 0 picks the method's request message, the rest is the message.
 * Checks: no crash, leak or sanitizer report; a decoded request's byte strings lie in the
 * arena (readable); the raw field walk always terminates. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dcs/pb_etcd.h"
#include "dcs/pb_wire.h"

static volatile size_t sink;

static void touch(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sink += p[i];
}

static void touch_op(const mvcc_op *op, int depth);

static void touch_txn(const mvcc_txn_req *t, int depth)
{
    for (size_t i = 0; i < t->ncompare; i++) {
        touch(t->compare[i].key, t->compare[i].key_len);
        touch(t->compare[i].value, t->compare[i].value_len);
        touch(t->compare[i].range_end, t->compare[i].range_end_len);
    }
    for (size_t i = 0; i < t->nsuccess; i++)
        touch_op(&t->success[i], depth + 1);
    for (size_t i = 0; i < t->nfailure; i++)
        touch_op(&t->failure[i], depth + 1);
}

static void touch_op(const mvcc_op *op, int depth)
{
    if (depth > 64)
        __builtin_trap(); /* the decoder must bound nesting */
    switch (op->type) {
    case MVCC_OP_RANGE:
        touch(op->u.range.key, op->u.range.key_len);
        touch(op->u.range.range_end, op->u.range.range_end_len);
        break;
    case MVCC_OP_PUT:
        touch(op->u.put.key, op->u.put.key_len);
        touch(op->u.put.value, op->u.put.value_len);
        break;
    case MVCC_OP_DELETE:
        touch(op->u.del.key, op->u.del.key_len);
        touch(op->u.del.range_end, op->u.del.range_end_len);
        break;
    case MVCC_OP_TXN:
        touch_txn(&op->u.txn, depth);
        break;
    default:
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int ep = 1 + data[0] % (V3_ENDPOINT_COUNT - 1);
    pb_reader r;
    pb_field f;
    pb_reader_init(&r, data + 1, size - 1);
    while (pb_next(&r, &f) > 0)
        if (f.wire == PB_LEN)
            touch(f.ptr, f.len);
    mvcc_arena a;
    mvcc_arena_init(&a, 8u << 20);
    v3_request req;
    v3_error err;
    if (pb_decode_request(ep, data + 1, size - 1, &a, &req, &err) == 0) {
        touch_op(&req.op, 0);
        if (req.watch_kind == V3_WATCH_CREATE)
            touch(req.watch.key, req.watch.key_len);
    } else if (!memchr(err.message, 0, sizeof(err.message)) || err.grpc_code == 0) {
        __builtin_trap(); /* an error always carries a code and a terminated message */
    }
    mvcc_arena_free(&a);
    return 0;
}
