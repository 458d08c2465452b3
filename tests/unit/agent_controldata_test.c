/* pg_controldata output parsing (agent/controldata.c). */
#include <string.h>

#include "agent/controldata.h"
#include "check.h"

static const char primary_out[] = "pg_control version number:            1300\n"
                                  "Catalog version number:               202209061\n"
                                  "Database system identifier:           7712273331057191756\n"
                                  "Database cluster state:               in production\n"
                                  "pg_control last modified:             Thu Nov 26 00:39:34 2026\n"
                                  "Latest checkpoint location:           0/4020C90\n"
                                  "Latest checkpoint's REDO location:    0/4020C58\n"
                                  "Latest checkpoint's REDO WAL file:    000000030000000000000004\n"
                                  "Latest checkpoint's TimeLineID:       3\n"
                                  "Latest checkpoint's PrevTimeLineID:   3\n";

TEST(parses_a_primary)
{
    pg_controldata c;
    CHECK_EQ_INT(controldata_parse(primary_out, &c), 0);
    CHECK_STR(c.sysid, "7712273331057191756");
    CHECK_STR(c.state, "in production");
    CHECK(c.checkpoint_lsn == 0x4020C90);
    CHECK_EQ_INT(c.timeline, 3);
    CHECK(controldata_was_primary(&c));
}

static const char standby_out[] = "Database system identifier:           7712273331057191756\n"
                                  "Database cluster state:               shut down in recovery\n"
                                  "Latest checkpoint location:           0/4000060\n"
                                  "Latest checkpoint's TimeLineID:       1\n"
                                  "Minimum recovery ending location:     0/501AD80\n"
                                  "Min recovery ending loc's timeline:   2\n";

TEST(parses_a_standby_minimum_recovery_point)
{
    pg_controldata c;
    CHECK_EQ_INT(controldata_parse(standby_out, &c), 0);
    CHECK(c.min_recovery_lsn == 0x501AD80);
    CHECK_EQ_INT(c.min_recovery_timeline, 2);
    CHECK(!controldata_was_primary(&c));
    /* absent (older output) or malformed: -1 / 0, the rest still parses */
    CHECK_EQ_INT(controldata_parse(primary_out, &c), 0);
    CHECK(c.min_recovery_lsn == -1);
    CHECK_EQ_INT(c.min_recovery_timeline, 0);
    char bad[sizeof(standby_out) + 40];
    snprintf(bad, sizeof(bad), "%s", standby_out);
    char *p = strstr(bad, "0/501AD80");
    memcpy(p, "zz/501AD", 8);
    p = strstr(bad, "timeline:   2");
    p[strlen("timeline:   ")] = 'x';
    CHECK_EQ_INT(controldata_parse(bad, &c), 0);
    CHECK(c.min_recovery_lsn == -1);
    CHECK_EQ_INT(c.min_recovery_timeline, 0);
}

TEST(standby_states_are_not_primary)
{
    pg_controldata c;
    memset(&c, 0, sizeof(c));
    strcpy(c.state, "shut down in recovery");
    CHECK(!controldata_was_primary(&c));
    strcpy(c.state, "in archive recovery");
    CHECK(!controldata_was_primary(&c));
    strcpy(c.state, "shut down");
    CHECK(controldata_was_primary(&c));
}

TEST(lsn)
{
    CHECK(controldata_lsn("0/0") == 0);
    CHECK(controldata_lsn("16/B374D848") == ((int64_t)0x16 << 32 | 0xB374D848));
    CHECK(controldata_lsn("x/1") == -1);
    CHECK(controldata_lsn("1/") == -1);
    CHECK(controldata_lsn("1/2x") == -1);
    CHECK(controldata_lsn("100000000/0") == -1);
}

TEST(rejects_garbage_and_partial_output)
{
    pg_controldata c;
    CHECK_EQ_INT(controldata_parse("", &c), -1);
    CHECK_EQ_INT(controldata_parse("pg_controldata: fatal: could not open file", &c), -1);
    char partial[sizeof(primary_out)];
    memcpy(partial, primary_out, sizeof(primary_out));
    char *tl = strstr(partial, "Latest checkpoint's TimeLineID");
    *tl = '\0';
    CHECK_EQ_INT(controldata_parse(partial, &c), -1);
    CHECK_EQ_INT(controldata_parse("Database system identifier: 12x\n", &c), -1);
}

int main(void)
{
    RUN(parses_a_primary);
    RUN(standby_states_are_not_primary);
    RUN(parses_a_standby_minimum_recovery_point);
    RUN(lsn);
    RUN(rejects_garbage_and_partial_output);
    return check_done();
}
