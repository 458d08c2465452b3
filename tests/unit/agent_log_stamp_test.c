/* Agent log timestamps: stamped unless the parent is appliance-init (which stamps lines
 * itself); LOG_TIMESTAMPS overrides; lib/log writes the ISO-8601 UTC stamp first. */
#include <regex.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent/log_stamp.h"
#include "check.h"
#include "log.h"

TEST(decision)
{
    CHECK_EQ_INT(log_stamp_decide(NULL, "appliance-init"), 0);
    CHECK_EQ_INT(log_stamp_decide(NULL, "bash"), 1);
    CHECK_EQ_INT(log_stamp_decide(NULL, NULL), 1); /* unknown parent: stamp */
    CHECK_EQ_INT(log_stamp_decide("", "appliance-init"), 0);
    CHECK_EQ_INT(log_stamp_decide("1", "appliance-init"), 1);
    CHECK_EQ_INT(log_stamp_decide("on", "appliance-init"), 1);
    CHECK_EQ_INT(log_stamp_decide("false", "bash"), 0);
    CHECK_EQ_INT(log_stamp_decide("OFF", "bash"), 0);
    CHECK_EQ_INT(log_stamp_decide("sometimes", "bash"), -1);
}

/* Captures one record written by lib/log (stderr redirected to a pipe). */
static void capture(char *out, size_t outsz)
{
    int p[2];
    CHECK(pipe(p) == 0);
    int saved = dup(2);
    dup2(p[1], 2);
    log_info("hello %d", 42);
    dup2(saved, 2);
    close(saved);
    close(p[1]);
    ssize_t n = read(p[0], out, outsz - 1);
    close(p[0]);
    out[n > 0 ? n : 0] = '\0';
}

TEST(stamped_record_format)
{
    char line[256];
    log_set_timestamps(1);
    capture(line, sizeof(line));
    regex_t re;
    CHECK(
        regcomp(
            &re,
            "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z info: hello 42\n$",
            REG_EXTENDED) == 0);
    int m = regexec(&re, line, 0, NULL, 0);
    regfree(&re);
    if (m != 0)
        printf("# got: %s", line);
    CHECK(m == 0);
    log_set_timestamps(0);
    capture(line, sizeof(line));
    CHECK_STR(line, "info: hello 42\n");
}

int main(void)
{
    RUN(decision);
    RUN(stamped_record_format);
    return check_done();
}
