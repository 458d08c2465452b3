/* Bump allocator: blocks of at least 16 KiB, each allocation zeroed. */
#include "dcs/mvcc_arena.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Cached blocks stay poisoned under ASan, so a use after mvcc_arena_free is still caught. */
#if defined(__SANITIZE_ADDRESS__)
#define ARENA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_ASAN 1
#endif
#endif
#ifdef ARENA_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

struct mvcc_arena_block {
    mvcc_arena_block *next;
    size_t size, off;
    _Alignas(16) unsigned char data[];
};

#define ARENA_BLOCK_MIN   16384
#define ARENA_DEFAULT_MAX (64u << 20)
#define ARENA_CACHE_MAX   64 /* minimum-size blocks kept for reuse: at most 1 MiB */

/* Every request and every applied entry uses an arena; musl hands 16 KiB blocks back to
 * the kernel on free, so each request cost an mmap/munmap/madvise round (≈2 syscalls per
 * put). Minimum-size blocks are kept on a small free list instead (process-wide under a
 * mutex: arenas are used on the loop thread, but nothing forbids another thread). */
static mvcc_arena_block *cache;
static size_t ncache;
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;

static mvcc_arena_block *cache_get(void)
{
    pthread_mutex_lock(&cache_mu);
    mvcc_arena_block *b = cache;
    if (b) {
        UNPOISON(b, sizeof(*b) + ARENA_BLOCK_MIN);
        cache = b->next;
        ncache--;
    }
    pthread_mutex_unlock(&cache_mu);
    return b;
}

/* true when b was kept */
static bool cache_put(mvcc_arena_block *b)
{
    bool kept = false;
    pthread_mutex_lock(&cache_mu);
    if (ncache < ARENA_CACHE_MAX) {
        b->next = cache;
        cache = b;
        ncache++;
        POISON(b->data, ARENA_BLOCK_MIN);
        kept = true;
    }
    pthread_mutex_unlock(&cache_mu);
    return kept;
}

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
        b = sz == ARENA_BLOCK_MIN ? cache_get() : NULL;
        if (!b)
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
        if (b->size != ARENA_BLOCK_MIN || !cache_put(b))
            free(b);
        b = n;
    }
    a->head = NULL;
    a->used = 0;
}
