/* One epoll event loop per daemon: file descriptors and one-shot timers on the monotonic
 * clock. Single-threaded; callbacks run on the loop's thread and may add, modify or
 * remove any fd or timer, including their own. */
#ifndef APPLIANCE_EVLOOP_H
#define APPLIANCE_EVLOOP_H

#include <stdint.h>
#include <sys/epoll.h>

typedef struct evloop evloop;
typedef struct ev_timer ev_timer;

/* events: the EPOLLIN/EPOLLOUT/EPOLLERR/EPOLLHUP/EPOLLRDHUP bits that fired. */
typedef void (*ev_io_cb)(evloop *loop, int fd, uint32_t events, void *arg);
typedef void (*ev_timer_cb)(evloop *loop, void *arg);

evloop *evloop_new(void);
/* Closes nothing the caller registered; frees pending timers. */
void evloop_free(evloop *loop);

/* events: EPOLLIN, EPOLLOUT, EPOLLRDHUP, EPOLLET ... Returns 0, or -1 with errno. */
int evloop_add_fd(evloop *loop, int fd, uint32_t events, ev_io_cb cb, void *arg);
int evloop_mod_fd(evloop *loop, int fd, uint32_t events);
/* Safe from inside any callback, also for an fd whose event is still pending this turn. */
int evloop_del_fd(evloop *loop, int fd);

/* One-shot timer firing after delay_ms. Returns NULL only on allocation failure. The
 * handle is valid until the callback starts or evloop_timer_cancel() is called. */
ev_timer *evloop_timer_start(evloop *loop, uint64_t delay_ms, ev_timer_cb cb, void *arg);
void evloop_timer_cancel(evloop *loop, ev_timer *timer);

/* Monotonic milliseconds, refreshed once per loop turn (cheap to call). */
uint64_t evloop_now_ms(const evloop *loop);
/* Reads the clock now and refreshes the cached value. */
uint64_t evloop_update_now(evloop *loop);

/* Runs until evloop_stop(); returns 0, or -1 with errno if epoll_wait fails for good. */
int evloop_run(evloop *loop);
/* Runs at most one turn, waiting up to timeout_ms (-1: until an event or timer). */
int evloop_run_once(evloop *loop, int timeout_ms);
void evloop_stop(evloop *loop);

#endif
