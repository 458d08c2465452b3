/* epoll event loop with a binary min-heap of one-shot timers. */
#include "evloop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EVLOOP_MAX_EVENTS 64

struct ev_timer {
    uint64_t due_ms;
    uint64_t seq; /* ties broken by start order, so equal deadlines fire FIFO */
    size_t heap_index;
    ev_timer_cb cb;
    void *arg;
};

struct fd_slot {
    ev_io_cb cb;
    void *arg;
    /* Bumped on every add/del: an event already fetched for an fd that a callback removed
     * (and maybe re-added) this turn is recognised as stale and dropped. */
    uint32_t generation;
    int active;
};

struct evloop {
    int epfd;
    int stopping;
    uint64_t now_ms;
    uint64_t timer_seq;
    struct fd_slot *slots;
    size_t nslots;
    ev_timer **heap;
    size_t heap_len, heap_cap;
};

static uint64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

evloop *evloop_new(void)
{
    evloop *loop = calloc(1, sizeof(*loop));
    if (!loop)
        return NULL;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0) {
        free(loop);
        return NULL;
    }
    loop->now_ms = monotonic_ms();
    return loop;
}

void evloop_free(evloop *loop)
{
    if (!loop)
        return;
    for (size_t i = 0; i < loop->heap_len; i++)
        free(loop->heap[i]);
    free(loop->heap);
    free(loop->slots);
    close(loop->epfd);
    free(loop);
}

static struct fd_slot *slot_for(evloop *loop, int fd)
{
    if (fd < 0)
        return NULL;
    if ((size_t)fd >= loop->nslots) {
        size_t n = loop->nslots ? loop->nslots : 64;
        while (n <= (size_t)fd)
            n *= 2;
        struct fd_slot *s = realloc(loop->slots, n * sizeof(*s));
        if (!s)
            return NULL;
        memset(s + loop->nslots, 0, (n - loop->nslots) * sizeof(*s));
        loop->slots = s;
        loop->nslots = n;
    }
    return &loop->slots[fd];
}

static uint64_t pack(int fd, uint32_t generation)
{
    return (uint64_t)(uint32_t)fd | ((uint64_t)generation << 32);
}

int evloop_add_fd(evloop *loop, int fd, uint32_t events, ev_io_cb cb, void *arg)
{
    struct fd_slot *s = slot_for(loop, fd);
    if (!s) {
        errno = fd < 0 ? EBADF : ENOMEM;
        return -1;
    }
    if (s->active) {
        errno = EEXIST;
        return -1;
    }
    s->generation++;
    struct epoll_event ev = {.events = events, .data.u64 = pack(fd, s->generation)};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return -1;
    s->cb = cb;
    s->arg = arg;
    s->active = 1;
    return 0;
}

int evloop_mod_fd(evloop *loop, int fd, uint32_t events)
{
    if (fd < 0 || (size_t)fd >= loop->nslots || !loop->slots[fd].active) {
        errno = ENOENT;
        return -1;
    }
    struct epoll_event ev = {.events = events, .data.u64 = pack(fd, loop->slots[fd].generation)};
    return epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev);
}

int evloop_del_fd(evloop *loop, int fd)
{
    if (fd < 0 || (size_t)fd >= loop->nslots || !loop->slots[fd].active) {
        errno = ENOENT;
        return -1;
    }
    struct fd_slot *s = &loop->slots[fd];
    s->active = 0;
    s->generation++;
    s->cb = NULL;
    s->arg = NULL;
    /* The fd may already be closed by the caller; the registration is gone then anyway. */
    if (epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL) < 0 && errno != EBADF && errno != ENOENT)
        return -1;
    return 0;
}

/* ---- timer heap ---- */

static int timer_before(const ev_timer *a, const ev_timer *b)
{
    return a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->seq < b->seq);
}

static void heap_set(evloop *loop, size_t i, ev_timer *t)
{
    loop->heap[i] = t;
    t->heap_index = i;
}

static void heap_sift_up(evloop *loop, size_t i)
{
    ev_timer *t = loop->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!timer_before(t, loop->heap[parent]))
            break;
        heap_set(loop, i, loop->heap[parent]);
        i = parent;
    }
    heap_set(loop, i, t);
}

static void heap_sift_down(evloop *loop, size_t i)
{
    ev_timer *t = loop->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= loop->heap_len)
            break;
        if (child + 1 < loop->heap_len && timer_before(loop->heap[child + 1], loop->heap[child]))
            child++;
        if (!timer_before(loop->heap[child], t))
            break;
        heap_set(loop, i, loop->heap[child]);
        i = child;
    }
    heap_set(loop, i, t);
}

static void heap_remove(evloop *loop, size_t i)
{
    loop->heap_len--;
    if (i == loop->heap_len)
        return;
    heap_set(loop, i, loop->heap[loop->heap_len]);
    heap_sift_down(loop, i);
    heap_sift_up(loop, loop->heap[i]->heap_index);
}

ev_timer *evloop_timer_start(evloop *loop, uint64_t delay_ms, ev_timer_cb cb, void *arg)
{
    if (loop->heap_len == loop->heap_cap) {
        size_t n = loop->heap_cap ? loop->heap_cap * 2 : 16;
        ev_timer **h = realloc(loop->heap, n * sizeof(ev_timer *));
        if (!h)
            return NULL;
        loop->heap = h;
        loop->heap_cap = n;
    }
    ev_timer *t = malloc(sizeof(*t));
    if (!t)
        return NULL;
    t->due_ms = loop->now_ms + delay_ms;
    t->seq = loop->timer_seq++;
    t->cb = cb;
    t->arg = arg;
    heap_set(loop, loop->heap_len++, t);
    heap_sift_up(loop, t->heap_index);
    return t;
}

void evloop_timer_cancel(evloop *loop, ev_timer *timer)
{
    if (!timer)
        return;
    heap_remove(loop, timer->heap_index);
    free(timer);
}

uint64_t evloop_now_ms(const evloop *loop)
{
    return loop->now_ms;
}

uint64_t evloop_update_now(evloop *loop)
{
    loop->now_ms = monotonic_ms();
    return loop->now_ms;
}

static void run_due_timers(evloop *loop)
{
    /* Only timers due at the start of this pass fire; ones a callback adds with delay 0
     * wait for the next turn, so a timer re-arming itself cannot starve the fds. */
    uint64_t now = loop->now_ms;
    uint64_t seq_limit = loop->timer_seq;
    while (loop->heap_len > 0) {
        ev_timer *t = loop->heap[0];
        if (t->due_ms > now || t->seq >= seq_limit)
            break;
        heap_remove(loop, 0);
        ev_timer_cb cb = t->cb;
        void *arg = t->arg;
        free(t);
        cb(loop, arg);
    }
}

int evloop_run_once(evloop *loop, int timeout_ms)
{
    evloop_update_now(loop);
    if (loop->heap_len > 0) {
        uint64_t due = loop->heap[0]->due_ms;
        int until = due <= loop->now_ms
                        ? 0
                        : (int)(due - loop->now_ms > 86400000u ? 86400000u : due - loop->now_ms);
        if (timeout_ms < 0 || until < timeout_ms)
            timeout_ms = until;
    }
    struct epoll_event events[EVLOOP_MAX_EVENTS];
    int n = epoll_wait(loop->epfd, events, EVLOOP_MAX_EVENTS, timeout_ms);
    if (n < 0) {
        if (errno == EINTR)
            n = 0;
        else
            return -1;
    }
    evloop_update_now(loop);
    for (int i = 0; i < n; i++) {
        int fd = (int)(uint32_t)events[i].data.u64;
        uint32_t generation = (uint32_t)(events[i].data.u64 >> 32);
        if ((size_t)fd >= loop->nslots)
            continue;
        struct fd_slot *s = &loop->slots[fd];
        if (!s->active || s->generation != generation)
            continue;
        s->cb(loop, fd, events[i].events, s->arg);
    }
    run_due_timers(loop);
    return 0;
}

int evloop_run(evloop *loop)
{
    loop->stopping = 0;
    while (!loop->stopping) {
        if (evloop_run_once(loop, -1) < 0)
            return -1;
    }
    return 0;
}

void evloop_stop(evloop *loop)
{
    loop->stopping = 1;
}
