/* CRC-32C (Castagnoli), the checksum of WAL records, snapshot files and peer messages.
 * Chosen over CRC-32 (IEEE) because it has better error detection for the record sizes we
 * write and is what etcd's WAL uses; computed in software (slicing-by-8) so the code has
 * no CPU feature dependency in the static image. */
#ifndef APPLIANCE_CRC32C_H
#define APPLIANCE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues a CRC: crc32c_update(0, buf, len) is the CRC of buf; feeding a buffer in pieces
 * gives the same result as feeding it whole. */
uint32_t crc32c_update(uint32_t crc, const void *buf, size_t len);

static inline uint32_t crc32c(const void *buf, size_t len)
{
    return crc32c_update(0, buf, len);
}

#endif
