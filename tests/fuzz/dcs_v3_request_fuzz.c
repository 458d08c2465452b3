/* Fuzz the etcd v3 JSON request parser for every endpoint (first byte selects), the
 * gateway path behind it (command encoding, apply, rendering) and the v2 form parser. A
 * PutRequest is also parsed by the full parser alone: the fast path must agree with it
 * (abort otherwise). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dcs/v2_codec.h"
#include "dcs/v3_request.h"
#include "dcs/v3_gateway.h"
#include "dcs/watch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same_bytes(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

/* the fast path's answer for a put equals the full parser's */
static void put_differential(const char *body, size_t len, mvcc_arena *a)
{
    v3_request f, g;
    v3_error fe, ge;
    int rf = v3_parse_request(V3_KV_PUT, body, len, a, &f, &fe);
    v3_request_full_only = true;
    int rg = v3_parse_request(V3_KV_PUT, body, len, a, &g, &ge);
    v3_request_full_only = false;
    if (rf != rg)
        abort();
    if (rf != 0) {
        if (fe.grpc_code != ge.grpc_code || strcmp(fe.message, ge.message) != 0)
            abort();
        return;
    }
    const mvcc_put_req *x = &f.op.u.put, *y = &g.op.u.put;
    if (f.op.type != g.op.type || !same_bytes(x->key, x->key_len, y->key, y->key_len) ||
        !same_bytes(x->value, x->value_len, y->value, y->value_len) || x->lease != y->lease ||
        x->prev_kv != y->prev_kv || x->ignore_value != y->ignore_value ||
        x->ignore_lease != y->ignore_lease)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    mvcc_arena a;
    mvcc_arena_init(&a, 16u << 20);
    char *body = malloc(size);
    if (!body)
        return 0;
    memcpy(body, data + 1, size - 1);
    body[size - 1] = 0;
    int ep = data[0] % (V3_ENDPOINT_COUNT + 1);
    if (ep == V3_ENDPOINT_COUNT) {
        static const char *const methods[] = {"GET", "PUT", "POST", "DELETE"};
        v2_request q;
        v2_result r;
        const char *qm = strchr(body, '?'); /* body is NUL-terminated (maybe early) */
        const char *query = qm ? qm + 1 : "";
        v2_parse_request(methods[data[0] / 64], "/v2/keys/a", query, body, size - 1, 0, &a, &q, &r);
    } else {
        if (ep == V3_KV_PUT)
            put_differential(body, size - 1, &a);
        v3_request req;
        v3_error err;
        jw w;
        jw_init(&w, 1u << 20);
        if (v3_parse_request(ep, body, size - 1, &a, &req, &err) == 0) {
            dcs_store *st = dcs_store_new(NULL);
            store_cmd cmd;
            v3_header h = {1, 2, 3, 0};
            int status;
            if (st && v3_request_command(&req, &cmd)) {
                uint8_t *buf;
                size_t len;
                if (store_cmd_encode(&cmd, 1u << 20, &buf, &len) == 0) {
                    store_result res;
                    store_apply_bytes(st, buf, len, 0, &a, &res);
                    v3_render_result(&req, &res, &h, &w, &status);
                    free(buf);
                }
            } else if (st && req.endpoint == V3_WATCH) {
                /* a watch message against a store with some history */
                watch_hub *hub = watch_hub_new(st->kv, NULL);
                watch_stream *ws = hub ? watch_stream_new(hub, NULL, NULL) : NULL;
                if (ws) {
                    mvcc_op op = {.type = MVCC_OP_PUT};
                    op.u.put.key = (const uint8_t *)"a";
                    op.u.put.key_len = 1;
                    mvcc_op_resp pr;
                    mvcc_write(st->kv, &op, &a, &pr);
                    watch_stream_request(ws, &req, 0);
                    mvcc_write(st->kv, &op, &a, &pr);
                    v3_watch_resp wr;
                    int64_t hrev;
                    for (int i = 0;
                         i < 1000 && (watch_stream_next(ws, &wr, &hrev) || watch_stream_busy(ws));
                         i++)
                        ;
                }
                watch_hub_free(hub);
            } else if (st) {
                v3_execute_read(st, &req, &h, 0, &a, &w, &status);
            }
            dcs_store_free(st);
        } else {
            v3_render_error(&w, &err);
        }
        jw_free(&w);
    }
    free(body);
    mvcc_arena_free(&a);
    return 0;
}
