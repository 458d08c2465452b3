/* Bump allocator: blocks of at least 16 KiB, each allocation zeroed. */
#include "dcs/mvcc_arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct mvcc_arena_block {
    mvcc_arena_block *next;
    size_t size, off;
    _Alignas(16) unsigned char data[];
};

#define ARENA_BLOCK_MIN   16384
#define ARENA_DEFAULT_MAX (64u << 20)

void mvcc_arena_init(mvcc_arena *a, size_t limit)
{
    a->head = NULL;
    a->used = 0;
    a->limit = limit ? limit : ARENA_DEFAULT_MAX;
}

void *mvcc_arena_alloc(mvcc_arena *a, size_t n)
{
    size_t need = (n + 15) & ~(size_t)15;
    if (need < n || need > a->limit - a->used || a->used > a->limit)
        return NULL;
    mvcc_arena_block *b = a->head;
    if (!b || b->size - b->off < need) {
        size_t sz = need > ARENA_BLOCK_MIN ? need : ARENA_BLOCK_MIN;
        b = malloc(sizeof(*b) + sz);
        if (!b)
            return NULL;
        b->size = sz;
        b->off = 0;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->off;
    b->off += need;
    a->used += need;
    memset(p, 0, need);
    return p;
}

void *mvcc_arena_dup(mvcc_arena *a, const void *p, size_t n)
{
    unsigned char *d = mvcc_arena_alloc(a, n + 1);
    if (d && n)
        memcpy(d, p, n);
    return d;
}

void mvcc_arena_free(mvcc_arena *a)
{
    mvcc_arena_block *b = a->head;
    while (b) {
        mvcc_arena_block *n = b->next;
        free(b);
        b = n;
    }
    a->head = NULL;
    a->used = 0;
}
