/* The FATAL ErrorResponse the router sends to clients it turns away: wire layout per the
 * PostgreSQL protocol (type 'E', int32 length, S/V/C/M fields, terminator). */
#include "check.h"

#include <stdint.h>
#include <string.h>

#include "router/pg_refuse.h"

TEST(error_response_layout)
{
    char buf[512];
    size_t n = pg_error_response(buf, sizeof(buf), "57P03", "no primary");
    static const char want[] = "E\0\0\0\x26"
                               "SFATAL\0VFATAL\0C57P03\0Mno primary\0";
    CHECK_EQ_INT(n, sizeof(want)); /* sizeof includes the final NUL = the terminator */
    CHECK(memcmp(buf, want, sizeof(want)) == 0);
    uint32_t len = (uint32_t)(unsigned char)buf[1] << 24 | (uint32_t)(unsigned char)buf[2] << 16 |
                   (uint32_t)(unsigned char)buf[3] << 8 | (unsigned char)buf[4];
    CHECK_EQ_INT(len, n - 1);
}

TEST(error_response_bounds)
{
    char small[16];
    CHECK_EQ_INT(pg_error_response(small, sizeof(small), "57P03", "no primary"), 0);
    char buf[512];
    CHECK_EQ_INT(pg_error_response(buf, sizeof(buf), "5700", "bad sqlstate"), 0);
    char longmsg[1000];
    memset(longmsg, 'x', sizeof(longmsg) - 1);
    longmsg[sizeof(longmsg) - 1] = '\0';
    size_t n = pg_error_response(buf, sizeof(buf), "53300", longmsg);
    CHECK(n > 0 && n < 512);
    CHECK_EQ_INT(buf[n - 1], 0);
    CHECK_EQ_INT(buf[n - 2], 0);
}

int main(void)
{
    RUN(error_response_layout);
    RUN(error_response_bounds);
    return check_done();
}
