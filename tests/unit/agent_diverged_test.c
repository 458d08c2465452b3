/* The divergence verdict's bookkeeping (agent/diverged.c): when a new check is due, the
 * sticky verdict, which fix is allowed, and that a failed fix is never offered again for the
 * same leader timeline (no loop). The check itself (libpq, pg_controldata) runs in
 * tests/integration/agent/diverged.t. */
#include <string.h>

#include "agent/agent.h"
#include "check.h"

static agent A;

static agent *fresh(void)
{
    evloop *loop = A.loop ? A.loop : evloop_new();
    memset(&A, 0, sizeof(A));
    A.loop = loop;
    strcpy(A.leader, "pg-1");
    A.dyn.use_pg_rewind = 1;
    /* a running replica on timeline 1 at 0/5000100 */
    A.st.valid = 1;
    A.st.in_recovery = 1;
    A.st.timeline = 1;
    A.st.replayed = 0x5000100;
    A.st.received = 0x5000000;
    strcpy(A.state, "running");
    return &A;
}

/* as diverged.c's finish() leaves it after a check of the running postgres */
static void checked(agent *a, int leader_tl, int diverged, int error)
{
    tl_check *c = &a->tlc;
    memset(c, 0, sizeof(*c));
    strcpy(c->leader, a->leader);
    c->leader_tl_dcs = leader_tl;
    c->running = 1;
    c->key_tl = a->st.timeline;
    c->key_lsn = 0x5000100;
    c->my_tl = 1;
    c->my_lsn = 0x5000100;
    c->switchpoint = 0x5000000;
    c->done = 1;
    c->error = error;
    c->errors = error ? 1 : 0;
    c->diverged = diverged;
    c->leader_tl = leader_tl;
    c->checked_at_ms = evloop_update_now(a->loop);
}

TEST(nothing_checked_yet_is_due)
{
    agent *a = fresh();
    CHECK(!diverged_checked(a, 2, 1));
    CHECK(!diverged_checked(a, 2, 0));
    a->tlc.in_flight = 1;
    CHECK(diverged_checked(a, 2, 1)); /* one at a time */
}

TEST(a_result_holds_for_the_same_leader_timeline_and_position)
{
    agent *a = fresh();
    checked(a, 2, 0, 0);
    CHECK(diverged_checked(a, 2, 1));
    CHECK(!diverged_checked(a, 3, 1)); /* the leader's timeline moved */
    strcpy(a->leader, "pg-2");
    CHECK(!diverged_checked(a, 2, 1)); /* another leader */
    strcpy(a->leader, "pg-1");
    /* my position moved: due again, but not more often than every 5 s */
    a->st.replayed += 100;
    CHECK(diverged_checked(a, 2, 1));
    a->tlc.checked_at_ms -= 6000;
    CHECK(!diverged_checked(a, 2, 1));
    /* a running result says nothing about the stopped data dir (and back) */
    CHECK(!diverged_checked(a, 2, 0));
}

TEST(a_stopped_check_holds_until_postgres_ran_again)
{
    agent *a = fresh();
    checked(a, 2, 0, 0);
    a->tlc.running = 0;
    a->tlc.pg_gen = a->pg_gen;
    CHECK(diverged_checked(a, 2, 0));
    a->pg_gen++;
    CHECK(!diverged_checked(a, 2, 0));
    /* a failed stopped check does not hold postgres back: it counts as done */
    checked(a, 2, 0, 1);
    a->tlc.running = 0;
    a->tlc.pg_gen = a->pg_gen;
    CHECK(diverged_checked(a, 2, 0));
}

TEST(failed_checks_back_off)
{
    agent *a = fresh();
    checked(a, 2, 0, 1);
    CHECK(diverged_checked(a, 2, 1));
    a->tlc.checked_at_ms -= 5100;
    CHECK(!diverged_checked(a, 2, 1)); /* first retry after 5 s */
    a->tlc.errors = 3;
    CHECK(diverged_checked(a, 2, 1)); /* third failure in a row: 20 s */
    a->tlc.checked_at_ms -= 15000;
    CHECK(!diverged_checked(a, 2, 1));
    a->tlc.errors = 40; /* capped at 60 s, no shift overflow */
    a->tlc.checked_at_ms = evloop_update_now(a->loop) - 59000;
    CHECK(diverged_checked(a, 2, 1));
    a->tlc.checked_at_ms -= 2000;
    CHECK(!diverged_checked(a, 2, 1));
}

TEST(diverged_is_sticky_and_the_fix_follows_the_settings)
{
    agent *a = fresh();
    checked(a, 2, 1, 0);
    a->st.replayed += 5000; /* position moves on: still diverged, no recheck */
    a->pg_gen++;
    CHECK(diverged_checked(a, 2, 1));
    CHECK(diverged_checked(a, 2, 0));
    CHECK_EQ_INT(diverged_fix(a), 1);
    CHECK(!diverged_stuck(a));
    a->dyn.use_pg_rewind = 0;
    CHECK_EQ_INT(diverged_fix(a), 0);
    CHECK(diverged_stuck(a));
    CHECK_STR(agent_public_state(a), "diverged");
    a->cfg.remove_data_directory_on_diverged_timelines = 1;
    CHECK_EQ_INT(diverged_fix(a), 2);
    CHECK_STR(agent_public_state(a), "running");
    /* not diverged: no fix, not stuck */
    checked(a, 2, 0, 0);
    CHECK_EQ_INT(diverged_fix(a), 0);
    CHECK(!diverged_stuck(a));
}

TEST(a_failed_fix_is_not_offered_again_for_that_leader_timeline)
{
    agent *a = fresh();
    checked(a, 2, 1, 0);
    diverged_fix_failed(a, 2, "pg_rewind");
    CHECK_EQ_INT(diverged_fix(a), 0);
    CHECK(diverged_stuck(a));
    /* a new check of the same leader timeline keeps the failure */
    checked(a, 2, 1, 0);
    strcpy(a->tlc.failed_leader, "pg-1");
    a->tlc.failed_leader_tl = 2;
    CHECK_EQ_INT(diverged_fix(a), 0);
    /* the leader's next timeline (another failover) is a new situation */
    a->tlc.leader_tl_dcs = 3;
    CHECK_EQ_INT(diverged_fix(a), 1);
    a->tlc.leader_tl_dcs = 2;
    strcpy(a->leader, "pg-0");
    strcpy(a->tlc.leader, "pg-0");
    CHECK_EQ_INT(diverged_fix(a), 1);
}

TEST(rest_detail_names_leader_lsns_and_action)
{
    agent *a = fresh();
    CHECK(diverged_json(a) == NULL);
    checked(a, 2, 1, 0);
    snprintf(a->tlc.why, sizeof(a->tlc.why), "why");
    json_t *j = diverged_json(a);
    CHECK(j != NULL);
    CHECK_STR(json_string_value(json_object_get(j, "leader")), "pg-1");
    CHECK_EQ_INT(json_integer_value(json_object_get(j, "leader_timeline")), 2);
    CHECK_STR(json_string_value(json_object_get(j, "lsn")), "0/5000100");
    CHECK_STR(json_string_value(json_object_get(j, "switchpoint")), "0/5000000");
    CHECK_STR(json_string_value(json_object_get(j, "action")), "pg_rewind");
    json_decref(j);
    diverged_fix_failed(a, 2, "pg_rewind");
    j = diverged_json(a);
    CHECK(strncmp(json_string_value(json_object_get(j, "action")), "none: the fix failed", 20) ==
          0);
    json_decref(j);
}

int main(void)
{
    RUN(nothing_checked_yet_is_due);
    RUN(a_result_holds_for_the_same_leader_timeline_and_position);
    RUN(a_stopped_check_holds_until_postgres_ran_again);
    RUN(failed_checks_back_off);
    RUN(diverged_is_sticky_and_the_fix_follows_the_settings);
    RUN(a_failed_fix_is_not_offered_again_for_that_leader_timeline);
    RUN(rest_detail_names_leader_lsns_and_action);
    if (A.loop)
        evloop_free(A.loop);
    return check_done();
}
