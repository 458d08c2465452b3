/* Router configuration: YAML, environment overrides, defaults and the error messages a
 * bad value gets (they must name the key, the value and the line). */
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/config.h"

static const char good[] = "scope: batman\n"
                           "namespace: /service\n"
                           "listen:\n"
                           "  primary: 127.0.30.2:5000\n"
                           "  replicas: 127.0.30.2:5001\n"
                           "  stats: 127.0.30.2:8404\n"
                           "dcs:\n"
                           "  endpoints: [http://127.0.30.1:2379, '127.0.30.3:2379']\n"
                           "checks:\n"
                           "  interval_ms: 500\n"
                           "  replica_path: /replica?lag=16MB\n"
                           "limits: {hold_ms: 1500, max_connections: 20000}\n"
                           "replicas: {fallback_to_primary: false}\n"
                           "data_path: {splice: yes}\n"
                           "backends:\n"
                           "  - {name: pg-0, host: 127.0.30.10, port: 5432, check_port: 8008}\n"
                           "  - name: pg-1\n"
                           "    host: pg-1.example\n"
                           "    port: 5433\n"
                           "    check_port: 8009\n"
                           "    check_host: 127.0.30.11\n"
                           "    noloadbalance: true\n";

TEST(yaml_file_values)
{
    router_config c;
    char err[512] = "";
    router_config_defaults(&c);
    CHECK_EQ_INT(router_config_load_yaml(&c, good, strlen(good), err, sizeof(err)), 0);
    CHECK_EQ_INT(router_config_validate(&c, err, sizeof(err)), 0);
    CHECK_STR(c.scope, "batman");
    CHECK_STR(c.listen_primary, "127.0.30.2:5000");
    CHECK_EQ_INT(c.n_dcs, 2);
    CHECK_STR(c.dcs_endpoints[0], "http://127.0.30.1:2379");
    CHECK_STR(c.dcs_endpoints[1], "http://127.0.30.3:2379");
    CHECK_EQ_INT(c.check_interval_ms, 500);
    CHECK_STR(c.replica_check_path, "/replica?lag=16MB");
    CHECK_EQ_INT(c.hold_ms, 1500);
    CHECK_EQ_INT(c.max_connections, 20000);
    CHECK_EQ_INT(c.replicas_fallback_to_primary, 0);
    CHECK_EQ_INT(c.splice, ROUTER_SPLICE_PIPE); /* "yes": the boolean of earlier versions */
    CHECK_EQ_INT(c.n_backends, 2);
    CHECK_STR(c.backends[1].name, "pg-1");
    CHECK_STR(c.backends[1].host, "pg-1.example");
    CHECK_EQ_INT(c.backends[1].port, 5433);
    CHECK_EQ_INT(c.backends[1].check_port, 8009);
    CHECK_STR(c.backends[1].check_host, "127.0.30.11");
    CHECK_EQ_INT(c.backends[1].noloadbalance, 1);
    /* untouched keys keep their defaults, which beat HAProxy's 3 s x 3 */
    CHECK_EQ_INT(c.check_rise, 2);
    CHECK(c.check_interval_ms * c.check_fall < 3000 * 3);
}

TEST(env_overrides_file)
{
    router_config c;
    char err[512] = "";
    char path[] = "/tmp/router_config_test_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs(good, f);
    fclose(f);
    char *env[] = {
        "ROUTER_CHECKS_INTERVAL_MS=250",
        "ROUTER_DCS_ENDPOINTS=http://127.0.30.1:2379,http://127.0.30.4:2379,127.0.30.5:2379",
        "ROUTER_BACKENDS=a=127.0.30.10:5432:8008,b=127.0.30.11:5432:8008:noloadbalance",
        "ROUTER_LIMITS_SPLICE_TYPO=1", /* unknown ROUTER_* names are ignored */
        "ROUTER_DATA_PATH_SPLICE=sockmap",
        "PATH=/bin",
        NULL};
    int rc = router_config_load(&c, path, env, err, sizeof(err));
    remove(path);
    if (rc)
        printf("# %s\n", err);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(c.check_interval_ms, 250);
    CHECK_EQ_INT(c.n_dcs, 3);
    CHECK_STR(c.dcs_endpoints[2], "http://127.0.30.5:2379");
    CHECK_EQ_INT(c.n_backends, 2);
    CHECK_STR(c.backends[0].name, "a");
    CHECK_EQ_INT(c.backends[1].noloadbalance, 1);
    CHECK_EQ_INT(c.hold_ms, 1500); /* from the file */
    CHECK_EQ_INT(c.splice, ROUTER_SPLICE_SOCKMAP);
}

TEST(data_path_names)
{
    router_config c;
    router_config_defaults(&c);
    CHECK_EQ_INT(c.splice, ROUTER_SPLICE_USERSPACE);
    const char *names[] = {"userspace", "pipe", "sockmap", "auto"};
    for (int i = 0; i < 4; i++) {
        char err[256] = "";
        CHECK_EQ_INT(router_config_set(&c, "data_path.splice", names[i], err, sizeof(err)), 0);
        CHECK_EQ_INT(c.splice, i);
        CHECK_STR(router_splice_name(c.splice), names[i]);
    }
    char err[256] = "";
    CHECK_EQ_INT(router_config_set(&c, "data_path.splice", "false", err, sizeof(err)), 0);
    CHECK_EQ_INT(c.splice, ROUTER_SPLICE_USERSPACE);
    CHECK_EQ_INT(c.forward, ROUTER_FORWARD_PROXY); /* the default */
    const char *fw[] = {"proxy", "nat", "auto"};
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(router_config_set(&c, "data_path.forward", fw[i], err, sizeof(err)), 0);
        CHECK_EQ_INT(c.forward, i);
        CHECK_STR(router_forward_name(c.forward), fw[i]);
    }
}

static void expect_error(const char *yaml, const char *needle)
{
    router_config c;
    char err[512] = "";
    router_config_defaults(&c);
    int rc = router_config_load_yaml(&c, yaml, strlen(yaml), err, sizeof(err));
    if (rc == 0)
        rc = router_config_validate(&c, err, sizeof(err));
    if (rc == 0 || !strstr(err, needle))
        printf("# yaml %s -> rc %d err '%s', wanted '%s'\n", yaml, rc, err, needle);
    CHECK(rc < 0);
    CHECK(strstr(err, needle) != NULL);
}

TEST(bad_values_name_key_value_and_line)
{
    expect_error("checks:\n  interval_ms: fast\n", "checks.interval_ms: 'fast' is not");
    expect_error("checks:\n  interval_ms: fast\n", "(line 2)");
    expect_error("checks: {rise: 0}\n", "checks.rise: 0 is outside 1..100");
    expect_error("listen: {primary: 'nohost'}\n", "listen.primary: 'nohost' is not host:port");
    expect_error("listen: {primary: '1.2.3.4:99999'}\n", "listen.primary");
    expect_error("bogus: 1\n", "unknown key 'bogus'");
    expect_error("data_path: {splice: maybe}\n",
                 "data_path.splice: 'maybe' is not one of auto, sockmap, userspace, pipe");
    expect_error("data_path: {forward: dnat}\n",
                 "data_path.forward: 'dnat' is not one of proxy, nat, auto (line 1)");
    expect_error("dcs: {endpoints: [https://x:2379]}\n", "only http:// is supported");
    expect_error("backends:\n  - {name: a, host: h, port: 0, check_port: 8008}\n",
                 "backends[0].port: '0' is not a port");
    expect_error("backends:\n  - {name: a, host: 'h h', port: 1, check_port: 8008}\n",
                 "backends[0].host: 'h h' has a bad character");
    expect_error("backends:\n  - {name: a, host: h, port: 1, check_port: 2}\n"
                 "  - {name: a, host: h, port: 1, check_port: 2}\n",
                 "backends[1].name: 'a' is used twice");
    expect_error("backends:\n  - {name: a, host: h, port: 1}\n", "check_port are required");
    expect_error("scope: x\n", "at least one backend");
    expect_error("a: [unclosed\n", "yaml:");
    expect_error("backends: {name: a}\n", "backends: expected a list");
    expect_error(
        "checks: {primary_path: 'x'}\nbackends: [{name: a, host: h, port: 1, check_port: 2}]\n",
        "must start with /");
}

TEST(env_errors_name_the_variable)
{
    router_config c;
    char err[512] = "";
    char *env[] = {"ROUTER_BACKENDS=a=h:1:2", "ROUTER_LIMITS_HOLD_MS=-5", NULL};
    CHECK(router_config_load(&c, NULL, env, err, sizeof(err)) < 0);
    CHECK(strstr(err, "ROUTER_LIMITS_HOLD_MS") != NULL);
    CHECK(strstr(err, "'-5'") != NULL);
    char *env2[] = {"ROUTER_BACKENDS=a=h:1", NULL};
    CHECK(router_config_load(&c, NULL, env2, err, sizeof(err)) < 0);
    CHECK(strstr(err, "ROUTER_BACKENDS: 'a' is not name=host:port:check_port") != NULL);
    CHECK(router_config_load(&c, "/nonexistent/router.yml", env, err, sizeof(err)) < 0);
    CHECK(strstr(err, "/nonexistent/router.yml: No such file") != NULL);
}

TEST(hostport_split)
{
    char h[64];
    uint16_t p = 0;
    CHECK_EQ_INT(router_split_hostport("127.0.0.1:5000", h, sizeof(h), &p), 0);
    CHECK_STR(h, "127.0.0.1");
    CHECK_EQ_INT(p, 5000);
    CHECK_EQ_INT(router_split_hostport("[::1]:8404", h, sizeof(h), &p), 0);
    CHECK_STR(h, "::1");
    CHECK_EQ_INT(router_split_hostport(":5001", h, sizeof(h), &p), 0);
    CHECK_STR(h, "");
    CHECK(router_split_hostport("host:", h, sizeof(h), &p) < 0);
    CHECK(router_split_hostport("host:0", h, sizeof(h), &p) < 0);
    CHECK(router_split_hostport("host:65536", h, sizeof(h), &p) < 0);
    CHECK(router_split_hostport("ho st:1", h, sizeof(h), &p) < 0);
}

TEST(shipped_config_file_loads)
{
    router_config c;
    char err[512] = "";
    char *env[] = {NULL};
    int rc = router_config_load(&c, "configs/router.yml", env, err, sizeof(err));
    if (rc)
        printf("# %s\n", err);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(c.n_backends, 3);
    CHECK_STR(c.backends[0].host, "127.0.20.10");
    CHECK_EQ_INT(c.backends[2].check_port, 8008);
    CHECK_EQ_INT(c.forward, ROUTER_FORWARD_AUTO);
}

int main(void)
{
    RUN(yaml_file_values);
    RUN(env_overrides_file);
    RUN(data_path_names);
    RUN(bad_values_name_key_value_and_line);
    RUN(env_errors_name_the_variable);
    RUN(hostport_split);
    RUN(shipped_config_file_loads);
    return check_done();
}
