/* CRC-32C (Castagnoli), the checksum of WAL records, snapshot files and peer messages.
 * Chosen over CRC-32 (IEEE) because it has better error detection for the record sizes we
 * write and is what etcd's WAL uses; computed with the SSE4.2 instruction when cpuid says
 * the CPU has it, else in software (slicing-by-8), so the static image runs anywhere. */
#ifndef APPLIANCE_CRC32C_H
#define APPLIANCE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues a CRC: crc32c_update(0, buf, len) is the CRC of buf; feeding a buffer in pieces
 * gives the same result as feeding it whole. */
uint32_t crc32c_update(uint32_t crc, const void *buf, size_t len);
/* The software version alone (tests check both agree). */
uint32_t crc32c_update_sw(uint32_t crc, const void *buf, size_t len);

static inline uint32_t crc32c(const void *buf, size_t len)
{
    return crc32c_update(0, buf, len);
}

#endif
