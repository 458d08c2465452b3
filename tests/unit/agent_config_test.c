/* Agent config: Patroni YAML keys, YAML 1.1 typing, env overrides (Patroni + Spilo names,
 * *_FILE secrets), dynamic-config sanity rules, and errors that name key and value. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/config.h"
#include "agent/yaml_json.h"
#include "check.h"

static const char base_yaml[] = "scope: pg-cluster\n"
                                "name: pg-0\n"
                                "restapi:\n"
                                "  listen: 127.0.40.10:8008\n"
                                "  connect_address: 127.0.40.10:8008\n"
                                "etcd3:\n"
                                "  hosts: 127.0.40.1:2379,127.0.40.2:2379\n"
                                "bootstrap:\n"
                                "  dcs:\n"
                                "    ttl: 4\n"
                                "    postgresql:\n"
                                "      parameters:\n"
                                "        hot_standby: 'on'\n"
                                "        max_connections: 100\n"
                                "postgresql:\n"
                                "  listen: 127.0.40.10:5432\n"
                                "  connect_address: 127.0.40.10:5432\n"
                                "  data_dir: /tmp/x/data\n"
                                "  authentication:\n"
                                "    superuser: {username: postgres, password: secret1}\n"
                                "    replication: {username: replicator, password: secret2}\n"
                                "tags:\n"
                                "  nofailover: false\n"
                                "  noloadbalance: true\n";

TEST(loads_patroni_keys)
{
    agent_config c;
    char err[512];
    char *env[] = {NULL};
    CHECK_EQ_INT(agent_config_load_text(&c, base_yaml, strlen(base_yaml), env, err, sizeof(err)),
                 0);
    CHECK_STR(c.scope, "pg-cluster");
    CHECK_STR(c.name, "pg-0");
    CHECK_STR(c.namespace_, "/service");
    CHECK_STR(c.rest_listen_host, "127.0.40.10");
    CHECK_STR(c.rest_listen_port, "8008");
    CHECK_EQ_INT(c.n_etcd_hosts, 2);
    CHECK_STR(c.etcd_hosts[1], "http://127.0.40.2:2379");
    CHECK_EQ_INT(c.pg_port, 5432);
    CHECK_STR(c.superuser.password, "secret1");
    CHECK_STR(c.replication.username, "replicator");
    CHECK_EQ_INT(c.noloadbalance, 1);
    CHECK_EQ_INT(c.nofailover, 0);
    /* false tags are not published (Patroni) */
    CHECK(json_object_get(c.tags, "nofailover") == NULL);
    /* quoted 'on' stays a string, plain 100 becomes a number, as in Patroni's config key */
    char *dcs = json_dumps(c.bootstrap_dcs, JSON_COMPACT | JSON_PRESERVE_ORDER);
    CHECK_STR(dcs, "{\"ttl\":4,\"postgresql\":{\"parameters\":{\"hot_standby\":\"on\","
                   "\"max_connections\":100}}}");
    free(dcs);
    agent_config_free(&c);
}

TEST(env_overrides_patroni_and_spilo)
{
    agent_config c;
    char err[512];
    FILE *f = fopen("/tmp/agent_config_test_secret", "w");
    CHECK(f != NULL);
    fputs("fromfile\n", f);
    fclose(f);
    char *env[] = {"SCOPE=spilo-scope",
                   "PATRONI_NAME=pg-9",
                   "PGPASSWORD_SUPERUSER=spilo-pw",
                   "PATRONI_REPLICATION_PASSWORD_FILE=/tmp/agent_config_test_secret",
                   "ETCD3_HOSTS=\"127.0.40.3:2379\",\"127.0.40.4:2379\",\"127.0.40.5:2379\"",
                   "PATRONI_NAMESPACE=/other//ns/",
                   NULL};
    CHECK_EQ_INT(agent_config_load_text(&c, base_yaml, strlen(base_yaml), env, err, sizeof(err)),
                 0);
    CHECK_STR(c.scope, "spilo-scope");
    CHECK_STR(c.name, "pg-9");
    CHECK_STR(c.superuser.password, "spilo-pw");
    CHECK_STR(c.replication.password, "fromfile");
    CHECK_EQ_INT(c.n_etcd_hosts, 3);
    CHECK_STR(c.etcd_hosts[2], "http://127.0.40.5:2379");
    CHECK_STR(c.namespace_, "/other/ns");
    agent_config_free(&c);
    remove("/tmp/agent_config_test_secret");
}

static void expect_error(const char *yaml, char *const *env, const char *needle)
{
    agent_config c;
    char err[512] = "";
    int rc = agent_config_load_text(&c, yaml, strlen(yaml), env, err, sizeof(err));
    if (rc == 0)
        agent_config_free(&c);
    printf("# error: %s\n", err);
    CHECK(rc == -1);
    CHECK(strstr(err, needle) != NULL);
}

static char *replace(const char *s, const char *from, const char *to)
{
    static char buf[4096];
    const char *p = strstr(s, from);
    if (!p)
        return NULL;
    snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(p - s), s, to, p + strlen(from));
    return buf;
}

TEST(bad_config_names_key_and_value)
{
    char *env[] = {NULL};
    expect_error(replace(base_yaml, "  listen: 127.0.40.10:8008\n", "  listen: nonsense\n"), env,
                 "restapi.listen: 'nonsense' is not host:port");
    expect_error(replace(base_yaml, "    ttl: 4\n", "    ttl: soon\n"), env,
                 "bootstrap.dcs.ttl: expected an integer, got 'soon'");
    expect_error(replace(base_yaml, "    ttl: 4\n", "    ttl: 1\n"), env,
                 "bootstrap.dcs.ttl: 1 is out of range");
    expect_error(replace(base_yaml, "name: pg-0\n", ""), env, "name: required key is missing");
    expect_error(replace(base_yaml, "  data_dir: /tmp/x/data\n", "  data_dir: rel/data\n"), env,
                 "postgresql.data_dir: 'rel/data' must be an absolute path");
    expect_error("scope: [unclosed\n", env, "YAML: line");
    expect_error(replace(base_yaml, "  noloadbalance: true\n", "  noloadbalance: maybe\n"), env,
                 "tags.noloadbalance: expected true or false, got 'maybe'");
    char *bad_env[] = {"ETCD3_HOSTS=[unclosed", NULL};
    expect_error(base_yaml, bad_env, "ETCD3_HOSTS: cannot parse host list");
    /* secrets never appear in errors */
    expect_error(replace(base_yaml, "password: secret1", "password: [secret1]"), env,
                 "postgresql.authentication.superuser.password: expected a string");
}

/* SPILO_CONFIGURATION / PATRONI_CONFIGURATION: merged into the file (maps key by key,
 * scalars and lists replaced, null keeps the file's value), between Spilo's names (under)
 * and Patroni's PATRONI_* names (over), as Spilo + Patroni layer them. */
TEST(env_yaml_merged_deeply)
{
    agent_config c;
    char err[512];
    char *env[] = {"PATRONI_CONFIGURATION="
                   "bootstrap:\n"
                   "  dcs:\n"
                   "    ttl: 10\n"
                   "    postgresql: {parameters: {work_mem: 8MB}}\n"
                   "postgresql:\n"
                   "  authentication: {replication: {password: from-yaml}}\n"
                   "  pg_hba: [host all all 10.0.0.0/8 scram-sha-256]\n"
                   "  data_dir: null\n"
                   "tags: {zone: z9}\n",
                   "SCOPE=spilo-scope", "PGPASSWORD_STANDBY=spilo-pw", "PATRONI_NAME=pg-7", NULL};
    const char *yaml = "scope: pg-cluster\n"
                       "name: pg-0\n"
                       "restapi: {listen: 127.0.40.10:8008, connect_address: 127.0.40.10:8008}\n"
                       "etcd3: {hosts: 127.0.40.1:2379}\n"
                       "bootstrap:\n"
                       "  dcs:\n"
                       "    ttl: 4\n"
                       "    loop_wait: 1\n"
                       "    postgresql: {parameters: {max_connections: 100}}\n"
                       "postgresql:\n"
                       "  listen: 127.0.40.10:5432\n"
                       "  connect_address: 127.0.40.10:5432\n"
                       "  data_dir: /tmp/x/data\n"
                       "  pg_hba: [local all all trust, host all all 0.0.0.0/0 trust]\n"
                       "  authentication:\n"
                       "    superuser: {username: postgres, password: s1}\n"
                       "    replication: {username: replicator, password: s2}\n"
                       "tags: {nofailover: false}\n";
    CHECK_EQ_INT(agent_config_load_text(&c, yaml, strlen(yaml), env, err, sizeof(err)), 0);
    char *dcs = json_dumps(c.bootstrap_dcs, JSON_COMPACT | JSON_PRESERVE_ORDER);
    /* maps merged key by key: loop_wait and max_connections stay, ttl replaced */
    CHECK_STR(dcs, "{\"ttl\":10,\"loop_wait\":1,\"postgresql\":{\"parameters\":{"
                   "\"max_connections\":100,\"work_mem\":\"8MB\"}}}");
    free(dcs);
    /* lists replaced, not appended to */
    char *hba = json_dumps(c.pg_hba, JSON_COMPACT);
    CHECK_STR(hba, "[\"host all all 10.0.0.0/8 scram-sha-256\"]");
    free(hba);
    CHECK_STR(c.data_dir, "/tmp/x/data");           /* null keeps the file's value */
    CHECK_STR(c.replication.password, "from-yaml"); /* YAML over Spilo's PGPASSWORD_STANDBY */
    CHECK_STR(c.superuser.password, "s1");          /* untouched sibling */
    CHECK_STR(c.scope, "spilo-scope");              /* Spilo's name over the file */
    CHECK_STR(c.name, "pg-7");                      /* PATRONI_* over everything */
    CHECK_STR(json_string_value(json_object_get(c.tags, "zone")), "z9");
    agent_config_free(&c);

    /* SPILO_CONFIGURATION is read in preference (Spilo reads only one of the two) */
    char *both[] = {"SPILO_CONFIGURATION=scope: from-spilo",
                    "PATRONI_CONFIGURATION=scope: from-patroni", NULL};
    CHECK_EQ_INT(agent_config_load_text(&c, yaml, strlen(yaml), both, err, sizeof(err)), 0);
    CHECK_STR(c.scope, "from-spilo");
    agent_config_free(&c);
    /* an empty variable merges nothing */
    char *alone[] = {"PATRONI_CONFIGURATION=", NULL};
    CHECK_EQ_INT(agent_config_load_text(&c, yaml, strlen(yaml), alone, err, sizeof(err)), 0);
    CHECK_STR(c.scope, "pg-cluster"); /* empty YAML: nothing merged */
    agent_config_free(&c);
}

TEST(env_yaml_errors_name_variable_and_key)
{
    char *e1[] = {"SPILO_CONFIGURATION=postgresql: {authentication: [a, b]}", NULL};
    expect_error(base_yaml, e1,
                 "SPILO_CONFIGURATION: postgresql.authentication: expected a mapping (as in the "
                 "config file), got a list");
    char *e2[] = {"PATRONI_CONFIGURATION=- just\n- a list\n", NULL};
    expect_error(base_yaml, e2,
                 "PATRONI_CONFIGURATION: expected a mapping of Patroni configuration keys, got a "
                 "list");
    char *e3[] = {"PATRONI_CONFIGURATION=scope: [unclosed", NULL};
    expect_error(base_yaml, e3, "PATRONI_CONFIGURATION: YAML: line");
    char *e4[] = {"SPILO_CONFIGURATION=restapi: {listen: nowhere}", NULL};
    expect_error(base_yaml, e4,
                 "restapi.listen: 'nowhere' is not host:port (value from environment variable "
                 "SPILO_CONFIGURATION)");
    char *e5[] = {"SPILO_CONFIGURATION=restapi: {listen: nowhere}",
                  "PATRONI_RESTAPI_LISTEN=still-nowhere", NULL};
    expect_error(base_yaml, e5, "(value from environment variable PATRONI_RESTAPI_LISTEN)");
    char *e6[] = {"SPILO_CONFIGURATION=tags: {nofailover: sometimes}", NULL};
    expect_error(base_yaml, e6,
                 "tags.nofailover: expected true or false, got 'sometimes' (value from "
                 "environment variable SPILO_CONFIGURATION)");
}

TEST(dyn_config_rules)
{
    agent_dyn_config d;
    char err[256];
    json_t *o = json_pack("{}");
    CHECK_EQ_INT(agent_dyn_config_parse(&d, o, err, sizeof(err)), 0);
    CHECK_EQ_INT(d.ttl, DYN_DEFAULT_TTL);
    CHECK_EQ_INT(d.loop_wait, DYN_DEFAULT_LOOP_WAIT);
    CHECK_EQ_INT(d.retry_timeout, DYN_DEFAULT_RETRY_TIMEOUT);
    CHECK_EQ_INT(d.failsafe_mode, 1);
    CHECK_EQ_INT(d.use_pg_rewind, 1);
    agent_dyn_config_free(&d);
    json_decref(o);
    /* loop_wait + 2*retry_timeout <= ttl: loop_wait lowered first */
    o = json_pack("{s:i,s:i,s:i}", "ttl", 30, "loop_wait", 20, "retry_timeout", 10);
    CHECK_EQ_INT(agent_dyn_config_parse(&d, o, err, sizeof(err)), 0);
    CHECK_EQ_INT(d.loop_wait, 10);
    agent_dyn_config_free(&d);
    json_decref(o);
    o = json_pack("{s:i,s:i,s:i}", "ttl", 5, "loop_wait", 3, "retry_timeout", 3);
    CHECK_EQ_INT(agent_dyn_config_parse(&d, o, err, sizeof(err)), 0);
    CHECK_EQ_INT(d.loop_wait, 1);
    CHECK_EQ_INT(d.retry_timeout, 2);
    agent_dyn_config_free(&d);
    json_decref(o);
    o = json_pack("{s:{s:s}}", "postgresql", "use_pg_rewind", "yes");
    CHECK_EQ_INT(agent_dyn_config_parse(&d, o, err, sizeof(err)), -1);
    CHECK_STR(err, "postgresql.use_pg_rewind: expected true or false, got 'yes'");
    json_decref(o);
}

TEST(member_slots_ttl_durations)
{
    agent_dyn_config d;
    char err[256];
    static const struct {
        const char *text;
        long long want; /* -1: rejected */
    } cases[] = {{"30min", 1800}, {"0", 0},  {"45", 45},    {"45s", 45}, {"2h", 7200},
                 {"1d", 86400},   {"x", -1}, {"5 min", -1}, {"-3", -1},  {"10y", -1}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *o = json_pack("{s:s}", "member_slots_ttl", cases[i].text);
        int rc = agent_dyn_config_parse(&d, o, err, sizeof(err));
        if (cases[i].want < 0) {
            CHECK_EQ_INT(rc, -1);
            CHECK(strstr(err, "member_slots_ttl: expected a duration") != NULL);
        } else {
            CHECK_EQ_INT(rc, 0);
            CHECK(d.member_slots_ttl == cases[i].want);
            agent_dyn_config_free(&d);
        }
        json_decref(o);
    }
    json_t *o = json_pack("{s:i}", "member_slots_ttl", 60);
    CHECK_EQ_INT(agent_dyn_config_parse(&d, o, err, sizeof(err)), 0);
    CHECK(d.member_slots_ttl == 60);
    agent_dyn_config_free(&d);
    json_decref(o);
    o = json_pack("{}");
    CHECK_EQ_INT(agent_dyn_config_parse(&d, o, err, sizeof(err)), 0);
    CHECK(d.member_slots_ttl == DYN_DEFAULT_MEMBER_SLOTS_TTL);
    agent_dyn_config_free(&d);
    json_decref(o);
}

TEST(yaml_typing)
{
    char err[128];
    const char y[] = "a: on\nb: 'on'\nc: 010\nd: 1.5\ne: ~\nf: x y\ng: -3\n";
    json_t *j = yaml_to_json(y, strlen(y), err, sizeof(err));
    CHECK(j != NULL);
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    CHECK_STR(s, "{\"a\":true,\"b\":\"on\",\"c\":10,\"d\":1.5,\"e\":null,\"f\":\"x y\",\"g\":-3}");
    free(s);
    json_decref(j);
    const char alias[] = "a: &x 1\nb: *x\n";
    CHECK(yaml_to_json(alias, strlen(alias), err, sizeof(err)) == NULL);
    CHECK(strstr(err, "not supported") != NULL);
}

int main(void)
{
    RUN(loads_patroni_keys);
    RUN(env_overrides_patroni_and_spilo);
    RUN(bad_config_names_key_and_value);
    RUN(env_yaml_merged_deeply);
    RUN(env_yaml_errors_name_variable_and_key);
    RUN(dyn_config_rules);
    RUN(member_slots_ttl_durations);
    RUN(yaml_typing);
    return check_done();
}
