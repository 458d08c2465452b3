/* Protocol Buffers wire format, the small subset gRPC messages of etcd need: varints
 * (wire type 0), 64-bit (1), length-delimited (2) and 32-bit (5) fields. Groups (3, 4) are
 * rejected. Decoding is strict: truncation, varints longer than 10 bytes, field number 0 or
 * a length past the end are errors; unknown fields are skipped by the caller simply not
 * looking at them (pb_next always consumes a whole field). Encoding writes into a buffer
 * with a hard size bound; a nested message is length-prefixed when it ends. */
#ifndef APPLIANCE_DCS_PB_WIRE_H
#define APPLIANCE_DCS_PB_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pb_wire_type { PB_VARINT = 0, PB_I64 = 1, PB_LEN = 2, PB_I32 = 5 };

/* ---- decoding ---- */
typedef struct pb_reader {
    const uint8_t *p, *end;
} pb_reader;

typedef struct pb_field {
    uint32_t num;
    int wire;
    uint64_t u;         /* VARINT, I64, I32 */
    const uint8_t *ptr; /* LEN */
    size_t len;
} pb_field;

void pb_reader_init(pb_reader *r, const uint8_t *data, size_t len);
/* 1: *f holds the next field; 0: clean end of the message; -1: malformed. */
int pb_next(pb_reader *r, pb_field *f);

/* ---- encoding ---- */
typedef struct pb_buf {
    uint8_t *data;
    size_t len, cap, max;
    bool failed; /* out of memory or over max: the message is unusable */
} pb_buf;

void pb_buf_init(pb_buf *b, size_t max);
void pb_buf_free(pb_buf *b);
void pb_raw(pb_buf *b, const void *data, size_t len);
void pb_varint(pb_buf *b, uint64_t v);
void pb_tag(pb_buf *b, uint32_t field, int wire);
/* proto3 scalars: nothing is written for 0 / false (the default). */
void pb_u64(pb_buf *b, uint32_t field, uint64_t v);
void pb_i64(pb_buf *b, uint32_t field, int64_t v);
void pb_bool(pb_buf *b, uint32_t field, bool v);
/* bytes/string: nothing for an empty singular field; pb_bytes_rep always writes (repeated). */
void pb_bytes(pb_buf *b, uint32_t field, const void *data, size_t len);
void pb_bytes_rep(pb_buf *b, uint32_t field, const void *data, size_t len);
void pb_str(pb_buf *b, uint32_t field, const char *s);
/* Nested message: pb_begin returns a mark for pb_end, which writes the length prefix. An
 * empty nested message is still written (presence matters, e.g. a oneof member). */
size_t pb_begin(pb_buf *b, uint32_t field);
void pb_end(pb_buf *b, size_t mark);

/* Size of v as a varint (1..10). */
size_t pb_varint_size(uint64_t v);

#endif
