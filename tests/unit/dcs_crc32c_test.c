/* CRC-32C: the known check value, the dispatching version (SSE4.2 instruction on CPUs
 * that have it) agreeing with the software tables on every length, alignment and split. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dcs/crc32c.h"

TEST(check_value)
{
    CHECK_EQ_INT((long long)crc32c("123456789", 9), 0xE3069283LL);
    CHECK_EQ_INT((long long)crc32c_update_sw(0, "123456789", 9), 0xE3069283LL);
    CHECK_EQ_INT((long long)crc32c("", 0), 0);
}

TEST(dispatch_agrees_with_tables)
{
    static unsigned char buf[4096 + 16];
    unsigned seed = 12345;
    for (size_t i = 0; i < sizeof(buf); i++) {
        seed = seed * 1103515245u + 12345u;
        buf[i] = (unsigned char)(seed >> 16);
    }
    int bad = 0;
    for (size_t off = 0; off < 9; off++)
        for (size_t len = 0; len < 300; len++)
            if (crc32c_update(7, buf + off, len) != crc32c_update_sw(7, buf + off, len))
                bad++;
    CHECK_EQ_INT(bad, 0);
    /* in pieces == whole */
    uint32_t whole = crc32c(buf, 4096), parts = 0;
    for (size_t at = 0; at < 4096; at += 333)
        parts = crc32c_update(parts, buf + at, at + 333 > 4096 ? 4096 - at : 333);
    CHECK(whole == parts);
    CHECK(whole == crc32c_update_sw(0, buf, 4096));
}

int main(void)
{
    RUN(check_value);
    RUN(dispatch_agrees_with_tables);
    return check_done();
}
