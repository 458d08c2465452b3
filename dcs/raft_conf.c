/* Membership configuration: the voter set carried by configuration entries and snapshots.
 * Encoding: u8 version (1), u8 count, then count u64 ids little-endian, ascending. */
#include "dcs/raft.h"

#include <string.h>

bool raft_conf_has(const raft_conf *c, uint64_t id)
{
    for (uint32_t i = 0; i < c->n; i++)
        if (c->ids[i] == id)
            return true;
    return false;
}

int raft_conf_encode(const raft_conf *c, uint8_t *buf, size_t cap)
{
    size_t need = 2 + 8 * (size_t)c->n;
    if (c->n > RAFT_MAX_NODES || cap < need)
        return -1;
    buf[0] = 1;
    buf[1] = (uint8_t)c->n;
    for (uint32_t i = 0; i < c->n; i++)
        for (int b = 0; b < 8; b++)
            buf[2 + 8 * i + (uint32_t)b] = (uint8_t)(c->ids[i] >> (8 * b));
    return (int)need;
}

int raft_conf_decode(const uint8_t *buf, size_t len, raft_conf *c)
{
    if (len < 2 || buf[0] != 1 || buf[1] > RAFT_MAX_NODES || len != 2 + 8 * (size_t)buf[1])
        return -1;
    memset(c, 0, sizeof(*c));
    c->n = buf[1];
    for (uint32_t i = 0; i < c->n; i++) {
        uint64_t v = 0;
        for (int b = 7; b >= 0; b--)
            v = v << 8 | buf[2 + 8 * i + (uint32_t)b];
        /* ids must be non-zero and strictly ascending: one canonical form per set */
        if (v == 0 || (i > 0 && v <= c->ids[i - 1]))
            return -1;
        c->ids[i] = v;
    }
    return 0;
}
