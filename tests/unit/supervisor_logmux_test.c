/* Log multiplexing: record format, partial lines joined, over-long lines split and
 * marked, JSON escaping, and drops under a stalled output counted and reported. */
#include "check.h"
#include "supervisor/logmux.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

/* Everything the mux wrote to a pipe, NUL-terminated (caller frees). */
static char *collect(int rd)
{
    size_t cap = (size_t)1 << 20, len = 0;
    char *buf = malloc(cap + 1);
    ssize_t n;
    fcntl(rd, F_SETFL, O_NONBLOCK);
    while (buf && len < cap && (n = read(rd, buf + len, cap - len)) > 0)
        len += (size_t)n;
    if (buf)
        buf[len] = '\0';
    return buf;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

TEST(text_records_and_partial_lines)
{
    int p[2];
    CHECK(pipe(p) == 0);
    struct logmux *mux = logmux_new(p[1], LOGMUX_TEXT, "pg-0", "pg");
    struct log_source *src = logmux_source_new(mux, "postgres", 42, "stderr");
    logmux_source_feed(mux, src, "hel", 3);
    logmux_source_feed(mux, src, "lo\r\nwor", 7);
    logmux_source_feed(mux, src, "ld\nno newline", 13);
    logmux_source_close(mux, src);
    logmux_flush(mux);
    char *out = collect(p[0]);
    /* "2026-11-25T22:00:00.123Z pg-0/pg postgres[42]: hello" */
    CHECK(strstr(out, "Z pg-0/pg postgres[42]: hello\n") != NULL);
    CHECK(strstr(out, "Z pg-0/pg postgres[42]: world\n") != NULL);
    CHECK(strstr(out, "Z pg-0/pg postgres[42]: no newline\n") != NULL);
    CHECK(out[4] == '-' && out[10] == 'T' && out[19] == '.' && out[23] == 'Z');
    CHECK_EQ_INT(count(out, "\n"), 3);
    free(out);
    logmux_free(mux);
    close(p[0]);
    close(p[1]);
}

TEST(long_line_split_and_marked)
{
    int p[2];
    CHECK(pipe(p) == 0);
    fcntl(p[1], F_SETPIPE_SZ, (long)1 << 20);
    struct logmux *mux = logmux_new(p[1], LOGMUX_TEXT, "c", "r");
    struct log_source *src = logmux_source_new(mux, "x", 1, "stdout");
    size_t n = LOGMUX_LINE_MAX * 2 + 100;
    char *big = malloc(n + 1);
    memset(big, 'a', n);
    big[n] = '\n';
    logmux_source_feed(mux, src, big, n + 1);
    logmux_source_close(mux, src);
    logmux_flush(mux);
    char *out = collect(p[0]);
    CHECK_EQ_INT(count(out, "\n"), 3);
    CHECK_EQ_INT(count(out, " [line continues]\n"), 2);
    /* No byte lost: 2*16384 + 100 'a's in total. */
    CHECK_EQ_INT(count(out, "a"), n);
    free(out);
    free(big);
    logmux_free(mux);
    close(p[0]);
    close(p[1]);
}

TEST(json_records)
{
    int p[2];
    CHECK(pipe(p) == 0);
    struct logmux *mux = logmux_new(p[1], LOGMUX_JSON, "pg-0", "pg");
    struct log_source *src = logmux_source_new(mux, "a\"b", 7, "stdout");
    const char line[] = "quote\" back\\ tab\t ctl\x01 bad\xff ok\xc3\xa9\n";
    logmux_source_feed(mux, src, line, sizeof(line) - 1);
    logmux_source_close(mux, src);
    logmux_flush(mux);
    char *out = collect(p[0]);
    CHECK(strstr(out, "\"container\":\"pg-0\",\"role\":\"pg\",\"child\":\"a\\\"b\",\"pid\":7,"
                      "\"stream\":\"stdout\",\"msg\":\"quote\\\" back\\\\ tab\\t ctl\\u0001 "
                      "bad\\ufffd ok\xc3\xa9\"}\n") != NULL);
    CHECK(strncmp(out, "{\"time\":\"", 9) == 0);
    free(out);
    logmux_free(mux);
    close(p[0]);
    close(p[1]);
}

TEST(stalled_output_drops_are_counted_and_reported)
{
    int p[2];
    CHECK(pipe(p) == 0);
    struct logmux *mux = logmux_new(p[1], LOGMUX_TEXT, "c", "r");
    struct log_source *flood = logmux_source_new(mux, "flood", 9, "stdout");
    struct log_source *calm = logmux_source_new(mux, "calm", 10, "stdout");
    char line[101];
    memset(line, 'f', 100);
    line[100] = '\n';
    /* Nobody reads the pipe: the flooder fills its quota, then its lines are dropped... */
    for (int i = 0; i < 20000; i++) {
        logmux_source_feed(mux, flood, line, sizeof(line));
        logmux_flush(mux);
    }
    CHECK(logmux_queued_bytes(mux) <= LOGMUX_QUEUE_MAX);
    struct logmux_stats st;
    logmux_get_stats(mux, &st);
    CHECK(st.dropped_records > 0);
    /* ...while the calm child still gets its line in. */
    logmux_source_feed(mux, calm, "still here\n", 11);
    logmux_get_stats(mux, &st);
    uint64_t dropped = st.dropped_records;
    /* The reader catches up: the drop report appears once the flooder has room. */
    size_t cap = (size_t)8 << 20, len = 0;
    char *all = malloc(cap + 1);
    all[0] = '\0';
    int more = 1;
    for (int round = 0; round < 1000 && more; round++) {
        if (round == 10) {
            logmux_source_feed(mux, flood, "after\n", 6);
            logmux_source_close(mux, flood);
            logmux_source_close(mux, calm);
        }
        char *chunk = collect(p[0]);
        size_t cl = strlen(chunk);
        if (len + cl < cap) {
            memcpy(all + len, chunk, cl + 1);
            len += cl;
        }
        free(chunk);
        more = logmux_flush(mux) || round < 10;
    }
    char *tail = collect(p[0]);
    if (len + strlen(tail) < cap)
        memcpy(all + len, tail, strlen(tail) + 1);
    free(tail);
    CHECK(strstr(all, "calm[10]: still here\n") != NULL);
    char want[128];
    snprintf(want, sizeof(want), "warn: dropped %llu record(s) (%llu bytes) of flood[9] stdout",
             (unsigned long long)dropped, (unsigned long long)dropped * 100);
    if (!strstr(all, want))
        printf("# missing '%s'\n", want);
    CHECK(strstr(all, want) != NULL);
    CHECK(strstr(all, "flood[9]: after\n") != NULL);
    free(all);
    logmux_free(mux);
    close(p[0]);
    close(p[1]);
}

TEST(json_escape_bounds)
{
    char out[8];
    /* Stops before a sequence that does not fit; never writes past cap. */
    CHECK_EQ_INT(logmux_json_escape(out, sizeof(out), "abc\x01", 4), 3);
    CHECK_EQ_INT(logmux_json_escape(out, 6, "\xe2\x82", 2), 6); /* truncated UTF-8 */
}

int main(void)
{
    RUN(text_records_and_partial_lines);
    RUN(long_line_split_and_marked);
    RUN(json_records);
    RUN(stalled_output_drops_are_counted_and_reported);
    RUN(json_escape_bounds);
    return check_done();
}
