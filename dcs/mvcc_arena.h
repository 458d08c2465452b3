/* A bump allocator for request and response trees (parsed JSON requests, decoded store
 * commands, apply results). Everything one request needs is freed at once, so nested txn
 * responses need no recursive free, and a bound on the arena bounds one request's memory. */
#ifndef APPLIANCE_DCS_MVCC_ARENA_H
#define APPLIANCE_DCS_MVCC_ARENA_H

#include <stddef.h>

typedef struct mvcc_arena_block mvcc_arena_block;
typedef struct mvcc_arena {
    mvcc_arena_block *head;
    size_t used;  /* bytes handed out, for the limit */
    size_t limit; /* 0 = 64 MiB default */
} mvcc_arena;

void mvcc_arena_init(mvcc_arena *a, size_t limit);
/* Zeroed, 16-byte aligned memory; NULL when the limit is reached or malloc fails. */
void *mvcc_arena_alloc(mvcc_arena *a, size_t n);
/* Copy of n bytes (plus a NUL for convenience); NULL on failure. */
void *mvcc_arena_dup(mvcc_arena *a, const void *p, size_t n);
void mvcc_arena_free(mvcc_arena *a);

#endif
