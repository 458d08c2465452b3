/* appliancectl provision's statement splitter: psql's rules for ; and \gexec, quotes,
 * dollar quotes, comments, line numbers, and clear refusals. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ctl/sql_script.h"

static int parse(const char *text, sql_script *s, char *err, size_t errsz)
{
    return sql_script_parse(text, strlen(text), s, err, errsz);
}

TEST(shipped_file_shape)
{
    const char *t = "-- header comment\n"
                    "DO $$\n"
                    "BEGIN\n"
                    "  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'app') THEN\n"
                    "    CREATE ROLE app LOGIN PASSWORD 'app-pass';\n"
                    "  END IF;\n"
                    "END\n"
                    "$$;\n"
                    "SELECT 'CREATE DATABASE app OWNER app'\n"
                    "WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'app')\\gexec\n";
    sql_script s;
    char err[200];
    CHECK_EQ_INT(parse(t, &s, err, sizeof(err)), 0);
    CHECK_EQ_INT(s.n, 2);
    CHECK_EQ_INT(s.stmts[0].line, 2);
    CHECK_EQ_INT(s.stmts[0].gexec, 0);
    CHECK(strncmp(s.stmts[0].text, "DO $$", 5) == 0);
    CHECK(strstr(s.stmts[0].text, "END IF;") != NULL); /* ; inside $$ does not split */
    CHECK(s.stmts[0].text[strlen(s.stmts[0].text) - 1] == '$');
    CHECK_EQ_INT(s.stmts[1].line, 9);
    CHECK_EQ_INT(s.stmts[1].gexec, 1);
    CHECK_STR(s.stmts[1].text, "SELECT 'CREATE DATABASE app OWNER app'\n"
                               "WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'app')");
    sql_script_free(&s);
}

TEST(quotes_and_comments_hide_terminators)
{
    const char *t = "SELECT 'a;b', \"x;y\", E'it\\'s;', $f$;$f$ /* ; /* nested ; */ ; */;\n"
                    "SELECT 'it''s';  -- trailing ; comment\n"
                    "SELECT 1 \\g\n"
                    "select $1, a$b$c from t;\n"
                    "SELECT 2"; /* no terminator at the end: still a statement, as psql */
    sql_script s;
    char err[200];
    CHECK_EQ_INT(parse(t, &s, err, sizeof(err)), 0);
    CHECK_EQ_INT(s.n, 5);
    CHECK_STR(s.stmts[0].text,
              "SELECT 'a;b', \"x;y\", E'it\\'s;', $f$;$f$ /* ; /* nested ; */ ; */");
    CHECK_STR(s.stmts[1].text, "SELECT 'it''s'");
    CHECK_STR(s.stmts[2].text, "SELECT 1");
    CHECK_EQ_INT(s.stmts[2].gexec, 0);
    CHECK_EQ_INT(s.stmts[2].line, 3);
    CHECK_STR(s.stmts[3].text, "select $1, a$b$c from t");
    CHECK_STR(s.stmts[4].text, "SELECT 2");
    CHECK_EQ_INT(s.stmts[4].line, 5);
    sql_script_free(&s);
}

TEST(empty_and_comment_only)
{
    sql_script s;
    char err[200];
    CHECK_EQ_INT(parse("  \n-- nothing\n/* here */\n;;\n", &s, err, sizeof(err)), 0);
    CHECK_EQ_INT(s.n, 0);
    sql_script_free(&s);
}

TEST(refusals_name_the_line)
{
    sql_script s;
    char err[200];
    CHECK_EQ_INT(parse("SELECT 1;\n\\c otherdb\nSELECT 2;", &s, err, sizeof(err)), -1);
    CHECK_STR(err, "line 2: psql meta-command \\c is not supported (only \\g and \\gexec)");
    CHECK_EQ_INT(parse("SELECT 1;\n\nSELECT 'open\n;\n", &s, err, sizeof(err)), -1);
    CHECK_STR(err, "line 3: unterminated quoted string");
    CHECK_EQ_INT(parse("DO $body$ BEGIN END $bod$;", &s, err, sizeof(err)), -1);
    CHECK_STR(err, "line 1: unterminated dollar-quoted string $body$");
    CHECK_EQ_INT(parse("SELECT 1 /* /* */", &s, err, sizeof(err)), -1);
    CHECK_STR(err, "line 1: unterminated /* comment");
    CHECK_EQ_INT(parse("\n\\gexec\n", &s, err, sizeof(err)), -1);
    CHECK_STR(err, "line 2: \\gexec without a query before it");
    CHECK_EQ_INT(parse("SELECT 1 \\g out.txt\n", &s, err, sizeof(err)), -1);
    CHECK_STR(err, "line 1: \\g takes no arguments here");
    CHECK_EQ_INT(parse("SELECT \"x\n", &s, err, sizeof(err)), -1);
    CHECK_STR(err, "line 1: unterminated quoted identifier");
}

TEST(line_numbers_count_inside_quotes)
{
    sql_script s;
    char err[200];
    CHECK_EQ_INT(parse("SELECT 'a\nb', $$\n\n$$;\n/* x\ny */ SELECT 3;", &s, err, sizeof(err)), 0);
    CHECK_EQ_INT(s.n, 2);
    CHECK_EQ_INT(s.stmts[0].line, 1);
    CHECK_EQ_INT(s.stmts[1].line, 6);
    sql_script_free(&s);
}

int main(void)
{
    RUN(shipped_file_shape);
    RUN(quotes_and_comments_hide_terminators);
    RUN(empty_and_comment_only);
    RUN(refusals_name_the_line);
    RUN(line_numbers_count_inside_quotes);
    return check_done();
}
