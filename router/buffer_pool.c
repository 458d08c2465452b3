/* Free lists of transfer buffers and pipes, bounded. */
#include "router/buffer_pool.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

void buffer_pool_init(buffer_pool *p, size_t buf_size, size_t keep)
{
    p->buf_size = buf_size;
    p->keep = keep;
    p->free_bufs = NULL;
    p->free_pipes = NULL;
    p->n_free_bufs = p->n_used_bufs = 0;
    p->n_free_pipes = p->n_used_pipes = 0;
}

static void drop_free_bufs(buffer_pool *p)
{
    while (p->free_bufs) {
        pool_buf *b = p->free_bufs;
        p->free_bufs = b->next;
        free(b);
    }
    p->n_free_bufs = 0;
}

void buffer_pool_destroy(buffer_pool *p)
{
    drop_free_bufs(p);
    while (p->free_pipes) {
        pool_pipe *pp = p->free_pipes;
        p->free_pipes = pp->next;
        close(pp->fd[0]);
        close(pp->fd[1]);
        free(pp);
    }
    p->n_free_pipes = 0;
}

void buffer_pool_resize(buffer_pool *p, size_t buf_size)
{
    /* Buffers in use keep their size; the proxy records the size it got with each one. */
    if (buf_size != p->buf_size)
        drop_free_bufs(p);
    p->buf_size = buf_size;
}

pool_buf *buffer_pool_get(buffer_pool *p)
{
    pool_buf *b = p->free_bufs;
    if (b) {
        p->free_bufs = b->next;
        p->n_free_bufs--;
    } else {
        b = malloc(sizeof(*b) + p->buf_size);
        if (!b)
            return NULL;
        b->size = p->buf_size;
    }
    b->next = NULL;
    p->n_used_bufs++;
    return b;
}

void buffer_pool_put(buffer_pool *p, pool_buf *b)
{
    p->n_used_bufs--;
    if (p->n_free_bufs >= p->keep || b->size != p->buf_size) {
        free(b);
        return;
    }
    b->next = p->free_bufs;
    p->free_bufs = b;
    p->n_free_bufs++;
}

pool_pipe *buffer_pool_get_pipe(buffer_pool *p)
{
    pool_pipe *pp = p->free_pipes;
    if (pp) {
        p->free_pipes = pp->next;
        p->n_free_pipes--;
    } else {
        pp = malloc(sizeof(*pp));
        if (!pp)
            return NULL;
        if (pipe2(pp->fd, O_NONBLOCK | O_CLOEXEC) < 0) {
            free(pp);
            return NULL;
        }
    }
    pp->next = NULL;
    p->n_used_pipes++;
    return pp;
}

void buffer_pool_drop_pipe(buffer_pool *p, pool_pipe *pp)
{
    p->n_used_pipes--;
    close(pp->fd[0]);
    close(pp->fd[1]);
    free(pp);
}

void buffer_pool_put_pipe(buffer_pool *p, pool_pipe *pp)
{
    if (p->n_free_pipes >= p->keep) {
        buffer_pool_drop_pipe(p, pp);
        return;
    }
    p->n_used_pipes--;
    pp->next = p->free_pipes;
    p->free_pipes = pp;
    p->n_free_pipes++;
}
