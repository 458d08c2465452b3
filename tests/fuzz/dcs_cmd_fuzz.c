/* Fuzz the store's binary inputs: the Raft command decoder (+ apply to a live store, then
 * a snapshot round trip of the result) and the snapshot loader. First byte selects. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dcs/store_cmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    mvcc_arena a;
    mvcc_arena_init(&a, 16u << 20);
    if (data[0] & 1) {
        dcs_store *st = store_snapshot_load(data + 1, size - 1, NULL);
        if (st) {
            uint8_t *buf;
            size_t len;
            if (store_snapshot_save(st, &buf, &len) == 0)
                free(buf);
            dcs_store_free(st);
        }
    } else {
        /* the rest may hold several commands, each prefixed by a one-byte length */
        dcs_store *st = dcs_store_new(NULL);
        if (!st)
            return 0;
        lessor_promote(mvcc_lessor(st->kv), 0, 0);
        size_t off = 1;
        int64_t now = 0;
        while (off < size) {
            size_t n = data[off++];
            if (n > size - off)
                n = size - off;
            store_result r;
            store_apply_bytes(st, data + off, n, now, &a, &r);
            off += n;
            now += 1000;
            int64_t ids[4];
            size_t k = lessor_expired(mvcc_lessor(st->kv), now, ids, 4);
            for (size_t i = 0; i < k; i++)
                lease_expire(st->kv, ids[i]);
        }
        uint8_t *buf;
        size_t len;
        if (store_snapshot_save(st, &buf, &len) == 0) {
            dcs_store *back = store_snapshot_load(buf, len, NULL);
            if (!back)
                abort(); /* our own snapshot must always load */
            dcs_store_free(back);
            free(buf);
        }
        dcs_store_free(st);
    }
    mvcc_arena_free(&a);
    return 0;
}
