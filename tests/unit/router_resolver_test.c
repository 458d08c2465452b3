/* The resolver thread: lookups filed from the loop come back on the loop through the
 * eventfd; a key already in flight is not filed twice; a backend with a name gets its
 * address asynchronously (backend_resolve answers -1 at once, the address arrives later).
 * Names: "localhost" from /etc/hosts only (no DNS traffic); failing and hanging lookups
 * are tested against a test name server in tests/integration/router/slow_dns.t. */
#include "check.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "evloop.h"
#include "router/backend.h"
#include "router/core.h"
#include "router/resolver.h"

static resolver_result got[8];
static int ngot;

static void collect(const resolver_result *res, void *arg)
{
    (void)arg;
    if (ngot < 8)
        got[ngot++] = *res;
}

static void run_until(evloop *loop, int *counter, int want)
{
    for (int i = 0; i < 1000 && *counter < want; i++)
        evloop_run_once(loop, 20);
}

TEST(lookups_come_back_on_the_loop)
{
    evloop *loop = evloop_new();
    resolver *rs = resolver_new(loop, collect, NULL);
    CHECK(rs != NULL);
    ngot = 0;
    CHECK_EQ_INT(resolver_submit(rs, "a", "localhost", 25432), 1);
    /* Same key while in flight: not filed again (unless it already finished). */
    int again = resolver_submit(rs, "a", "localhost", 25432);
    CHECK(again == 0 || again == 1);
    CHECK_EQ_INT(resolver_submit(rs, "b", "127.0.30.12", 25433), 1);
    run_until(loop, &ngot, again == 1 ? 3 : 2);
    CHECK_EQ_INT(ngot, again == 1 ? 3 : 2);
    int seen_a = 0, seen_b = 0;
    for (int i = 0; i < ngot; i++) {
        CHECK_EQ_INT(got[i].gai_rc, 0);
        CHECK(got[i].addrlen > 0);
        if (strcmp(got[i].key, "b") == 0) {
            seen_b = 1;
            char ip[32];
            inet_ntop(AF_INET, &((struct sockaddr_in *)&got[i].addr)->sin_addr, ip, sizeof(ip));
            CHECK_STR(ip, "127.0.30.12");
            CHECK_EQ_INT(ntohs(((struct sockaddr_in *)&got[i].addr)->sin_port), 25433);
        } else {
            seen_a = 1;
            CHECK_STR(got[i].host, "localhost");
        }
    }
    CHECK(seen_a && seen_b);
    CHECK_EQ_INT((int)resolver_pending(rs), 0);
    resolver_free(rs);
    evloop_free(loop);
}

TEST(backend_names_resolve_asynchronously)
{
    static router R;
    evloop *loop = evloop_new();
    router_config cfg;
    router_config_defaults(&cfg);
    snprintf(cfg.listen_primary, sizeof(cfg.listen_primary), "127.0.30.2:25000");
    cfg.listen_replicas[0] = '\0';
    cfg.n_backends = 2;
    /* a numeric one next to it: parsed in place, never filed */
    memset(cfg.backends, 0, sizeof(cfg.backends));
    snprintf(cfg.backends[0].name, ROUTER_NAME_MAX, "named");
    snprintf(cfg.backends[0].host, ROUTER_HOST_MAX, "localhost");
    snprintf(cfg.backends[1].name, ROUTER_NAME_MAX, "numeric");
    snprintf(cfg.backends[1].host, ROUTER_HOST_MAX, "127.0.30.13");
    for (int i = 0; i < 2; i++) {
        cfg.backends[i].port = 25432;
        cfg.backends[i].check_port = 28008;
    }
    memset(&R, 0, sizeof(R));
    R.resolver = resolver_new(loop, backend_resolved, &R);
    CHECK(R.resolver != NULL);
    char err[ROUTER_ERR_MAX] = "";
    CHECK_EQ_INT(router_init(&R, loop, &cfg, err, sizeof(err)), 0);
    backend *named = router_find_backend(&R, "named");
    backend *numeric = router_find_backend(&R, "numeric");
    CHECK(named && numeric);
    CHECK_EQ_INT((int)named->addrlen, 0); /* filed, not answered inline */
    CHECK(numeric->addrlen > 0);
    for (int i = 0; i < 500 && !named->addrlen; i++)
        evloop_run_once(loop, 20);
    CHECK(named->addrlen > 0);
    CHECK_EQ_INT(named->resolve_failed, 0);
    CHECK_EQ_INT(ntohs(((struct sockaddr_in *)&named->addr)->sin_port), 25432);
    router_destroy(&R);
    resolver_free(R.resolver);
    evloop_free(loop);
}

int main(void)
{
    RUN(lookups_come_back_on_the_loop);
    RUN(backend_names_resolve_asynchronously);
    return check_done();
}
