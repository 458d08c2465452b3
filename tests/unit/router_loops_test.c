/* Two proxying loops under the sanitizers: the extra loop takes its share of SO_REUSEPORT
 * clients, follows the main loop's routing table (a withdrawn write target loses its
 * sessions in every loop), 8404's merged view adds every loop's counters, and stopping
 * the loops frees everything. The backends are plain listening sockets the test accepts
 * from (the bytes are not echoed: only connects and closes matter here).
 * Addresses: 127.0.30.0/24 (this component's test range), ports 251xx. */
#include "check.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "evloop.h"
#include "router/core.h"
#include "router/loops.h"
#include "router/proxy.h"

enum { NCLIENTS = 24, PORT_LSN = 25100, PORT_BE = 25132 };

static router R;
static evloop *loop;

static int listen_on(const char *ip, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, ip, &a.sin_addr);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 128) < 0) {
        printf("# listen %s:%d: %s\n", ip, port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static int connect_to(const char *ip, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, ip, &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Turns the main loop and accepts what reached the backend, until want or 3 s. */
static int pump_accept(int lfd, int *accepted, int n, int want)
{
    for (int i = 0; i < 300 && n < want; i++) {
        evloop_run_once(loop, 10);
        int fd;
        while ((fd = accept(lfd, NULL, NULL)) >= 0)
            accepted[n++] = fd;
    }
    return n;
}

static router *view(void)
{
    return R.stats_view ? R.stats_view(&R, R.stats_view_arg) : NULL;
}

TEST(two_loops_share_clients_follow_the_target_and_add_up)
{
    router_config c;
    router_config_defaults(&c);
    snprintf(c.listen_primary, sizeof(c.listen_primary), "127.0.30.3:%d", PORT_LSN);
    c.listen_replicas[0] = '\0';
    c.listen_stats[0] = '\0';
    c.reuseport = 1;
    c.hold_ms = 0;
    c.n_backends = 2;
    for (int i = 0; i < 2; i++) {
        snprintf(c.backends[i].name, sizeof(c.backends[i].name), "pg-%d", i);
        snprintf(c.backends[i].host, sizeof(c.backends[i].host), "127.0.30.%d", 20 + i);
        c.backends[i].port = PORT_BE;
        c.backends[i].check_port = 28008;
    }
    int be0 = listen_on("127.0.30.20", PORT_BE);
    int be1 = listen_on("127.0.30.21", PORT_BE);
    CHECK(be0 >= 0 && be1 >= 0);
    loop = evloop_new();
    char err[ROUTER_ERR_MAX] = "";
    CHECK_EQ_INT(router_init(&R, loop, &c, err, sizeof(err)), 0);
    R.backends[0]->primary_chk.up = 1;
    proxy_targets_changed(&R);
    CHECK(R.write_target == R.backends[0]);

    router_loops *L = router_loops_start(&R, 1, err, sizeof(err));
    if (!L)
        printf("# %s\n", err);
    CHECK(L != NULL);

    int cl[NCLIENTS], srv[NCLIENTS];
    for (int i = 0; i < NCLIENTS; i++) {
        cl[i] = connect_to("127.0.30.3", PORT_LSN);
        CHECK(cl[i] >= 0);
        CHECK(send(cl[i], "x", 1, 0) == 1); /* the first byte starts the backend connect */
    }
    int n = pump_accept(be0, srv, 0, NCLIENTS);
    CHECK_EQ_INT(n, NCLIENTS);

    /* Merged counters: every session, split over both loops (snapshots every 100 ms). */
    router *v = NULL;
    for (int i = 0; i < 100; i++) {
        free(v);
        v = view();
        if (v && v->sessions_total_cur == NCLIENTS &&
            v->backends[0]->st[LSN_PRIMARY].stot == NCLIENTS)
            break;
        evloop_run_once(loop, 20);
    }
    CHECK(v != NULL);
    if (v) {
        CHECK_EQ_INT((int)v->n_loops, 2);
        CHECK_EQ_INT((int)v->sessions_total_cur, NCLIENTS);
        CHECK_EQ_INT((int)v->backends[0]->st[LSN_PRIMARY].stot, NCLIENTS);
        CHECK_EQ_INT((int)(v->loop_stot[0] + v->loop_stot[1]), NCLIENTS);
        /* SO_REUSEPORT hashes each 4-tuple: 24 clients all in one loop has odds 2^-23 */
        CHECK(v->loop_stot[0] > 0 && v->loop_stot[1] > 0);
        printf("# sessions per loop: %llu + %llu\n", (unsigned long long)v->loop_stot[0],
               (unsigned long long)v->loop_stot[1]);
    }
    free(v);

    /* The write target moves: sessions to pg-0 end in both loops; new clients go to pg-1. */
    R.backends[0]->primary_chk.up = 0;
    R.backends[1]->primary_chk.up = 1;
    proxy_targets_changed(&R);
    CHECK(R.write_target == R.backends[1]);
    int closed = 0;
    for (int round = 0; round < 300 && closed < NCLIENTS; round++) {
        evloop_run_once(loop, 10);
        closed = 0;
        for (int i = 0; i < NCLIENTS; i++) {
            struct pollfd p = {.fd = cl[i], .events = POLLIN};
            char b[8];
            closed += poll(&p, 1, 0) == 1 && recv(cl[i], b, sizeof(b), MSG_PEEK) <= 0;
        }
    }
    CHECK_EQ_INT(closed, NCLIENTS);
    int fresh[4], got1[4];
    for (int i = 0; i < 4; i++) {
        fresh[i] = connect_to("127.0.30.3", PORT_LSN);
        CHECK(fresh[i] >= 0 && send(fresh[i], "y", 1, 0) == 1);
    }
    CHECK_EQ_INT(pump_accept(be1, got1, 0, 4), 4);

    router_loops_stop(L);
    for (int i = 0; i < NCLIENTS; i++) {
        close(cl[i]);
        close(srv[i]);
    }
    for (int i = 0; i < 4; i++) {
        close(fresh[i]);
        close(got1[i]);
    }
    router_destroy(&R);
    close(be0);
    close(be1);
    evloop_free(loop);
}

int main(void)
{
    RUN(two_loops_share_clients_follow_the_target_and_add_up);
    return check_done();
}
