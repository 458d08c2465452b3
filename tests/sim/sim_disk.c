/* Simulated disk with a page cache, unsynced-data loss and torn writes (see sim_disk.h). */
#include "tests/sim/sim_disk.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECTOR   512
#define MAX_FDS  64
#define NAME_CAP 128

typedef struct pwrite_op {
    uint64_t off;
    size_t len;
    uint8_t *data; /* NULL: extend with zeros to off (allocate) */
} pwrite_op;

typedef struct inode {
    uint8_t *cur;
    size_t cur_len;
    uint8_t *dur;
    size_t dur_len;
    pwrite_op *pend;
    size_t n_pend;
} inode;

typedef struct name {
    char path[NAME_CAP];
    int ino;
} name;

enum { OP_LINK, OP_RENAME, OP_UNLINK };
typedef struct name_op {
    int op;
    char a[NAME_CAP], b[NAME_CAP];
    int ino;
} name_op;

typedef struct names {
    name *v;
    size_t n;
} names;

struct sim_disk {
    inode **inodes;
    size_t n_inodes;
    names cur, dur;
    name_op *pend;
    size_t n_pend;
    int fds[MAX_FDS];
    uint64_t ops, fail_at; /* fail_at 0 = never */
    int failed;
    uint64_t syncs;
};

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "sim_disk: out of memory\n");
        abort();
    }
    return q;
}

/* ---------------------------------------------------------------- namespace */

static int names_find(const names *ns, const char *path)
{
    for (size_t i = 0; i < ns->n; i++)
        if (strcmp(ns->v[i].path, path) == 0)
            return (int)i;
    return -1;
}

static void names_set(names *ns, const char *path, int ino)
{
    int k = names_find(ns, path);
    if (k >= 0) {
        ns->v[k].ino = ino;
        return;
    }
    ns->v = xrealloc(ns->v, (ns->n + 1) * sizeof(*ns->v));
    snprintf(ns->v[ns->n].path, NAME_CAP, "%s", path);
    ns->v[ns->n++].ino = ino;
}

static void names_del(names *ns, const char *path)
{
    int k = names_find(ns, path);
    if (k < 0)
        return;
    ns->v[k] = ns->v[--ns->n];
}

static void name_op_apply(names *ns, const name_op *o)
{
    if (o->op == OP_LINK) {
        names_set(ns, o->a, o->ino);
    } else if (o->op == OP_UNLINK) {
        names_del(ns, o->a);
    } else {
        int k = names_find(ns, o->a);
        if (k < 0)
            return;
        int ino = ns->v[k].ino;
        names_del(ns, o->a);
        names_set(ns, o->b, ino);
    }
}

static void pend_name(sim_disk *d, int op, const char *a, const char *b, int ino)
{
    d->pend = xrealloc(d->pend, (d->n_pend + 1) * sizeof(*d->pend));
    name_op *o = &d->pend[d->n_pend++];
    o->op = op;
    snprintf(o->a, NAME_CAP, "%s", a);
    snprintf(o->b, NAME_CAP, "%s", b ? b : "");
    o->ino = ino;
}

static bool in_dir(const char *path, const char *dir)
{
    size_t l = strlen(dir);
    return strncmp(path, dir, l) == 0 && path[l] == '/' && !strchr(path + l + 1, '/');
}

/* ---------------------------------------------------------------- operations */

static bool fail_now(sim_disk *d)
{
    d->ops++;
    if (d->fail_at && d->ops >= d->fail_at)
        d->failed = 1;
    return d->failed;
}

static inode *fd_inode(sim_disk *d, int fd)
{
    if (fd < 0 || fd >= MAX_FDS || d->fds[fd] < 0)
        return NULL;
    return d->inodes[d->fds[fd]];
}

static int sd_open(void *ctx, const char *path, int mode)
{
    sim_disk *d = ctx;
    if (fail_now(d))
        return -EIO;
    if (strlen(path) >= NAME_CAP)
        return -ENAMETOOLONG;
    int slot = -1;
    for (int i = 0; i < MAX_FDS; i++)
        if (d->fds[i] < 0) {
            slot = i;
            break;
        }
    if (slot < 0)
        return -EMFILE;
    int k = names_find(&d->cur, path);
    int ino;
    if (mode == WAL_FS_CREATE) {
        d->inodes = xrealloc(d->inodes, (d->n_inodes + 1) * sizeof(inode *));
        inode *n = calloc(1, sizeof(*n));
        if (!n)
            abort();
        d->inodes[d->n_inodes] = n;
        ino = (int)d->n_inodes++;
        names_set(&d->cur, path, ino);
        pend_name(d, OP_LINK, path, NULL, ino);
    } else {
        if (k < 0)
            return -ENOENT;
        ino = d->cur.v[k].ino;
    }
    d->fds[slot] = ino;
    return slot;
}

static int sd_close(void *ctx, int fd)
{
    sim_disk *d = ctx;
    if (fd >= 0 && fd < MAX_FDS)
        d->fds[fd] = -1;
    return 0;
}

static int64_t sd_pread(void *ctx, int fd, void *buf, size_t len, uint64_t off)
{
    sim_disk *d = ctx;
    if (fail_now(d))
        return -EIO;
    inode *n = fd_inode(d, fd);
    if (!n)
        return -EBADF;
    if (off >= n->cur_len)
        return 0;
    size_t k = n->cur_len - off < len ? (size_t)(n->cur_len - off) : len;
    memcpy(buf, n->cur + off, k);
    return (int64_t)k;
}

static void grow(uint8_t **p, size_t *len, size_t need)
{
    if (need <= *len)
        return;
    *p = xrealloc(*p, need);
    memset(*p + *len, 0, need - *len);
    *len = need;
}

static void pend_write(inode *n, uint64_t off, const void *buf, size_t len)
{
    n->pend = xrealloc(n->pend, (n->n_pend + 1) * sizeof(*n->pend));
    pwrite_op *w = &n->pend[n->n_pend++];
    w->off = off;
    w->len = len;
    w->data = NULL;
    if (buf) {
        w->data = xrealloc(NULL, len);
        memcpy(w->data, buf, len);
    }
}

static int64_t sd_pwrite(void *ctx, int fd, const void *buf, size_t len, uint64_t off)
{
    sim_disk *d = ctx;
    inode *n = fd_inode(d, fd);
    if (fail_now(d)) {
        /* power lost during this write: some of it may reach the platter (torn) */
        if (n && len)
            pend_write(n, off, buf, len);
        return -EIO;
    }
    if (!n)
        return -EBADF;
    grow(&n->cur, &n->cur_len, (size_t)off + len);
    memcpy(n->cur + off, buf, len);
    pend_write(n, off, buf, len);
    return (int64_t)len;
}

static int sd_fdatasync(void *ctx, int fd)
{
    sim_disk *d = ctx;
    if (fail_now(d))
        return -EIO;
    inode *n = fd_inode(d, fd);
    if (!n)
        return -EBADF;
    /* apply what is pending (cheaper than copying the whole file) */
    for (size_t i = 0; i < n->n_pend; i++) {
        pwrite_op *w = &n->pend[i];
        if (w->data) {
            grow(&n->dur, &n->dur_len, (size_t)w->off + w->len);
            memcpy(n->dur + w->off, w->data, w->len);
        } else {
            grow(&n->dur, &n->dur_len, (size_t)w->off);
        }
        free(w->data);
    }
    n->n_pend = 0;
    d->syncs++;
    return 0;
}

static int sd_size(void *ctx, int fd, uint64_t *size)
{
    sim_disk *d = ctx;
    inode *n = fd_inode(d, fd);
    if (!n)
        return -EBADF;
    *size = n->cur_len;
    return 0;
}

static int sd_allocate(void *ctx, int fd, uint64_t size)
{
    sim_disk *d = ctx;
    if (fail_now(d))
        return -EIO;
    inode *n = fd_inode(d, fd);
    if (!n)
        return -EBADF;
    if (size > n->cur_len) {
        grow(&n->cur, &n->cur_len, (size_t)size);
        pend_write(n, size, NULL, 0);
    }
    return 0;
}

static int sd_rename(void *ctx, const char *from, const char *to)
{
    sim_disk *d = ctx;
    if (fail_now(d))
        return -EIO;
    int k = names_find(&d->cur, from);
    if (k < 0)
        return -ENOENT;
    if (strlen(to) >= NAME_CAP)
        return -ENAMETOOLONG;
    int ino = d->cur.v[k].ino;
    names_del(&d->cur, from);
    names_set(&d->cur, to, ino);
    pend_name(d, OP_RENAME, from, to, ino);
    return 0;
}

static int sd_unlink(void *ctx, const char *path)
{
    sim_disk *d = ctx;
    if (fail_now(d))
        return -EIO;
    if (names_find(&d->cur, path) < 0)
        return -ENOENT;
    names_del(&d->cur, path);
    pend_name(d, OP_UNLINK, path, NULL, -1);
    return 0;
}

static int sd_mkdir(void *ctx, const char *path)
{
    return 0; /* directories are implicit in full path names */
}

static int sd_sync_dir(void *ctx, const char *dir)
{
    sim_disk *d = ctx;
    if (fail_now(d))
        return -EIO;
    size_t k = 0;
    for (size_t i = 0; i < d->n_pend; i++) {
        name_op *o = &d->pend[i];
        if (in_dir(o->a, dir) && (o->op != OP_RENAME || in_dir(o->b, dir)))
            name_op_apply(&d->dur, o);
        else
            d->pend[k++] = *o;
    }
    d->n_pend = k;
    d->syncs++;
    return 0;
}

static int sd_list_dir(void *ctx, const char *dir, int (*cb)(void *arg, const char *name),
                       void *arg)
{
    sim_disk *d = ctx;
    if (fail_now(d))
        return -EIO;
    /* snapshot the names first: the callback may unlink */
    size_t n = d->cur.n;
    char(*list)[NAME_CAP] = xrealloc(NULL, n * NAME_CAP);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (in_dir(d->cur.v[i].path, dir))
            snprintf(list[m++], NAME_CAP, "%s", d->cur.v[i].path + strlen(dir) + 1);
    int rc = 0;
    for (size_t i = 0; i < m && rc == 0; i++)
        rc = cb(arg, list[i]);
    free(list);
    return rc;
}

/* ---------------------------------------------------------------- lifecycle */

sim_disk *sim_disk_new(void)
{
    sim_disk *d = calloc(1, sizeof(*d));
    if (!d)
        abort();
    for (int i = 0; i < MAX_FDS; i++)
        d->fds[i] = -1;
    return d;
}

void sim_disk_free(sim_disk *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n_inodes; i++) {
        inode *n = d->inodes[i];
        for (size_t k = 0; k < n->n_pend; k++)
            free(n->pend[k].data);
        free(n->pend);
        free(n->cur);
        free(n->dur);
        free(n);
    }
    free(d->inodes);
    free(d->cur.v);
    free(d->dur.v);
    free(d->pend);
    free(d);
}

void sim_disk_fs(sim_disk *d, wal_fs *fs)
{
    *fs = (wal_fs){.ctx = d,
                   .open = sd_open,
                   .close = sd_close,
                   .pread = sd_pread,
                   .pwrite = sd_pwrite,
                   .fdatasync = sd_fdatasync,
                   .size = sd_size,
                   .allocate = sd_allocate,
                   .rename = sd_rename,
                   .unlink = sd_unlink,
                   .mkdir = sd_mkdir,
                   .sync_dir = sd_sync_dir,
                   .list_dir = sd_list_dir};
}

void sim_disk_fail_after(sim_disk *d, uint32_t ops)
{
    d->fail_at = d->ops + ops + 1;
}

int sim_disk_failed(const sim_disk *d)
{
    return d->failed;
}

uint64_t sim_disk_syncs(const sim_disk *d)
{
    return d->syncs;
}

void sim_disk_crash(sim_disk *d, uint64_t (*rng)(void *), void *rc)
{
    /* names: synced ones plus a random prefix of the rest (journaled metadata) */
    size_t keep = d->n_pend ? (size_t)(rng(rc) % (d->n_pend + 1)) : 0;
    for (size_t i = 0; i < keep; i++)
        name_op_apply(&d->dur, &d->pend[i]);
    d->n_pend = 0;
    d->cur.v = xrealloc(d->cur.v, d->dur.n * sizeof(*d->cur.v));
    if (d->dur.n)
        memcpy(d->cur.v, d->dur.v, d->dur.n * sizeof(*d->cur.v));
    d->cur.n = d->dur.n;
    /* data: synced content plus, per unsynced write, nothing / all / torn sectors */
    for (size_t i = 0; i < d->n_inodes; i++) {
        inode *n = d->inodes[i];
        for (size_t k = 0; k < n->n_pend; k++) {
            pwrite_op *w = &n->pend[k];
            uint64_t mode = rng(rc) % 4; /* 0 lost, 1 whole, 2-3 torn */
            if (!w->data) {
                if (mode)
                    grow(&n->dur, &n->dur_len, (size_t)w->off);
            } else if (mode == 1) {
                grow(&n->dur, &n->dur_len, (size_t)w->off + w->len);
                memcpy(n->dur + w->off, w->data, w->len);
            } else if (mode >= 2) {
                for (size_t s = 0; s < w->len; s += SECTOR) {
                    if (rng(rc) % 2)
                        continue;
                    size_t l = w->len - s < SECTOR ? w->len - s : SECTOR;
                    grow(&n->dur, &n->dur_len, (size_t)w->off + s + l);
                    memcpy(n->dur + w->off + s, w->data + s, l);
                }
            }
            free(w->data);
        }
        n->n_pend = 0;
        n->cur = xrealloc(n->cur, n->dur_len);
        if (n->dur_len)
            memcpy(n->cur, n->dur, n->dur_len);
        n->cur_len = n->dur_len;
    }
    for (int i = 0; i < MAX_FDS; i++)
        d->fds[i] = -1;
    d->fail_at = 0;
    d->failed = 0;
}
