/* Fixed-size transfer buffers (and, for the splice data path, pipes) handed out while a
 * direction has bytes in flight and returned as soon as it drains, so idle sessions cost
 * no buffer memory. A bounded number of free ones is kept for reuse; the number in use is
 * bounded by the session limit (two directions per session). */
#ifndef APPLIANCE_ROUTER_BUFFER_POOL_H
#define APPLIANCE_ROUTER_BUFFER_POOL_H

#include <stddef.h>
#include <stdint.h>

typedef struct pool_buf {
    struct pool_buf *next; /* free list link */
    size_t size;           /* bytes in data[] */
    char data[];
} pool_buf;

typedef struct pool_pipe {
    struct pool_pipe *next;
    int fd[2]; /* read end, write end */
} pool_pipe;

typedef struct buffer_pool {
    size_t buf_size;
    size_t keep; /* free buffers/pipes kept at most */
    pool_buf *free_bufs;
    size_t n_free_bufs, n_used_bufs;
    pool_pipe *free_pipes;
    size_t n_free_pipes, n_used_pipes;
} buffer_pool;

void buffer_pool_init(buffer_pool *p, size_t buf_size, size_t keep);
/* Frees every free buffer/pipe; buffers still in use must have been returned. */
void buffer_pool_destroy(buffer_pool *p);
/* Changes the size of buffers handed out from now on (reload). */
void buffer_pool_resize(buffer_pool *p, size_t buf_size);

pool_buf *buffer_pool_get(buffer_pool *p); /* NULL: out of memory */
void buffer_pool_put(buffer_pool *p, pool_buf *b);

pool_pipe *buffer_pool_get_pipe(buffer_pool *p); /* NULL: out of fds/memory */
/* A pipe that still holds bytes must not be returned (the caller closes it instead). */
void buffer_pool_put_pipe(buffer_pool *p, pool_pipe *pp);
void buffer_pool_drop_pipe(buffer_pool *p, pool_pipe *pp);

#endif
