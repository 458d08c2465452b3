/* lib/etcd_client's failover between members while etcd elects a leader: every member
 * answers "etcdserver: no leader" (HTTP 503, gRPC Unavailable) within a millisecond and a
 * killed one refuses connections, for about one election timeout. A call with a 1 s
 * deadline must keep trying until a leader exists instead of using up its tries in a few
 * ms (the soak in bench/agent found exactly that: the agent's keepalive failed at once on
 * every DCS leader kill). Two in-process fake members on 127.0.61.1/.2 plus a closed port
 * on 127.0.61.3; loopback range 127.0.61.0/24 is this test's.
 * test-timeout: 60 */
#include "check.h"
#include "etcd_client.h"
#include "evloop.h"
#include "http.h"
#include "http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static evloop *loop;
static http_server *srv[2];
static http_client *http;
static char ep[3][64];
static uint64_t leader_at; /* monotonic ms from which the members have a leader */
static int requests;       /* answered by the fake members */

static const char no_leader[] = "{\"error\":\"etcdserver: no leader\",\"message\":\"etcdserver: "
                                "no leader\",\"code\":14}";
static const char put_ok[] = "{\"header\":{\"cluster_id\":\"1\",\"member_id\":\"2\","
                             "\"revision\":\"7\",\"raft_term\":\"3\"}}";

static void handler(http_conn *c, const http_request *req, void *arg)
{
    (void)req;
    (void)arg;
    requests++;
    if (evloop_update_now(loop) < leader_at)
        http_respond(c, 503, "application/json", no_leader, sizeof(no_leader) - 1);
    else
        http_respond(c, 200, "application/json", put_ok, sizeof(put_ok) - 1);
}

/* a port on 127.0.61.3 with nothing listening: bind, read the port, close */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.61.3", &a.sin_addr);
    socklen_t l = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &l) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

struct outcome {
    int done, ok;
    uint64_t at;
};

static void on_put(const etcd_result *res, void *arg)
{
    struct outcome *o = arg;
    o->done = 1;
    o->ok = res->ok;
    o->at = evloop_update_now(loop);
    evloop_stop(loop);
}

/* runs one put with the members leaderless for `election_ms`; returns the outcome */
static struct outcome put_during_election(uint64_t election_ms, uint32_t timeout_ms,
                                          uint64_t *started)
{
    const char *eps[3] = {ep[2], ep[0], ep[1]}; /* the dead member first, like after a kill */
    etcd_client *c = etcd_client_new(loop, http, eps, 3);
    struct outcome o = {0};
    *started = evloop_update_now(loop);
    leader_at = *started + election_ms;
    requests = 0;
    if (etcd_put(c, "/k", 2, "v", 1, 0, timeout_ms, on_put, &o) == 0)
        evloop_run(loop);
    etcd_client_free(c);
    return o;
}

TEST(succeeds_when_a_leader_appears_before_the_deadline)
{
    uint64_t t0;
    struct outcome o = put_during_election(600, 1000, &t0);
    CHECK(o.done);
    CHECK(o.ok);
    CHECK(o.at - t0 >= 600);
    CHECK(o.at - t0 < 1000);
    /* paced: a few rounds of two live members, not a tight loop */
    CHECK(requests >= 3);
    CHECK(requests <= 20);
}

TEST(fails_at_the_deadline_not_before)
{
    uint64_t t0;
    struct outcome o = put_during_election(60000u, 800, &t0);
    CHECK(o.done);
    CHECK(!o.ok);
    CHECK(o.at - t0 >= 650);
    CHECK(o.at - t0 <= 1000);
}

static void stop_soon(evloop *l, void *arg)
{
    (void)arg;
    evloop_stop(l);
}

TEST(free_with_a_pause_pending)
{
    const char *eps[3] = {ep[2], ep[0], ep[1]};
    etcd_client *c = etcd_client_new(loop, http, eps, 3);
    struct outcome o = {0};
    leader_at = evloop_update_now(loop) + 60000u;
    CHECK(etcd_put(c, "/k", 2, "v", 1, 0, 5000, on_put, &o) == 0);
    evloop_timer_start(loop, 150, stop_soon, NULL); /* inside a pause between rounds */
    evloop_run(loop);
    etcd_client_free(c); /* ASan: no leak, no use after free of the pause timer */
    CHECK(!o.done);
    ev_timer *t = evloop_timer_start(loop, 300, stop_soon, NULL);
    CHECK(t != NULL);
    evloop_run(loop); /* the cancelled pause must not fire into freed memory */
    CHECK(!o.done);
}

int main(void)
{
    loop = evloop_new();
    http = http_client_new(loop);
    for (int i = 0; i < 2; i++) {
        char host[32];
        snprintf(host, sizeof(host), "127.0.61.%d", i + 1);
        srv[i] = http_server_new(loop, NULL, handler, NULL);
        if (!srv[i] || http_server_listen(srv[i], host, "0") < 0) {
            printf("not ok 1 - fake member listens on %s\n", host);
            return 1;
        }
        snprintf(ep[i], sizeof(ep[i]), "http://%s:%d", host, http_server_bound_port(srv[i]));
    }
    int dead = closed_port();
    if (dead < 0) {
        printf("not ok 1 - a closed port on 127.0.61.3\n");
        return 1;
    }
    snprintf(ep[2], sizeof(ep[2]), "http://127.0.61.3:%d", dead);
    RUN(succeeds_when_a_leader_appears_before_the_deadline);
    RUN(fails_at_the_deadline_not_before);
    RUN(free_with_a_pause_pending);
    http_client_free(http);
    for (int i = 0; i < 2; i++)
        http_server_free(srv[i]);
    evloop_free(loop);
    return check_done();
}
