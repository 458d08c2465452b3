/* evloop: timer order, cancellation, fd dispatch, and removal of an fd whose event is
 * pending in the same turn. */
#include "check.h"
#include "evloop.h"

#include <unistd.h>

static int order[8], norder;

static void record(evloop *loop, void *arg)
{
    (void)loop;
    order[norder++] = (int)(long)arg;
}

TEST(timers_fire_in_deadline_then_start_order)
{
    evloop *loop = evloop_new();
    norder = 0;
    evloop_timer_start(loop, 20, record, (void *)3L);
    evloop_timer_start(loop, 0, record, (void *)1L);
    evloop_timer_start(loop, 0, record, (void *)2L);
    ev_timer *cancelled = evloop_timer_start(loop, 5, record, (void *)9L);
    evloop_timer_cancel(loop, cancelled);
    uint64_t start = evloop_update_now(loop);
    while (norder < 3)
        CHECK(evloop_run_once(loop, 1000) == 0);
    CHECK_EQ_INT(order[0], 1);
    CHECK_EQ_INT(order[1], 2);
    CHECK_EQ_INT(order[2], 3);
    CHECK(evloop_now_ms(loop) - start >= 20);
    evloop_free(loop);
}

struct pair {
    int fds[2][2];
    int fired[2];
};

static void on_read(evloop *loop, int fd, uint32_t events, void *arg)
{
    struct pair *p = arg;
    int which = fd == p->fds[0][0] ? 0 : 1;
    p->fired[which]++;
    char c;
    CHECK(read(fd, &c, 1) == 1);
    /* The first to fire removes the other, whose event is already pending. */
    int other = p->fds[!which][0];
    evloop_del_fd(loop, other);
    (void)events;
}

TEST(removing_fd_with_pending_event_drops_it)
{
    evloop *loop = evloop_new();
    struct pair p = {0};
    CHECK(pipe(p.fds[0]) == 0 && pipe(p.fds[1]) == 0);
    CHECK(evloop_add_fd(loop, p.fds[0][0], EPOLLIN, on_read, &p) == 0);
    CHECK(evloop_add_fd(loop, p.fds[1][0], EPOLLIN, on_read, &p) == 0);
    CHECK(write(p.fds[0][1], "x", 1) == 1 && write(p.fds[1][1], "y", 1) == 1);
    CHECK(evloop_run_once(loop, 1000) == 0);
    CHECK_EQ_INT(p.fired[0] + p.fired[1], 1);
    CHECK(evloop_add_fd(loop, p.fds[0][0], EPOLLIN, on_read, &p) == 0 || p.fired[0] == 1);
    for (int i = 0; i < 2; i++) {
        close(p.fds[i][0]);
        close(p.fds[i][1]);
    }
    evloop_free(loop);
}

int main(void)
{
    RUN(timers_fire_in_deadline_then_start_order);
    RUN(removing_fd_with_pending_event_drops_it);
    return check_done();
}
