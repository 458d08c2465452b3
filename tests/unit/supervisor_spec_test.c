/* Services-file parsing and validation: every error names the key and the value. */
#include "check.h"
#include "supervisor/spec.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

TEST(full_line)
{
    struct svc_spec s;
    spec_init(&s);
    char err[256];
    int r = spec_parse_line("web restart=on-failure stop-signal=INT notify-fd=3 after=db,cache "
                            "env=A=1 env='B=two words' permanent-exit=78 healthy-after=250ms "
                            "-- /bin/sh -c \"echo \\\"hi\\\" there\" 'x y'",
                            &s, err, sizeof(err));
    CHECK_EQ_INT(r, 1);
    CHECK_STR(s.name, "web");
    CHECK_EQ_INT(s.restart, RESTART_ON_FAILURE);
    CHECK_EQ_INT(s.stop_signal, SIGINT);
    CHECK_EQ_INT(s.notify_fd, 3);
    CHECK_STR(s.after[0], "db");
    CHECK_STR(s.after[1], "cache");
    CHECK(s.after[2] == NULL);
    CHECK_STR(s.env[0], "A=1");
    CHECK_STR(s.env[1], "B=two words");
    CHECK_EQ_INT(s.permanent_exit, 78);
    CHECK_EQ_INT(s.healthy_ms, 250);
    CHECK_STR(s.argv[0], "/bin/sh");
    CHECK_STR(s.argv[1], "-c");
    CHECK_STR(s.argv[2], "echo \"hi\" there");
    CHECK_STR(s.argv[3], "x y");
    CHECK(s.argv[4] == NULL);
    spec_free(&s);
}

TEST(comments_and_blank)
{
    struct svc_spec s;
    spec_init(&s);
    char err[256];
    CHECK_EQ_INT(spec_parse_line("   # nothing here", &s, err, sizeof(err)), 0);
    CHECK_EQ_INT(spec_parse_line("", &s, err, sizeof(err)), 0);
    CHECK_EQ_INT(spec_parse_line("  \t\n", &s, err, sizeof(err)), 0);
}

static void expect_error(const char *line, const char *needle)
{
    struct svc_spec s;
    spec_init(&s);
    char err[256] = "";
    int r = spec_parse_line(line, &s, err, sizeof(err));
    spec_free(&s);
    if (r != -1 || !strstr(err, needle)) {
        printf("# line '%s' -> %d '%s' (wanted error with '%s')\n", line, r, err, needle);
        CHECK(0);
    }
}

TEST(bad_values_named)
{
    expect_error("a restart=sometimes -- x", "restart='sometimes'");
    expect_error("a stop-signal=SIGFOO -- x", "stop-signal='SIGFOO'");
    expect_error("a notify-fd=2 -- x", "notify-fd='2'");
    expect_error("a notify-fd=64 -- x", "notify-fd='64'");
    expect_error("a permanent-exit=256 -- x", "permanent-exit='256'");
    expect_error("a healthy-after=5m -- x", "healthy-after='5m'");
    expect_error("a env=NOEQUALS -- x", "env='NOEQUALS'");
    expect_error("a colour=red -- x", "unknown key 'colour'");
    expect_error("a restart=always", "missing '-- COMMAND");
    expect_error("a --", "missing '-- COMMAND");
    expect_error("bad/name -- x", "service name 'bad/name'");
    expect_error("a -- sh -c 'oops", "unterminated");
    expect_error("a after=b/c -- x", "after='b/c'");
}

TEST(value_parsers)
{
    int sig;
    CHECK_EQ_INT(spec_parse_signal("SIGTERM", &sig), 0);
    CHECK_EQ_INT(sig, SIGTERM);
    CHECK_EQ_INT(spec_parse_signal("quit", &sig), 0);
    CHECK_EQ_INT(sig, SIGQUIT);
    CHECK_EQ_INT(spec_parse_signal("2", &sig), 0);
    CHECK_EQ_INT(sig, SIGINT);
    CHECK_EQ_INT(spec_parse_signal("11", &sig), -1); /* SIGSEGV is no stop signal */
    uint64_t ms;
    CHECK_EQ_INT(spec_parse_duration_ms("10", 3600000, &ms), 0);
    CHECK_EQ_INT(ms, 10000);
    CHECK_EQ_INT(spec_parse_duration_ms("10s", 3600000, &ms), 0);
    CHECK_EQ_INT(spec_parse_duration_ms("1500ms", 3600000, &ms), 0);
    CHECK_EQ_INT(ms, 1500);
    CHECK_EQ_INT(spec_parse_duration_ms("3601", 3600000, &ms), -1);
    CHECK_EQ_INT(spec_parse_duration_ms("-1", 3600000, &ms), -1);
    CHECK_EQ_INT(spec_parse_duration_ms("99999999999999999999", 3600000, &ms), -1);
    CHECK_EQ_INT(spec_parse_duration_ms("1.5", 3600000, &ms), -1);
    long n;
    CHECK_EQ_INT(spec_parse_int("12x", 0, 100, &n), -1);
    CHECK_EQ_INT(spec_parse_int("+1", 0, 100, &n), -1);
}

static int load(const char *text, struct svc_spec *specs, char *err, size_t errlen)
{
    char path[] = "/tmp/spec_test.XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return -2;
    if (write(fd, text, strlen(text)) < 0) {
        close(fd);
        return -2;
    }
    close(fd);
    int n = spec_load_file(path, specs, SPEC_MAX_SERVICE, err, errlen);
    unlink(path);
    return n;
}

TEST(file_and_graph)
{
    static struct svc_spec specs[SPEC_MAX_SERVICE];
    char err[512];
    int n = load("# two services\ndb notify-fd=3 -- /bin/db\n\nweb after=db -- /bin/web\n", specs,
                 err, sizeof(err));
    CHECK_EQ_INT(n, 2);
    CHECK_STR(specs[1].after[0], "db");
    for (int i = 0; i < n; i++)
        spec_free(&specs[i]);
    CHECK_EQ_INT(load("a after=b -- x\nb after=a -- y\n", specs, err, sizeof(err)), -1);
    CHECK(strstr(err, "cycle") != NULL);
    CHECK_EQ_INT(load("a after=zz -- x\n", specs, err, sizeof(err)), -1);
    CHECK(strstr(err, "after='zz' names no service") != NULL);
    CHECK_EQ_INT(load("a -- x\na -- y\n", specs, err, sizeof(err)), -1);
    CHECK(strstr(err, "defined twice") != NULL);
    CHECK_EQ_INT(load("a -- x\nb restart=maybe -- y\n", specs, err, sizeof(err)), -1);
    CHECK(strstr(err, ":2: restart='maybe'") != NULL);
    CHECK_EQ_INT(load("# only a comment\n", specs, err, sizeof(err)), -1);
    CHECK(strstr(err, "no service") != NULL);
}

int main(void)
{
    RUN(full_line);
    RUN(comments_and_blank);
    RUN(bad_values_named);
    RUN(value_parsers);
    RUN(file_and_graph);
    return check_done();
}
