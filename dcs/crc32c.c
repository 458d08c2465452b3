/* CRC-32C: the SSE4.2 crc32 instruction when the CPU has it (checked once with cpuid, so
 * the static image still runs on any x86-64), else software slicing-by-8 with tables built
 * on first use. Every put is checksummed ~5 times (WAL record, Raft message, peer frame,
 * on the leader and on each follower): in software that was 8 % of the leader's
 * instructions. */
#include "dcs/crc32c.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <string.h>
#define CRC_HW 1
#endif

static uint32_t crc_table[8][256];
static int crc_ready;

static void crc_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        crc_table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = crc_table[0][n];
        for (int k = 1; k < 8; k++) {
            c = crc_table[0][c & 0xff] ^ (c >> 8);
            crc_table[k][n] = c;
        }
    }
    crc_ready = 1;
}

#ifdef CRC_HW
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t len)
{
    uint64_t c = ~crc;
    while (len && ((uintptr_t)p & 7)) {
        c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
        len--;
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = __builtin_ia32_crc32di(c, w);
        p += 8;
        len -= 8;
    }
    while (len--)
        c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
    return ~(uint32_t)c;
}

static int hw_state; /* 0 unknown, 1 yes, -1 no */

static int hw_available(void)
{
    if (hw_state == 0) {
        unsigned a, b, c, d;
        hw_state = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSE4_2) ? 1 : -1;
    }
    return hw_state > 0;
}
#endif

/* The table version, always (tests compare it with the instruction). */
uint32_t crc32c_update_sw(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    if (!crc_ready)
        crc_init();
    crc = ~crc;
    while (len && ((uintptr_t)p & 7)) {
        crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
        len--;
    }
    while (len >= 8) {
        uint32_t lo =
            (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        uint32_t hi =
            (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
        lo ^= crc;
        crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
              crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^ crc_table[3][hi & 0xff] ^
              crc_table[2][(hi >> 8) & 0xff] ^ crc_table[1][(hi >> 16) & 0xff] ^
              crc_table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

uint32_t crc32c_update(uint32_t crc, const void *buf, size_t len)
{
#ifdef CRC_HW
    if (hw_available())
        return crc_hw(crc, buf, len);
#endif
    return crc32c_update_sw(crc, buf, len);
}
