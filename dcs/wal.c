/* Segmented WAL: record encoding, group-commit writer, torn-tail-aware recovery.
 * Format and recovery rules are described in dcs/wal.h. */
#include "dcs/wal.h"
#include "le_bytes.h"
#include "dcs/crc32c.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REC_HDR         20
#define FLAG_END        1
#define SEG_MAGIC       0x31304c4157414750ull /* "PGAWAL01" */
#define SEG_VERSION     1
#define DEFAULT_SEGMENT (16u << 20)
#define PATH_MAX_LEN    512

enum { REC_SEGHDR = 1, REC_ENTRY = 2, REC_HARDSTATE = 3, REC_SNAP = 4 };

typedef struct seg {
    uint64_t seq;
    uint64_t max_index; /* highest entry index written into it */
} seg;

struct wal {
    const wal_fs *fs;
    char dir[PATH_MAX_LEN];
    uint64_t seg_bytes;
    seg *segs;
    size_t n_segs;
    int fd;
    uint64_t cur_off, cur_size;
    uint8_t *buf;
    size_t len, cap, last_rec;
    uint64_t buf_max_index;
    uint64_t batch;
    raft_hard_state hs_pending, hs_durable;
    uint64_t snap_index_pending, snap_term_pending, snap_index_durable, snap_term_durable;
    uint64_t syncs;
    int failed;
};

/* Frees memory we own but reference through a const pointer (entry/snapshot data). */
static void free_const(const void *p)
{
    void *q;
    memcpy(&q, &p, sizeof(q));
    free(q);
}

static size_t padded(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

/* ---------------------------------------------------------------- encoding */

static int buf_reserve(uint8_t **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 4096;
    while (nc < need)
        nc *= 2;
    uint8_t *b = realloc(*buf, nc);
    if (!b)
        return -ENOMEM;
    *buf = b;
    *cap = nc;
    return 0;
}

/* Appends one record; the payload is given in two pieces (header fields, data). */
static int rec_append(uint8_t **buf, size_t *len, size_t *cap, size_t *last, uint8_t type,
                      uint64_t batch, const void *p1, size_t l1, const void *p2, size_t l2)
{
    size_t plen = l1 + l2;
    if (plen > WAL_MAX_RECORD)
        return -EFBIG;
    size_t total = padded(REC_HDR + plen);
    int rc = buf_reserve(buf, cap, *len + total);
    if (rc)
        return rc;
    uint8_t *r = *buf + *len;
    memset(r, 0, total);
    put_u32(r, (uint32_t)plen);
    r[8] = type;
    r[9] = 0;
    put_u64(r + 12, batch);
    if (l1)
        memcpy(r + REC_HDR, p1, l1);
    if (l2)
        memcpy(r + REC_HDR + l1, p2, l2);
    put_u32(r + 4, crc32c(r + 8, REC_HDR - 8 + plen));
    *last = *len;
    *len += total;
    return 0;
}

static void rec_set_end(uint8_t *r)
{
    uint32_t plen = get_u32(r);
    r[9] |= FLAG_END;
    put_u32(r + 4, crc32c(r + 8, REC_HDR - 8 + plen));
}

/* ---------------------------------------------------------------- recovery */

/* 0 and *plen if a record at off passes every structural check. */
static int rec_check(const uint8_t *buf, size_t len, size_t off, uint32_t *plen)
{
    if (len - off < REC_HDR)
        return -1;
    const uint8_t *r = buf + off;
    uint32_t l = get_u32(r);
    /* the padding is part of the record: a record whose padding runs past the end of the
     * file was not completely written */
    if (l > WAL_MAX_RECORD || padded(REC_HDR + (size_t)l) > len - off)
        return -1;
    if (r[8] < REC_SEGHDR || r[8] > REC_SNAP || r[9] > FLAG_END || r[10] || r[11])
        return -1;
    if (crc32c(r + 8, REC_HDR - 8 + (size_t)l) != get_u32(r + 4))
        return -1;
    *plen = l;
    return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static void entries_free(raft_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free_const(e[i].data);
}

/* Drops entries with index <= upto (or all of them). */
static void st_drop_through(wal_state *st, uint64_t upto, int all)
{
    size_t k = 0;
    while (k < st->n_entries && (all || st->entries[k].index <= upto))
        k++;
    if (k == 0)
        return;
    entries_free(st->entries, k);
    memmove(st->entries, st->entries + k, (st->n_entries - k) * sizeof(*st->entries));
    st->n_entries -= k;
}

static int st_push(wal_state *st, size_t *cap, const raft_entry *e)
{
    size_t n = st->n_entries;
    if (n) {
        uint64_t first = st->entries[0].index, last = st->entries[n - 1].index;
        if (e->index >= first && e->index <= last) {
            /* truncation: this entry replaces index e->index and everything after */
            size_t keep = (size_t)(e->index - first);
            entries_free(st->entries + keep, n - keep);
            st->n_entries = n = keep;
        } else if (e->index != last + 1) {
            /* a hole: what came before cannot be contiguous with what follows; only a
             * snapshot marker can cover it (checked at the end) */
            entries_free(st->entries, n);
            st->n_entries = n = 0;
        }
    }
    if (n == *cap) {
        size_t nc = *cap ? *cap * 2 : 256;
        raft_entry *ne = realloc(st->entries, nc * sizeof(*ne));
        if (!ne)
            return -ENOMEM;
        st->entries = ne;
        *cap = nc;
    }
    uint8_t *d = NULL;
    if (e->len) {
        d = malloc(e->len);
        if (!d)
            return -ENOMEM;
        memcpy(d, e->data, e->len);
    }
    st->entries[n] = *e;
    st->entries[n].data = d;
    st->n_entries = n + 1;
    return 0;
}

typedef struct parse_ctx {
    wal_state *st;
    size_t cap;
    uint64_t max_batch;
    uint64_t max_index;
} parse_ctx;

/* Applies one checked record; -1 with err if its payload is malformed. */
static int rec_apply(parse_ctx *pc, const uint8_t *r, uint32_t plen, uint64_t seq, bool first,
                     char *err, size_t errlen)
{
    const uint8_t *p = r + REC_HDR;
    uint8_t type = r[8];
    if (first != (type == REC_SEGHDR)) {
        snprintf(err, errlen,
                 first ? "segment does not start with a header record"
                       : "header record in the middle of a segment");
        return -1;
    }
    switch (type) {
    case REC_SEGHDR:
        if (plen != 20 || get_u64(p) != SEG_MAGIC || get_u32(p + 16) != SEG_VERSION ||
            (seq && get_u64(p + 8) != seq)) {
            snprintf(err, errlen, "bad segment header (magic, version or sequence %" PRIu64 ")",
                     seq);
            return -1;
        }
        return 0;
    case REC_ENTRY: {
        if (plen < 17 || p[16] > RAFT_ENTRY_CONF) {
            snprintf(err, errlen, "malformed entry record");
            return -1;
        }
        raft_entry e = {.term = get_u64(p),
                        .index = get_u64(p + 8),
                        .type = p[16],
                        .len = plen - 17,
                        .data = p + 17};
        if (e.index == 0 || e.term == 0) {
            snprintf(err, errlen, "entry record with index or term 0");
            return -1;
        }
        if (e.index > pc->max_index)
            pc->max_index = e.index;
        if (e.index <= pc->st->snap_index)
            return 0; /* covered by the snapshot */
        if (st_push(pc->st, &pc->cap, &e) < 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        return 0;
    }
    case REC_HARDSTATE:
        if (plen != 24) {
            snprintf(err, errlen, "malformed hard state record");
            return -1;
        }
        pc->st->hs.term = get_u64(p);
        pc->st->hs.vote = get_u64(p + 8);
        pc->st->hs.commit = get_u64(p + 16);
        return 0;
    case REC_SNAP: {
        if (plen != 17 || p[16] > 1) {
            snprintf(err, errlen, "malformed snapshot marker");
            return -1;
        }
        uint64_t idx = get_u64(p), term = get_u64(p + 8);
        if (idx < pc->st->snap_index)
            return 0; /* an older marker (segment header copy) */
        pc->st->snap_index = idx;
        pc->st->snap_term = term;
        st_drop_through(pc->st, idx, p[16]);
        return 0;
    }
    default:
        snprintf(err, errlen, "unknown record type %u", type);
        return -1;
    }
}

/* Parses one segment image into pc. *valid_end: where the log ends (after the last record
 * that closed a batch). *torn: 1 if something after that must be discarded (only allowed
 * in the last segment).
 *
 * A batch counts only when its closing record is there: a batch is all or nothing, so a
 * hard state is never recovered without the entries written before it in the same batch,
 * and the log always ends on a batch boundary (which the torn-tail rule below relies on).
 * Pass 1 finds that end and decides torn tail vs. damage; pass 2 applies the records. */
static int parse_segment(parse_ctx *pc, const uint8_t *buf, size_t len, uint64_t seq, bool is_last,
                         size_t *valid_end, int *torn, char *err, size_t errlen)
{
    size_t off = 0, cut = 0;
    uint64_t prev_batch = 0, closed_batch = 0;
    bool first = true, bad = false;
    char why[160];
    *torn = 0;
    while (off + REC_HDR <= len) {
        uint32_t plen;
        uint64_t b = get_u64(buf + off + 12);
        /* batch numbers never go down: a lower one is debris of a discarded batch */
        if (rec_check(buf, len, off, &plen) == 0 && (first || b >= prev_batch)) {
            if (first && buf[off + 8] != REC_SEGHDR)
                break;
            first = false;
            prev_batch = b;
            off += padded(REC_HDR + plen);
            if (buf[off - padded(REC_HDR + plen) + 9] & FLAG_END) {
                cut = off;
                closed_batch = b;
            }
            continue;
        }
        bad = !all_zero(buf + off, len - off);
        break;
    }
    if (first || cut == 0) {
        snprintf(err, errlen, "offset 0: segment has no complete header; refusing to continue");
        return -1;
    }
    if (!bad && off < len && cut == off) {
        /* clean end: the preallocated, never written rest */
    } else if (cut < off || bad) {
        size_t where = cut < off ? cut : off;
        if (!is_last) {
            snprintf(err, errlen,
                     "offset %zu: corrupted or incomplete record in a sealed segment; "
                     "refusing to continue: acknowledged data may be damaged",
                     where);
            return -1;
        }
        /* Torn tail or damage? Only the batch after the last closed one can have been in
         * flight (each batch is fsynced before the next is written): an intact record of
         * any LATER batch proves that batch was fsynced, i.e. acknowledged. */
        uint64_t in_flight = closed_batch + 1;
        for (size_t q = cut; q + REC_HDR <= len; q += 8) {
            uint32_t l2;
            if (rec_check(buf, len, q, &l2) == 0 && get_u64(buf + q + 12) > in_flight) {
                snprintf(err, errlen,
                         "offset %zu: corrupted record followed by intact batch %" PRIu64
                         " at offset %zu; refusing to continue: acknowledged data is damaged",
                         where, get_u64(buf + q + 12), q);
                return -1;
            }
        }
        *torn = 1;
        if (in_flight > pc->max_batch)
            pc->max_batch = in_flight; /* never reuse the number of the discarded batch */
    }
    /* pass 2: apply the complete batches */
    for (off = 0; off < cut;) {
        uint32_t plen = get_u32(buf + off);
        if (rec_apply(pc, buf + off, plen, seq, off == 0, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "offset %zu: %s", off, why);
            return -1;
        }
        uint64_t b = get_u64(buf + off + 12);
        if (b > pc->max_batch)
            pc->max_batch = b;
        off += padded(REC_HDR + plen);
    }
    *valid_end = cut;
    return 0;
}

int wal_parse_segment(const uint8_t *buf, size_t len, wal_state *st, size_t *valid_end, char *err,
                      size_t errlen)
{
    memset(st, 0, sizeof(*st));
    parse_ctx pc = {.st = st};
    int torn;
    if (parse_segment(&pc, buf, len, 0, true, valid_end, &torn, err, errlen) < 0) {
        wal_state_free(st);
        return -1;
    }
    st->torn_tail = torn;
    return 0;
}

void wal_state_free(wal_state *st)
{
    entries_free(st->entries, st->n_entries);
    free(st->entries);
    st->entries = NULL;
    st->n_entries = 0;
}

static int reconcile(wal_state *st, uint64_t snap_index, uint64_t snap_term, int *adopted,
                     int *reset, char *err, size_t errlen)
{
    *adopted = *reset = 0;
    if (snap_index < st->snap_index) {
        snprintf(err, errlen,
                 "WAL records a snapshot at index %" PRIu64 " but the newest valid snapshot "
                 "file is at index %" PRIu64,
                 st->snap_index, snap_index);
        return -1;
    }
    if (snap_index > st->snap_index) {
        bool match = false;
        for (size_t i = 0; i < st->n_entries; i++)
            if (st->entries[i].index == snap_index && st->entries[i].term == snap_term)
                match = true;
        st_drop_through(st, snap_index, !match);
        *adopted = 1;
        *reset = !match;
        st->snap_index = snap_index;
        st->snap_term = snap_term;
    }
    if (st->n_entries && st->entries[0].index != st->snap_index + 1) {
        snprintf(err, errlen,
                 "WAL is missing entries %" PRIu64 "..%" PRIu64 " after snapshot %" PRIu64,
                 st->snap_index + 1, st->entries[0].index - 1, st->snap_index);
        return -1;
    }
    uint64_t last = st->snap_index + st->n_entries;
    if (st->hs.commit < st->snap_index)
        st->hs.commit = st->snap_index;
    if (st->hs.commit > last) {
        snprintf(err, errlen, "WAL hard state commit %" PRIu64 " beyond last entry %" PRIu64,
                 st->hs.commit, last);
        return -1;
    }
    return 0;
}

int wal_adopt_snapshot(wal *w, wal_state *st, uint64_t snap_index, uint64_t snap_term, char *err,
                       size_t errlen)
{
    int adopted, reset;
    if (reconcile(st, snap_index, snap_term, &adopted, &reset, err, errlen) < 0)
        return -EUCLEAN;
    if (!adopted)
        return 0;
    int rc = wal_mark_snapshot(w, snap_index, snap_term, reset);
    if (!rc)
        rc = wal_sync(w);
    if (rc)
        snprintf(err, errlen, "wal: recording snapshot %" PRIu64 ": %s", snap_index, strerror(-rc));
    return rc;
}

/* ---------------------------------------------------------------- files */

static void seg_path(const wal *w, uint64_t seq, const char *suffix, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%016" PRIx64 ".wal%s", w->dir, seq, suffix);
}

typedef struct list_ctx {
    wal *w;
    uint64_t *seqs;
    size_t n, cap;
    int rc;
} list_ctx;

static int list_cb(void *arg, const char *name)
{
    list_ctx *lc = arg;
    size_t l = strlen(name);
    char path[PATH_MAX_LEN + 64];
    if (l == 24 && strcmp(name + 16, ".wal.tmp") == 0) {
        /* a segment whose creation did not finish: never held acknowledged data */
        snprintf(path, sizeof(path), "%s/%s", lc->w->dir, name);
        lc->w->fs->unlink(lc->w->fs->ctx, path);
        return 0;
    }
    if (l != 20 || strcmp(name + 16, ".wal") != 0)
        return 0;
    uint64_t seq = 0;
    for (int i = 0; i < 16; i++) {
        char c = name[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0)
            return 0;
        seq = seq << 4 | (uint64_t)v;
    }
    if (lc->n == lc->cap) {
        size_t nc = lc->cap ? lc->cap * 2 : 16;
        uint64_t *s = realloc(lc->seqs, nc * sizeof(*s));
        if (!s) {
            lc->rc = -ENOMEM;
            return 1;
        }
        lc->seqs = s;
        lc->cap = nc;
    }
    lc->seqs[lc->n++] = seq;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Creates segment seq durably (temp name, header, fdatasync, rename, directory sync) and
 * makes it the current one. */
static int seg_create(wal *w, uint64_t seq, uint64_t min_size)
{
    char tmp[PATH_MAX_LEN + 64], final[PATH_MAX_LEN + 64];
    seg_path(w, seq, ".tmp", tmp, sizeof(tmp));
    seg_path(w, seq, "", final, sizeof(final));
    uint8_t *h = NULL;
    size_t hl = 0, hc = 0, last = 0;
    uint8_t p[24];
    uint64_t b = w->batch - 1;
    put_u64(p, SEG_MAGIC);
    put_u64(p + 8, seq);
    put_u32(p + 16, SEG_VERSION);
    int rc = rec_append(&h, &hl, &hc, &last, REC_SEGHDR, b, p, 20, NULL, 0);
    put_u64(p, w->snap_index_durable);
    put_u64(p + 8, w->snap_term_durable);
    p[16] = 0;
    if (!rc)
        rc = rec_append(&h, &hl, &hc, &last, REC_SNAP, b, p, 17, NULL, 0);
    put_u64(p, w->hs_durable.term);
    put_u64(p + 8, w->hs_durable.vote);
    put_u64(p + 16, w->hs_durable.commit);
    if (!rc)
        rc = rec_append(&h, &hl, &hc, &last, REC_HARDSTATE, b, p, 24, NULL, 0);
    if (rc) {
        free(h);
        return rc;
    }
    rec_set_end(h + last);
    uint64_t size = w->seg_bytes;
    if (size < hl + min_size)
        size = padded(hl + min_size);
    const wal_fs *fs = w->fs;
    int fd = fs->open(fs->ctx, tmp, WAL_FS_CREATE);
    if (fd < 0) {
        free(h);
        return fd;
    }
    rc = fs->allocate(fs->ctx, fd, size);
    if (!rc)
        rc = wal_fs_write_all(fs, fd, h, hl, 0);
    if (!rc)
        rc = fs->fdatasync(fs->ctx, fd);
    free(h);
    fs->close(fs->ctx, fd);
    if (!rc)
        rc = fs->rename(fs->ctx, tmp, final);
    if (!rc)
        rc = fs->sync_dir(fs->ctx, w->dir);
    if (rc)
        return rc;
    fd = fs->open(fs->ctx, final, WAL_FS_WRITE);
    if (fd < 0)
        return fd;
    seg *ns = realloc(w->segs, (w->n_segs + 1) * sizeof(*ns));
    if (!ns) {
        fs->close(fs->ctx, fd);
        return -ENOMEM;
    }
    w->segs = ns;
    w->segs[w->n_segs++] = (seg){.seq = seq};
    if (w->fd >= 0)
        fs->close(fs->ctx, w->fd);
    w->fd = fd;
    w->cur_off = hl;
    w->cur_size = size;
    return 0;
}

int wal_open(const wal_fs *fs, const char *dir, const wal_options *opt, wal **out, wal_state *st,
             char *err, size_t errlen)
{
    *out = NULL;
    memset(st, 0, sizeof(*st));
    if (strlen(dir) >= PATH_MAX_LEN) {
        snprintf(err, errlen, "wal: directory name too long");
        return -ENAMETOOLONG;
    }
    wal *w = calloc(1, sizeof(*w));
    if (!w) {
        snprintf(err, errlen, "wal: out of memory");
        return -ENOMEM;
    }
    w->fs = fs;
    w->fd = -1;
    snprintf(w->dir, sizeof(w->dir), "%s", dir);
    w->seg_bytes = opt && opt->segment_bytes ? opt->segment_bytes : DEFAULT_SEGMENT;
    if (w->seg_bytes < 4096)
        w->seg_bytes = 4096;
    w->batch = 1;
    int rc = fs->mkdir(fs->ctx, dir);
    if (rc) {
        snprintf(err, errlen, "wal: mkdir %s: %s", dir, strerror(-rc));
        free(w);
        return rc;
    }
    list_ctx lc = {.w = w};
    rc = fs->list_dir(fs->ctx, dir, list_cb, &lc);
    if (rc == 1)
        rc = lc.rc;
    if (rc) {
        snprintf(err, errlen, "wal: listing %s: %s", dir, strerror(-rc));
        free(lc.seqs);
        free(w);
        return rc;
    }
    if (lc.n)
        qsort(lc.seqs, lc.n, sizeof(*lc.seqs), cmp_u64);
    parse_ctx pc = {.st = st};
    size_t valid_end = 0;
    int torn = 0;
    char why[256];
    for (size_t i = 0; i < lc.n; i++) {
        char path[PATH_MAX_LEN + 64];
        seg_path(w, lc.seqs[i], "", path, sizeof(path));
        uint8_t *buf;
        size_t len;
        rc = wal_fs_read_file(fs, path, 1ull << 32, &buf, &len);
        if (rc) {
            snprintf(err, errlen, "wal: reading %s: %s", path, strerror(-rc));
            goto fail;
        }
        pc.max_index = 0;
        rc = parse_segment(&pc, buf, len, lc.seqs[i], i + 1 == lc.n, &valid_end, &torn, why,
                           sizeof(why));
        free(buf);
        if (rc) {
            snprintf(err, errlen, "wal: %s: %s", path, why);
            rc = -EUCLEAN;
            goto fail;
        }
        seg *ns = realloc(w->segs, (w->n_segs + 1) * sizeof(*ns));
        if (!ns) {
            rc = -ENOMEM;
            snprintf(err, errlen, "wal: out of memory");
            goto fail;
        }
        w->segs = ns;
        w->segs[w->n_segs++] = (seg){.seq = lc.seqs[i], .max_index = pc.max_index};
    }
    st->torn_tail = torn;
    w->batch = pc.max_batch + 1;
    w->hs_durable = w->hs_pending = st->hs;
    w->snap_index_durable = w->snap_index_pending = st->snap_index;
    w->snap_term_durable = w->snap_term_pending = st->snap_term;
    if (lc.n == 0) {
        rc = seg_create(w, 1, 0);
        if (rc) {
            snprintf(err, errlen, "wal: creating first segment in %s: %s", dir, strerror(-rc));
            goto fail;
        }
    } else {
        char path[PATH_MAX_LEN + 64];
        seg_path(w, lc.seqs[lc.n - 1], "", path, sizeof(path));
        w->fd = fs->open(fs->ctx, path, WAL_FS_WRITE);
        rc = w->fd < 0 ? w->fd : fs->size(fs->ctx, w->fd, &w->cur_size);
        if (!rc && torn) {
            /* zero the torn tail so later batches are never mixed with its debris */
            uint8_t zero[4096] = {0};
            for (uint64_t o = valid_end; !rc && o < w->cur_size; o += sizeof(zero)) {
                size_t n =
                    w->cur_size - o < sizeof(zero) ? (size_t)(w->cur_size - o) : sizeof(zero);
                rc = wal_fs_write_all(fs, w->fd, zero, n, o);
            }
            if (!rc)
                rc = fs->fdatasync(fs->ctx, w->fd);
        }
        if (!rc && w->cur_size < w->seg_bytes)
            rc = fs->allocate(fs->ctx, w->fd, w->seg_bytes);
        if (!rc)
            rc = fs->size(fs->ctx, w->fd, &w->cur_size);
        if (rc) {
            snprintf(err, errlen, "wal: opening %s for append: %s", path, strerror(-rc));
            goto fail;
        }
        w->cur_off = valid_end;
        if (torn) {
            /* Close the log with a batch of its own (the recovered hard state) under a new
             * number, so that again "the batch after the last closed one is the only one
             * that can be in flight": the discarded batch's number is never reused. */
            rc = wal_save(w, &st->hs, NULL, 0);
            if (!rc)
                rc = wal_sync(w);
            if (rc) {
                snprintf(err, errlen, "wal: closing the log after a torn tail in %s: %s", path,
                         strerror(-rc));
                goto fail;
            }
        }
    }
    free(lc.seqs);
    *out = w;
    return 0;
fail:
    free(lc.seqs);
    wal_state_free(st);
    wal_close(w);
    return rc;
}

/* ---------------------------------------------------------------- writing */

int wal_save(wal *w, const raft_hard_state *hs, const raft_entry *ents, size_t n)
{
    if (w->failed)
        return -EIO;
    uint8_t h[24];
    for (size_t i = 0; i < n; i++) {
        const raft_entry *e = &ents[i];
        put_u64(h, e->term);
        put_u64(h + 8, e->index);
        h[16] = e->type;
        int rc = rec_append(&w->buf, &w->len, &w->cap, &w->last_rec, REC_ENTRY, w->batch, h, 17,
                            e->data, e->len);
        if (rc)
            return rc;
        if (e->index > w->buf_max_index)
            w->buf_max_index = e->index;
    }
    if (hs) {
        put_u64(h, hs->term);
        put_u64(h + 8, hs->vote);
        put_u64(h + 16, hs->commit);
        int rc = rec_append(&w->buf, &w->len, &w->cap, &w->last_rec, REC_HARDSTATE, w->batch, h, 24,
                            NULL, 0);
        if (rc)
            return rc;
        w->hs_pending = *hs;
    }
    return 0;
}

int wal_mark_snapshot(wal *w, uint64_t index, uint64_t term, int reset)
{
    if (w->failed)
        return -EIO;
    uint8_t h[17];
    put_u64(h, index);
    put_u64(h + 8, term);
    h[16] = reset ? 1 : 0;
    int rc =
        rec_append(&w->buf, &w->len, &w->cap, &w->last_rec, REC_SNAP, w->batch, h, 17, NULL, 0);
    if (rc)
        return rc;
    if (index >= w->snap_index_pending) {
        w->snap_index_pending = index;
        w->snap_term_pending = term;
    }
    return 0;
}

int wal_sync(wal *w)
{
    if (w->failed)
        return -EIO;
    if (w->len == 0)
        return 0;
    rec_set_end(w->buf + w->last_rec);
    int rc = 0;
    if (w->cur_off + w->len > w->cur_size)
        rc = seg_create(w, w->segs[w->n_segs - 1].seq + 1, w->len);
    if (!rc)
        rc = wal_fs_write_all(w->fs, w->fd, w->buf, w->len, w->cur_off);
    if (!rc)
        rc = w->fs->fdatasync(w->fs->ctx, w->fd);
    w->syncs++;
    if (rc) {
        /* After a failed write or fsync the kernel's view of the file is unknown (dirty
         * pages may have been dropped): never retry, the server must restart and recover. */
        w->failed = 1;
        return rc;
    }
    w->cur_off += w->len;
    w->len = 0;
    w->batch++;
    seg *s = &w->segs[w->n_segs - 1];
    if (w->buf_max_index > s->max_index)
        s->max_index = w->buf_max_index;
    w->buf_max_index = 0;
    w->hs_durable = w->hs_pending;
    w->snap_index_durable = w->snap_index_pending;
    w->snap_term_durable = w->snap_term_pending;
    return 0;
}

int wal_release(wal *w, uint64_t snap_index)
{
    if (snap_index > w->snap_index_durable)
        snap_index = w->snap_index_durable; /* only what a durable marker covers */
    size_t k = 0;
    while (k + 1 < w->n_segs && w->segs[k].max_index <= snap_index)
        k++;
    if (!k)
        return 0;
    int rc = 0;
    size_t done = 0; /* oldest first, so a failure never leaves a hole in the middle */
    for (; done < k && !rc; done++) {
        char path[PATH_MAX_LEN + 64];
        seg_path(w, w->segs[done].seq, "", path, sizeof(path));
        rc = w->fs->unlink(w->fs->ctx, path);
        if (rc)
            break;
    }
    memmove(w->segs, w->segs + done, (w->n_segs - done) * sizeof(*w->segs));
    w->n_segs -= done;
    int rc2 = done ? w->fs->sync_dir(w->fs->ctx, w->dir) : 0;
    return rc ? rc : rc2;
}

uint64_t wal_sync_count(const wal *w)
{
    return w->syncs;
}

void wal_close(wal *w)
{
    if (!w)
        return;
    if (w->fd >= 0)
        w->fs->close(w->fs->ctx, w->fd);
    free(w->segs);
    free(w->buf);
    free(w);
}
