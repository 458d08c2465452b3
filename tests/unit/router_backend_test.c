/* Backend addresses: numeric hosts never touch the resolver; names are resolved at run
 * time (compose DNS), at most once a second per backend, and again after a reload that
 * changes them. Uses the name "localhost" from /etc/hosts only (no DNS traffic). */
#include "check.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "evloop.h"
#include "router/backend.h"
#include "router/core.h"

static router R;

static router_backend_conf conf(const char *name, const char *host)
{
    router_backend_conf c;
    memset(&c, 0, sizeof(c));
    snprintf(c.name, sizeof(c.name), "%s", name);
    snprintf(c.host, sizeof(c.host), "%s", host);
    c.port = 25432;
    c.check_port = 28008;
    return c;
}

TEST(numeric_and_named_hosts_resolve)
{
    memset(&R, 0, sizeof(R));
    R.loop = evloop_new();
    router_backend_conf c = conf("a", "127.0.30.10");
    backend *b = backend_new(&R, &c);
    CHECK(b != NULL);
    CHECK(b->addrlen == sizeof(struct sockaddr_in));
    struct sockaddr_in *sin = (struct sockaddr_in *)&b->addr;
    CHECK_EQ_INT(ntohs(sin->sin_port), 25432);
    char ip[32];
    inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
    CHECK_STR(ip, "127.0.30.10");
    backend_free(b);

    c = conf("b", "localhost");
    b = backend_new(&R, &c);
    CHECK(b != NULL);
    CHECK(b->addrlen > 0);               /* resolved through the name service at run time */
    CHECK(b->resolve_not_before_ms > 0); /* and rate-limited from now on */
    CHECK_EQ_INT(b->resolve_failed, 0);
    /* a second lookup within the second is skipped and keeps the address */
    b->addrlen = 0;
    CHECK(backend_resolve(&R, b) < 0);
    CHECK_EQ_INT(b->addrlen, 0);
    b->resolve_not_before_ms = 0;
    CHECK_EQ_INT(backend_resolve(&R, b), 0);
    CHECK(b->addrlen > 0);
    backend_free(b);
    evloop_free(R.loop);
}

TEST(reload_with_a_new_host_re_resolves)
{
    evloop *loop = evloop_new();
    router_config cfg;
    router_config_defaults(&cfg);
    cfg.listen_primary[0] = cfg.listen_replicas[0] = cfg.listen_stats[0] = '\0';
    snprintf(cfg.listen_primary, sizeof(cfg.listen_primary), "127.0.30.2:25100");
    cfg.n_backends = 1;
    cfg.backends[0] = conf("a", "127.0.30.10");
    char err[256] = "";
    CHECK_EQ_INT(router_init(&R, loop, &cfg, err, sizeof(err)), 0);
    backend *b = R.backends[0];
    cfg.backends[0] = conf("a", "127.0.30.11");
    CHECK_EQ_INT(router_reload(&R, &cfg, err, sizeof(err)), 0);
    CHECK(R.backends[0] == b); /* same object: sessions and counters kept */
    char ip[32];
    inet_ntop(AF_INET, &((struct sockaddr_in *)&b->addr)->sin_addr, ip, sizeof(ip));
    CHECK_STR(ip, "127.0.30.11");
    router_destroy(&R);
    evloop_free(loop);
}

int main(void)
{
    RUN(numeric_and_named_hosts_resolve);
    RUN(reload_with_a_new_host_re_resolves);
    return check_done();
}
