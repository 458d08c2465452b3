/* ctl/yaml_print: what show-config prints reads back (with the agent's YAML loader, which
 * types scalars like Patroni's PyYAML) as exactly the JSON it came from. */
#include <stdlib.h>
#include <string.h>

#include "agent/yaml_json.h"
#include "check.h"
#include "ctl/yaml_print.h"

static int round_trips(const char *json_text)
{
    json_t *j = json_loads(json_text, JSON_DECODE_ANY, NULL);
    if (!j)
        return 0;
    char *y = ctl_json_to_yaml(j);
    char err[200] = "";
    json_t *back = y ? yaml_to_json(y, strlen(y), err, sizeof(err)) : NULL;
    int same = back && json_equal(j, back);
    if (!same)
        fprintf(stderr, "# not the same after a round trip: %s\n# yaml:\n%s# err: %s\n", json_text,
                y ? y : "(null)", err);
    json_decref(back);
    json_decref(j);
    free(y);
    return same;
}

TEST(patroni_config_round_trips)
{
    CHECK(round_trips(
        "{\"ttl\":30,\"loop_wait\":10,\"retry_timeout\":10,\"maximum_lag_on_failover\":1048576,"
        "\"pause\":true,\"failsafe_mode\":false,\"slots\":{},\"tags\":[],"
        "\"postgresql\":{\"use_pg_rewind\":true,\"use_slots\":true,\"parameters\":{"
        "\"hot_standby\":\"on\",\"wal_level\":\"replica\",\"max_connections\":100,"
        "\"archive_command\":\"/bin/true # not a comment\",\"checkpoint_completion_target\":0.9,"
        "\"shared_buffers\":\"128MB\",\"pg_stat_statements.track\":\"all\"}}}"));
}

TEST(strings_that_look_like_other_types_stay_strings)
{
    CHECK(round_trips("{\"a\":\"on\",\"b\":\"10\",\"c\":\"null\",\"d\":\"\",\"e\":\"~\","
                      "\"f\":\"true\",\"g\":\"1.5\",\"h\":\"-3\",\"i\":\"off\",\"j\":\"yes\"}"));
    CHECK(round_trips("{\"colon\":\"a: b\",\"hash\":\"#x\",\"dash\":\"- x\",\"brace\":\"{x}\","
                      "\"quote\":\"it's \\\"q\\\"\",\"lead\":\" x\",\"trail\":\"x \","
                      "\"nl\":\"a\\nb\",\"tab\":\"a\\tb\",\"star\":\"*x\",\"amp\":\"&x\","
                      "\"pct\":\"%x\",\"at\":\"@x\",\"bang\":\"!x\",\"uni\":\"h\\u00e9llo\"}"));
    CHECK(round_trips("{\"on\":1,\"10\":2,\"null\":3,\"a b\":4,\"x: y\":5}"));
}

TEST(numbers_lists_and_nesting)
{
    CHECK(round_trips("{\"r\":1.0,\"s\":0.1,\"t\":1e300,\"u\":-2.5e-7,\"big\":9007199254740993,"
                      "\"neg\":-1,\"zero\":0}"));
    CHECK(round_trips("{\"l\":[1,\"two\",{\"x\":null,\"y\":[]},[true,false]],\"m\":{\"n\":{}}}"));
    /* a long string is not folded into several lines */
    char big[2100] = "{\"long\":\"";
    memset(big + 9, 'x', 2000);
    strcpy(big + 2009, "\"}");
    CHECK(round_trips(big));
}

TEST(keys_sorted_block_style)
{
    json_t *j =
        json_loads("{\"ttl\":30,\"loop_wait\":10,\"postgresql\":{\"use_slots\":true}}", 0, NULL);
    char *y = ctl_json_to_yaml(j);
    CHECK(y != NULL);
    if (y)
        CHECK_STR(y, "loop_wait: 10\npostgresql:\n  use_slots: true\nttl: 30\n");
    free(y);
    json_decref(j);
}

/* byte for byte what Patroni 3.0.2's show-config printed for the same config key
 * (shared/reference/patroni-3.0.2: rest_primary_config.json -> patronictl_show_config.yml) */
TEST(same_text_as_patronictl_show_config)
{
    json_t *j = json_loads(
        "{\"ttl\": 30, \"loop_wait\": 10, \"retry_timeout\": 10, \"maximum_lag_on_failover\": "
        "1048576, \"postgresql\": {\"use_pg_rewind\": true, \"use_slots\": true, \"parameters\": "
        "{\"max_connections\": 100, \"wal_level\": \"replica\", \"hot_standby\": \"on\", "
        "\"max_wal_senders\": 10, \"max_replication_slots\": 10, \"wal_log_hints\": \"on\"}}}",
        0, NULL);
    char *y = ctl_json_to_yaml(j);
    CHECK(y != NULL);
    if (y)
        CHECK_STR(y, "loop_wait: 10\n"
                     "maximum_lag_on_failover: 1048576\n"
                     "postgresql:\n"
                     "  parameters:\n"
                     "    hot_standby: 'on'\n"
                     "    max_connections: 100\n"
                     "    max_replication_slots: 10\n"
                     "    max_wal_senders: 10\n"
                     "    wal_level: replica\n"
                     "    wal_log_hints: 'on'\n"
                     "  use_pg_rewind: true\n"
                     "  use_slots: true\n"
                     "retry_timeout: 10\n"
                     "ttl: 30\n");
    free(y);
    json_decref(j);
}

TEST(refuses_what_it_cannot_print)
{
    json_t *deep = json_object(), *cur = deep;
    for (int i = 0; i < 40; i++) {
        json_t *n = json_object();
        json_object_set_new(cur, "k", n);
        cur = n;
    }
    CHECK(ctl_json_to_yaml(deep) == NULL);
    json_decref(deep);
}

int main(void)
{
    RUN(patroni_config_round_trips);
    RUN(strings_that_look_like_other_types_stay_strings);
    RUN(numbers_lists_and_nesting);
    RUN(keys_sorted_block_style);
    RUN(same_text_as_patronictl_show_config);
    RUN(refuses_what_it_cannot_print);
    return check_done();
}
