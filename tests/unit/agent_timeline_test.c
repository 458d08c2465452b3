/* Timeline history parsing and the divergence decision (agent/timeline.c). */
#include <string.h>

#include "agent/timeline.h"
#include "check.h"

/* what PostgreSQL 15 writes into pg_wal/00000003.history (and TIMELINE_HISTORY 3 returns) */
static const char hist3[] = "1\t0/50008F8\tno recovery target specified\n"
                            "\n"
                            "2\t0/7016E30\tno recovery target specified\n";

static size_t parse(const char *text, tl_switch *h, size_t max, char *err)
{
    size_t n = 99;
    err[0] = '\0';
    int rc = tl_history_parse(text, strlen(text), h, max, &n, err, 200);
    return rc == 0 ? n : (size_t)-1;
}

TEST(parses_postgres_history)
{
    tl_switch h[8];
    char err[200];
    CHECK_EQ_INT(parse(hist3, h, 8, err), 2);
    CHECK_EQ_INT(h[0].parent_tl, 1);
    CHECK(h[0].switchpoint == 0x50008F8);
    CHECK_EQ_INT(h[1].parent_tl, 2);
    CHECK(h[1].switchpoint == 0x7016E30);
}

TEST(comments_blank_lines_spaces_crlf_and_no_final_newline)
{
    tl_switch h[8];
    char err[200];
    CHECK_EQ_INT(parse("# comment\n   \n 1 16/B374D848 reason with spaces\r\n3\tA/0", h, 8, err),
                 2);
    CHECK(h[0].switchpoint == ((int64_t)0x16 << 32 | 0xB374D848));
    CHECK_EQ_INT(h[1].parent_tl, 3);
    CHECK(h[1].switchpoint == (int64_t)0xA << 32);
    CHECK_EQ_INT(parse("", h, 8, err), 0);
}

/* Garbage must never crash and must say which line and what is wrong. */
TEST(garbage_is_a_named_error)
{
    tl_switch h[8];
    char err[200];
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"x\t0/1\tr\n", "line 1: expected a timeline ID"},
        {"1\t0/1\n2x\t0/2\n", "line 2: expected a timeline ID"},
        {"0\t0/1\n", "line 1: expected a timeline ID"},
        {"-1\t0/1\n", "line 1: expected a timeline ID"},
        {"99999999999\t0/1\n", "line 1: expected a timeline ID"},
        {"1\n", "line 1: expected a switchpoint"},
        {"1\t\n", "line 1: expected a switchpoint"},
        {"1\t0-1\n", "line 1: expected a switchpoint"},
        {"1\t0/\n", "line 1: expected a switchpoint"},
        {"1\t/5\n", "line 1: expected a switchpoint"},
        {"1\t0/5G\n", "line 1: expected a switchpoint"},
        {"1\t100000000/0\n", "line 1: expected a switchpoint"},
        {"1\t0/100000000\n", "line 1: expected a switchpoint"},
        {"2\t0/1\n2\t0/2\n", "line 2: timeline 2 does not follow timeline 2"},
        {"3\t0/1\n2\t0/2\n", "line 2: timeline 2 does not follow timeline 3"},
        {"\x01\x02\xff\n", "line 1: expected a timeline ID, got \"???\""},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(bad[i].text, h, 8, err) != (size_t)-1 || !strstr(err, bad[i].want)) {
            printf("# case %zu: err \"%s\", want \"%s\"\n", i, err, bad[i].want);
            CHECK(0);
        }
    }
    /* more lines than room */
    CHECK(parse(hist3, h, 1, err) == (size_t)-1);
    CHECK(strstr(err, "more than 1 timelines") != NULL);
    /* embedded NUL: the length counts, not the terminator */
    size_t n;
    CHECK_EQ_INT(tl_history_parse("1\t0/1\0garbage", 13, h, 8, &n, err, sizeof(err)), -1);
    CHECK_EQ_INT(tl_history_parse(NULL, 0, h, 8, &n, err, sizeof(err)), -1);
}

static enum tl_verdict verdict(int leader_tl, int tl, int64_t lsn, int in_recovery, int64_t *sp,
                               char *why)
{
    tl_switch h[8];
    char err[200];
    size_t n = parse(hist3, h, 8, err);
    tl_position me = {.timeline = tl, .lsn = lsn, .in_recovery = in_recovery};
    return tl_diverged(h, leader_tl == 3 ? n : 1, leader_tl, &me, sp, why, 400);
}

TEST(replica_past_the_switchpoint_diverged)
{
    int64_t sp;
    char why[400];
    CHECK_EQ_INT(verdict(3, 1, 0x501AD80, 1, &sp, why), TL_DIVERGED);
    CHECK(sp == 0x50008F8);
    CHECK(strstr(why, "timeline 1 forked off into timeline 2 at 0/50008F8") != NULL);
    CHECK(strstr(why, "0/501AD80 (past the switchpoint") != NULL);
    CHECK_EQ_INT(verdict(3, 2, 0x7016E31, 1, &sp, why), TL_DIVERGED);
    CHECK(strstr(why, "timeline 2 forked off into timeline 3 at 0/7016E30") != NULL);
}

TEST(replica_at_or_before_the_switchpoint_follows)
{
    int64_t sp;
    char why[400];
    CHECK_EQ_INT(verdict(3, 1, 0x50008F8, 1, &sp, why), TL_NOT_DIVERGED);
    CHECK(strstr(why, "not past") != NULL);
    CHECK_EQ_INT(verdict(3, 1, 0x4000000, 1, &sp, why), TL_NOT_DIVERGED);
    CHECK_EQ_INT(verdict(2, 1, 0x50008F8, 1, &sp, why), TL_NOT_DIVERGED);
}

TEST(stopped_primary_checkpoint_at_the_switchpoint_diverged)
{
    int64_t sp;
    char why[400];
    CHECK_EQ_INT(verdict(3, 1, 0x50008F8, 0, &sp, why), TL_DIVERGED);
    CHECK_EQ_INT(verdict(3, 1, 0x50008F7, 0, &sp, why), TL_NOT_DIVERGED);
    CHECK(strstr(why, "checkpoint") != NULL);
}

TEST(timelines_compared_without_history)
{
    int64_t sp;
    char why[400];
    tl_position me = {.timeline = 3, .lsn = 0x100, .in_recovery = 1};
    CHECK_EQ_INT(tl_diverged(NULL, 0, 3, &me, &sp, why, sizeof(why)), TL_NOT_DIVERGED);
    CHECK(sp == -1);
    CHECK_EQ_INT(tl_diverged(NULL, 0, 2, &me, &sp, why, sizeof(why)), TL_DIVERGED);
    CHECK(strstr(why, "newer than the leader's timeline 2") != NULL);
    /* an older timeline needs the history: none given is no verdict */
    me.timeline = 1;
    CHECK_EQ_INT(tl_diverged(NULL, 0, 2, &me, &sp, why, sizeof(why)), TL_INVALID);
}

TEST(my_timeline_off_the_leaders_history)
{
    /* the leader went 1 -> 3 (timeline 2 was a promotion elsewhere that lost) */
    tl_switch h[] = {{1, 0x5000000}, {3, 0x6000000}};
    tl_position me = {.timeline = 2, .lsn = 0x5000000, .in_recovery = 1};
    int64_t sp;
    char why[400];
    CHECK_EQ_INT(tl_diverged(h, 2, 4, &me, &sp, why, sizeof(why)), TL_DIVERGED);
    CHECK(strstr(why, "not in the leader's history") != NULL);
    /* a history that ends before naming my timeline */
    tl_switch h1[] = {{1, 0x5000000}};
    me.timeline = 2;
    CHECK_EQ_INT(tl_diverged(h1, 1, 3, &me, &sp, why, sizeof(why)), TL_DIVERGED);
    CHECK(strstr(why, "last switch from timeline 1") != NULL);
    tl_switch h2[] = {{1, 0x5000000}, {2, 0x5000100}};
    me.timeline = 5;
    CHECK_EQ_INT(tl_diverged(h2, 2, 9, &me, &sp, why, sizeof(why)), TL_DIVERGED);
}

TEST(bad_arguments_are_no_verdict)
{
    tl_switch h[] = {{1, 0x5000000}};
    tl_position me = {.timeline = 1, .lsn = 0x5000001, .in_recovery = 1};
    int64_t sp;
    char why[400];
    CHECK_EQ_INT(tl_diverged(h, 1, 0, &me, &sp, why, sizeof(why)), TL_INVALID);
    CHECK_EQ_INT(tl_diverged(h, 1, 2, NULL, &sp, why, sizeof(why)), TL_INVALID);
    me.timeline = 0;
    CHECK_EQ_INT(tl_diverged(h, 1, 2, &me, &sp, why, sizeof(why)), TL_INVALID);
    me.timeline = 1;
    me.lsn = -5;
    CHECK_EQ_INT(tl_diverged(h, 1, 2, &me, &sp, why, sizeof(why)), TL_INVALID);
    /* a history line naming the leader's own (or a later) timeline is not its history */
    tl_switch bad[] = {{1, 0x10}, {2, 0x20}};
    me.lsn = 0x5;
    CHECK_EQ_INT(tl_diverged(bad, 2, 2, &me, &sp, why, sizeof(why)), TL_NOT_DIVERGED);
    me.timeline = 3;
    CHECK_EQ_INT(tl_diverged(bad, 2, 2, &me, &sp, why, sizeof(why)), TL_DIVERGED);
    tl_switch bad2[] = {{2, 0x20}};
    me.timeline = 1;
    CHECK_EQ_INT(tl_diverged(bad2, 1, 2, &me, &sp, why, sizeof(why)), TL_INVALID);
    CHECK(strstr(why, "names timeline 2") != NULL);
}

TEST(lsn_format)
{
    char b[24];
    tl_format_lsn(((int64_t)0x16 << 32) | 0xB374D848, b, sizeof(b));
    CHECK_STR(b, "16/B374D848");
    tl_format_lsn(0, b, sizeof(b));
    CHECK_STR(b, "0/0");
}

int main(void)
{
    RUN(parses_postgres_history);
    RUN(comments_blank_lines_spaces_crlf_and_no_final_newline);
    RUN(garbage_is_a_named_error);
    RUN(replica_past_the_switchpoint_diverged);
    RUN(replica_at_or_before_the_switchpoint_follows);
    RUN(stopped_primary_checkpoint_at_the_switchpoint_diverged);
    RUN(timelines_compared_without_history);
    RUN(my_timeline_off_the_leaders_history);
    RUN(bad_arguments_are_no_verdict);
    RUN(lsn_format);
    return check_done();
}
