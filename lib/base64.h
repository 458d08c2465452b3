/* Standard base64 (RFC 4648, with padding), as etcd's JSON gateway uses for keys and
 * values. The decoder is strict: it rejects bad characters, bad padding and non-zero
 * trailing bits, so a malformed client value gets a clear error instead of a guess. */
#ifndef APPLIANCE_BASE64_H
#define APPLIANCE_BASE64_H

#include <stddef.h>

/* Bytes needed for the encoding of n bytes, including the terminating NUL. */
size_t base64_encoded_size(size_t n);
/* Writes the NUL-terminated encoding into out (base64_encoded_size(n) bytes). */
void base64_encode(const void *in, size_t n, char *out);
/* Decodes len characters into out (at least len / 4 * 3 bytes). Returns the decoded
 * length, or -1 if the input is not valid base64. */
long base64_decode(const char *in, size_t len, void *out);

#endif
