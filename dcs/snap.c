/* Snapshot file encoding, atomic save, newest-valid load, purge (format in dcs/snap.h). */
#include "dcs/snap.h"
#include "le_bytes.h"
#include "dcs/crc32c.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SNAP_MAGIC   0x3150414e53414750ull /* "PGASNAP1" */
#define SNAP_VERSION 1
#define PATH_CAP     600

int snap_encode(const raft_snapshot *s, uint8_t **buf, size_t *len)
{
    if (s->conf.n > RAFT_MAX_NODES)
        return -EINVAL;
    size_t n = 32 + 8 * (size_t)s->conf.n + 8 + s->len + 4;
    uint8_t *b = malloc(n);
    if (!b)
        return -ENOMEM;
    put_u64(b, SNAP_MAGIC);
    put_u32(b + 8, SNAP_VERSION);
    put_u32(b + 12, s->conf.n);
    put_u64(b + 16, s->index);
    put_u64(b + 24, s->term);
    uint8_t *p = b + 32;
    for (uint32_t i = 0; i < s->conf.n; i++, p += 8)
        put_u64(p, s->conf.ids[i]);
    put_u64(p, s->len);
    p += 8;
    if (s->len)
        memcpy(p, s->data, s->len);
    p += s->len;
    put_u32(p, crc32c(b, (size_t)(p - b)));
    *buf = b;
    *len = n;
    return 0;
}

int snap_decode(const uint8_t *buf, size_t len, raft_snapshot *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    if (len < 44) {
        snprintf(err, errlen, "snapshot: %zu bytes, shorter than the fixed header", len);
        return -1;
    }
    if (crc32c(buf, len - 4) != get_u32(buf + len - 4)) {
        snprintf(err, errlen, "snapshot: CRC mismatch");
        return -1;
    }
    if (get_u64(buf) != SNAP_MAGIC || get_u32(buf + 8) != SNAP_VERSION) {
        snprintf(err, errlen, "snapshot: bad magic or version %u", get_u32(buf + 8));
        return -1;
    }
    uint32_t n = get_u32(buf + 12);
    if (n > RAFT_MAX_NODES || len < 32 + 8 * (size_t)n + 8 + 4) {
        snprintf(err, errlen, "snapshot: voter count %u invalid", n);
        return -1;
    }
    s->index = get_u64(buf + 16);
    s->term = get_u64(buf + 24);
    if (s->index == 0 || s->term == 0) {
        snprintf(err, errlen, "snapshot: index and term must be non-zero");
        return -1;
    }
    s->conf.n = n;
    const uint8_t *p = buf + 32;
    for (uint32_t i = 0; i < n; i++, p += 8) {
        s->conf.ids[i] = get_u64(p);
        if (s->conf.ids[i] == 0 || (i && s->conf.ids[i] <= s->conf.ids[i - 1])) {
            snprintf(err, errlen, "snapshot: voter ids not ascending and non-zero");
            return -1;
        }
    }
    uint64_t dl = get_u64(p);
    p += 8;
    if (dl != (uint64_t)(buf + len - 4 - p) || dl > UINT32_MAX) {
        snprintf(err, errlen, "snapshot: data length %" PRIu64 " does not match file size", dl);
        return -1;
    }
    s->len = (uint32_t)dl;
    s->data = dl ? p : NULL;
    return 0;
}

int snap_save(const wal_fs *fs, const char *dir, const raft_snapshot *s, char *err, size_t errlen)
{
    char tmp[PATH_CAP + 8], final[PATH_CAP];
    if (strlen(dir) > PATH_CAP - 64) {
        snprintf(err, errlen, "snapshot: directory name too long");
        return -ENAMETOOLONG;
    }
    snprintf(final, sizeof(final), "%s/%016" PRIx64 "-%016" PRIx64 ".snap", dir, s->term, s->index);
    snprintf(tmp, sizeof(tmp), "%s.tmp", final);
    uint8_t *buf;
    size_t len;
    int rc = fs->mkdir(fs->ctx, dir);
    if (!rc)
        rc = snap_encode(s, &buf, &len);
    if (rc) {
        snprintf(err, errlen, "snapshot %s: %s", final, strerror(-rc));
        return rc;
    }
    int fd = fs->open(fs->ctx, tmp, WAL_FS_CREATE);
    rc = fd < 0 ? fd : wal_fs_write_all(fs, fd, buf, len, 0);
    if (!rc)
        rc = fs->fdatasync(fs->ctx, fd);
    if (fd >= 0)
        fs->close(fs->ctx, fd);
    free(buf);
    if (!rc)
        rc = fs->rename(fs->ctx, tmp, final);
    if (!rc)
        rc = fs->sync_dir(fs->ctx, dir);
    if (rc)
        snprintf(err, errlen, "snapshot %s: %s", final, strerror(-rc));
    return rc;
}

typedef struct snap_list {
    char (*names)[40];
    uint64_t *index;
    size_t n, cap;
    bool oom;
} snap_list;

static int parse_name(const char *name, uint64_t *term, uint64_t *index)
{
    if (strlen(name) != 38 || name[16] != '-' || strcmp(name + 33, ".snap") != 0)
        return -1;
    uint64_t v[2] = {0, 0};
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 16; i++) {
            char c = name[k * 17 + i];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0)
                return -1;
            v[k] = v[k] << 4 | (uint64_t)d;
        }
    *term = v[0];
    *index = v[1];
    return 0;
}

static int list_cb(void *arg, const char *name)
{
    snap_list *l = arg;
    uint64_t t, i;
    if (parse_name(name, &t, &i) < 0)
        return 0;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 8;
        char(*nn)[40] = realloc(l->names, nc * sizeof(*nn));
        if (!nn) {
            l->oom = true;
            return 1;
        }
        l->names = nn;
        uint64_t *ni = realloc(l->index, nc * sizeof(*ni));
        if (!ni) {
            l->oom = true;
            return 1;
        }
        l->index = ni;
        l->cap = nc;
    }
    snprintf(l->names[l->n], sizeof(l->names[l->n]), "%s", name);
    l->index[l->n++] = i;
    return 0;
}

static void snap_list_free(snap_list *l)
{
    free(l->names);
    free(l->index);
}

int snap_load_latest(const wal_fs *fs, const char *dir, raft_snapshot *s, int *skipped, char *err,
                     size_t errlen)
{
    memset(s, 0, sizeof(*s));
    *skipped = 0;
    snap_list l = {0};
    int rc = fs->mkdir(fs->ctx, dir);
    if (!rc)
        rc = fs->list_dir(fs->ctx, dir, list_cb, &l);
    if (l.oom)
        rc = -ENOMEM;
    if (rc) {
        snprintf(err, errlen, "snapshot dir %s: %s", dir, strerror(rc < 0 ? -rc : EIO));
        snap_list_free(&l);
        return rc < 0 ? rc : -EIO;
    }
    /* newest first; a damaged one falls back to the next older */
    while (l.n) {
        size_t best = 0;
        for (size_t i = 1; i < l.n; i++)
            if (l.index[i] > l.index[best])
                best = i;
        char path[PATH_CAP];
        snprintf(path, sizeof(path), "%s/%s", dir, l.names[best]);
        uint8_t *buf;
        size_t len;
        rc = wal_fs_read_file(fs, path, SNAP_MAX_BYTES, &buf, &len);
        if (rc == 0) {
            char why[160];
            raft_snapshot tmp;
            if (snap_decode(buf, len, &tmp, why, sizeof(why)) == 0) {
                uint8_t *d = NULL;
                if (tmp.len) {
                    d = malloc(tmp.len);
                    if (!d) {
                        free(buf);
                        snap_list_free(&l);
                        return -ENOMEM;
                    }
                    memcpy(d, tmp.data, tmp.len);
                }
                *s = tmp;
                s->data = d;
                free(buf);
                snap_list_free(&l);
                return 0;
            }
            snprintf(err, errlen, "%s: %s", path, why);
            free(buf);
        } else {
            snprintf(err, errlen, "%s: %s", path, strerror(-rc));
        }
        (*skipped)++;
        l.index[best] = l.index[l.n - 1];
        memcpy(l.names[best], l.names[l.n - 1], sizeof(l.names[best]));
        l.n--;
    }
    snap_list_free(&l);
    return 1;
}

void snap_free(raft_snapshot *s)
{
    void *q;
    memcpy(&q, &s->data, sizeof(q));
    free(q);
    s->data = NULL;
}

typedef struct purge_ctx {
    const wal_fs *fs;
    const char *dir;
    uint64_t keep;
    bool any;
} purge_ctx;

static int purge_cb(void *arg, const char *name)
{
    purge_ctx *pc = arg;
    uint64_t t, i;
    size_t l = strlen(name);
    bool tmp = l > 9 && strcmp(name + l - 9, ".snap.tmp") == 0;
    if (!tmp && (parse_name(name, &t, &i) < 0 || i >= pc->keep))
        return 0;
    char path[PATH_CAP];
    snprintf(path, sizeof(path), "%s/%s", pc->dir, name);
    pc->fs->unlink(pc->fs->ctx, path);
    pc->any = true;
    return 0;
}

int snap_purge(const wal_fs *fs, const char *dir, uint64_t keep_index)
{
    purge_ctx pc = {.fs = fs, .dir = dir, .keep = keep_index};
    int rc = fs->list_dir(fs->ctx, dir, purge_cb, &pc);
    if (!rc && pc.any)
        rc = fs->sync_dir(fs->ctx, dir);
    return rc;
}
