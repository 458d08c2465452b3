/* Byte buffers for the store's binary formats (Raft commands, snapshots): LEB128 varints,
 * zigzag signed varints, length-prefixed byte strings. The writer grows up to a bound;
 * the reader never reads past its end and remembers the first error. */
#ifndef APPLIANCE_DCS_STORE_CMD_BUF_H
#define APPLIANCE_DCS_STORE_CMD_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cmd_writer {
    uint8_t *p;
    size_t len, cap, max;
    bool err; /* out of memory or over max */
} cmd_writer;

void cw_init(cmd_writer *w, size_t max);
void cw_free(cmd_writer *w);
void cw_u8(cmd_writer *w, uint8_t v);
void cw_u32le(cmd_writer *w, uint32_t v);
void cw_raw(cmd_writer *w, const void *p, size_t n);
void cw_uvar(cmd_writer *w, uint64_t v);
void cw_svar(cmd_writer *w, int64_t v);
void cw_bytes(cmd_writer *w, const void *p, size_t n);

typedef struct cmd_reader {
    const uint8_t *p;
    size_t len, off;
    bool err;
} cmd_reader;

void cr_init(cmd_reader *r, const void *p, size_t len);
uint8_t cr_u8(cmd_reader *r);
uint32_t cr_u32le(cmd_reader *r);
uint64_t cr_uvar(cmd_reader *r);
int64_t cr_svar(cmd_reader *r);
/* Zero-copy: *p points into the reader's buffer (NULL when n == 0). */
void cr_bytes(cmd_reader *r, const uint8_t **p, size_t *n);
size_t cr_left(const cmd_reader *r);

#endif
