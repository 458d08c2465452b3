/* Wire encoding of raft messages between DCS members (layout in dcs/raft.h).
 *
 * Body, little-endian: u64 from, to, term, index, log_term, commit, reject_hint,
 * hint_term, ctx | u8 reject, transfer, has_snapshot, reserved(0) | u32 n_entries |
 * n_entries x (u64 term, u64 index, u8 type, u32 len, len bytes) |
 * if has_snapshot: u64 index, u64 term, u8 n_voters, n_voters x u64 id, u32 len, len bytes.
 * The decoder accepts exactly this and nothing else: every length is checked against the
 * remaining bytes before use, the body must be consumed exactly, flags are 0/1, entry
 * indices must follow `index` contiguously, the voter list must be canonical. */
#include "dcs/raft.h"
#include "le_bytes.h"
#include "dcs/crc32c.h"

#include <stdio.h>
#include <string.h>

#define MAGIC   0x31544652u /* "RFT1" little-endian */
#define VERSION 1
#define FIXED   (9 * 8 + 4 + 4)

size_t raft_msg_encoded_len(const raft_msg *m)
{
    size_t n = RAFT_MSG_HEADER_LEN + FIXED;
    for (uint32_t i = 0; i < m->n_entries; i++)
        n += 21 + (size_t)m->entries[i].len;
    if (m->has_snapshot)
        n += 17 + 8 * (size_t)m->snapshot.conf.n + 4 + m->snapshot.len;
    return n;
}

size_t raft_msg_encode(const raft_msg *m, uint8_t *buf, size_t cap)
{
    size_t total = raft_msg_encoded_len(m);
    if (total > cap || total - RAFT_MSG_HEADER_LEN > RAFT_MSG_MAX_BODY ||
        m->n_entries > RAFT_MSG_MAX_ENTRIES || m->snapshot.conf.n > RAFT_MAX_NODES)
        return 0;
    uint8_t *p = buf + RAFT_MSG_HEADER_LEN;
    const uint64_t fixed[9] = {m->from,   m->to,          m->term,      m->index, m->log_term,
                               m->commit, m->reject_hint, m->hint_term, m->ctx};
    for (int i = 0; i < 9; i++, p += 8)
        put_u64(p, fixed[i]);
    *p++ = m->reject ? 1 : 0;
    *p++ = m->transfer ? 1 : 0;
    *p++ = m->has_snapshot ? 1 : 0;
    *p++ = 0;
    put_u32(p, m->n_entries);
    p += 4;
    for (uint32_t i = 0; i < m->n_entries; i++) {
        const raft_entry *e = &m->entries[i];
        put_u64(p, e->term);
        put_u64(p + 8, e->index);
        p[16] = e->type;
        put_u32(p + 17, e->len);
        p += 21;
        if (e->len)
            memcpy(p, e->data, e->len);
        p += e->len;
    }
    if (m->has_snapshot) {
        const raft_snapshot *s = &m->snapshot;
        put_u64(p, s->index);
        put_u64(p + 8, s->term);
        p[16] = (uint8_t)s->conf.n;
        p += 17;
        for (uint32_t i = 0; i < s->conf.n; i++, p += 8)
            put_u64(p, s->conf.ids[i]);
        put_u32(p, s->len);
        p += 4;
        if (s->len)
            memcpy(p, s->data, s->len);
    }
    uint32_t body = (uint32_t)(total - RAFT_MSG_HEADER_LEN);
    put_u32(buf, MAGIC);
    buf[4] = VERSION;
    buf[5] = m->type;
    buf[6] = buf[7] = 0;
    put_u32(buf + 8, body);
    put_u32(buf + 12, crc32c(buf + RAFT_MSG_HEADER_LEN, body));
    put_u64(buf + 16, 0);
    return total;
}

size_t raft_msg_frame_len(const uint8_t *hdr, size_t len, char *err, size_t errlen)
{
    if (len < RAFT_MSG_HEADER_LEN) {
        snprintf(err, errlen, "raft message: header needs %d bytes, have %zu", RAFT_MSG_HEADER_LEN,
                 len);
        return 0;
    }
    if (get_u32(hdr) != MAGIC) {
        snprintf(err, errlen, "raft message: bad magic 0x%08x", get_u32(hdr));
        return 0;
    }
    if (hdr[4] != VERSION) {
        snprintf(err, errlen, "raft message: unsupported version %u (want %d)", hdr[4], VERSION);
        return 0;
    }
    if (hdr[5] < 1 || hdr[5] > RAFT_MSG_TYPE_MAX) {
        snprintf(err, errlen, "raft message: unknown type %u", hdr[5]);
        return 0;
    }
    if (hdr[6] || hdr[7] || get_u64(hdr + 16)) {
        snprintf(err, errlen, "raft message: reserved header bytes not zero");
        return 0;
    }
    uint32_t body = get_u32(hdr + 8);
    if (body > RAFT_MSG_MAX_BODY || body < FIXED) {
        snprintf(err, errlen, "raft message: body length %u outside [%d, %u]", body, FIXED,
                 RAFT_MSG_MAX_BODY);
        return 0;
    }
    return RAFT_MSG_HEADER_LEN + (size_t)body;
}

int raft_msg_decode(const uint8_t *buf, size_t len, raft_msg *m, raft_entry *ents, size_t max_ents,
                    char *err, size_t errlen)
{
    size_t total = raft_msg_frame_len(buf, len, err, errlen);
    if (!total)
        return -1;
    if (total != len) {
        snprintf(err, errlen, "raft message: frame is %zu bytes, header says %zu", len, total);
        return -1;
    }
    const uint8_t *p = buf + RAFT_MSG_HEADER_LEN, *end = buf + len;
    if (crc32c(p, (size_t)(end - p)) != get_u32(buf + 12)) {
        snprintf(err, errlen, "raft message: body CRC mismatch");
        return -1;
    }
    memset(m, 0, sizeof(*m));
    m->type = buf[5];
    uint64_t *fixed[9] = {&m->from,   &m->to,          &m->term,      &m->index, &m->log_term,
                          &m->commit, &m->reject_hint, &m->hint_term, &m->ctx};
    for (int i = 0; i < 9; i++, p += 8)
        *fixed[i] = get_u64(p);
    if (p[0] > 1 || p[1] > 1 || p[2] > 1 || p[3]) {
        snprintf(err, errlen,
                 "raft message: flag bytes must be 0 or 1 (reject %u transfer %u "
                 "has_snapshot %u reserved %u)",
                 p[0], p[1], p[2], p[3]);
        return -1;
    }
    m->reject = p[0];
    m->transfer = p[1];
    m->has_snapshot = p[2];
    p += 4;
    uint32_t n = get_u32(p);
    p += 4;
    if (n > max_ents || n > RAFT_MSG_MAX_ENTRIES) {
        snprintf(err, errlen, "raft message: %u entries, limit %zu", n, max_ents);
        return -1;
    }
    if (n && m->type != RAFT_MSG_APPEND) {
        snprintf(err, errlen, "raft message: %s carries entries", raft_msg_type_name(m->type));
        return -1;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (end - p < 21) {
            snprintf(err, errlen, "raft message: entry %u header truncated", i);
            return -1;
        }
        raft_entry *e = &ents[i];
        e->term = get_u64(p);
        e->index = get_u64(p + 8);
        e->type = p[16];
        e->len = get_u32(p + 17);
        p += 21;
        if (e->type > RAFT_ENTRY_CONF) {
            snprintf(err, errlen, "raft message: entry %u has unknown type %u", i, e->type);
            return -1;
        }
        if (e->index != m->index + 1 + i || e->term == 0 || e->term > m->term) {
            snprintf(err, errlen,
                     "raft message: entry %u has index %llu term %llu (want index "
                     "%llu, term 1..%llu)",
                     i, (unsigned long long)e->index, (unsigned long long)e->term,
                     (unsigned long long)m->index + 1 + (unsigned long long)i,
                     (unsigned long long)m->term);
            return -1;
        }
        if ((size_t)(end - p) < e->len) {
            snprintf(err, errlen, "raft message: entry %u data length %u exceeds frame", i, e->len);
            return -1;
        }
        e->data = e->len ? p : NULL;
        p += e->len;
    }
    m->n_entries = n;
    m->entries = n ? ents : NULL;
    if (m->has_snapshot) {
        if (m->type != RAFT_MSG_SNAPSHOT) {
            snprintf(err, errlen, "raft message: %s carries a snapshot",
                     raft_msg_type_name(m->type));
            return -1;
        }
        raft_snapshot *s = &m->snapshot;
        if (end - p < 17) {
            snprintf(err, errlen, "raft message: snapshot header truncated");
            return -1;
        }
        s->index = get_u64(p);
        s->term = get_u64(p + 8);
        s->conf.n = p[16];
        p += 17;
        if (s->conf.n > RAFT_MAX_NODES || (size_t)(end - p) < 8 * (size_t)s->conf.n + 4) {
            snprintf(err, errlen, "raft message: snapshot voter count %u invalid", s->conf.n);
            return -1;
        }
        for (uint32_t i = 0; i < s->conf.n; i++, p += 8) {
            s->conf.ids[i] = get_u64(p);
            if (s->conf.ids[i] == 0 || (i && s->conf.ids[i] <= s->conf.ids[i - 1])) {
                snprintf(err, errlen, "raft message: snapshot voter list not ascending");
                return -1;
            }
        }
        s->len = get_u32(p);
        p += 4;
        if ((size_t)(end - p) < s->len) {
            snprintf(err, errlen, "raft message: snapshot data length %u exceeds frame", s->len);
            return -1;
        }
        s->data = s->len ? p : NULL;
        p += s->len;
        if (s->index == 0 || s->term == 0) {
            snprintf(err, errlen, "raft message: snapshot index/term must be non-zero");
            return -1;
        }
    } else if (m->type == RAFT_MSG_SNAPSHOT) {
        snprintf(err, errlen, "raft message: SNAPSHOT without snapshot");
        return -1;
    }
    if (p != end) {
        snprintf(err, errlen, "raft message: %zu trailing bytes", (size_t)(end - p));
        return -1;
    }
    if (m->from == 0 || m->to == 0) {
        snprintf(err, errlen, "raft message: from/to must be non-zero");
        return -1;
    }
    return 0;
}
