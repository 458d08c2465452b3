/* One HTTP/2 server connection (cleartext, prior knowledge) on lib/evloop, driven through
 * libnghttp2's mem_recv/mem_send API: nghttp2 parses and frames, we own the socket, the
 * buffers and the limits. Used by the gRPC front (grpc_front.h) on the client port.
 *
 * Bounds: concurrent streams (SETTINGS_MAX_CONCURRENT_STREAMS), header list size, queued
 * output per stream (a slow reader is reset, never buffered without end), bytes taken from
 * nghttp2 per turn while the socket is not writable, idle timeout. Flow control is
 * nghttp2's: we never hand it more than the peer's window allows, and received DATA is
 * acknowledged only as the application consumes it (the gRPC layer bounds messages). */
#ifndef APPLIANCE_DCS_H2_CONN_H
#define APPLIANCE_DCS_H2_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "evloop.h"

typedef struct h2_conn h2_conn;
typedef struct h2_stream h2_stream;

typedef struct h2_limits {
    uint32_t max_streams;        /* concurrent streams per connection; default 128 */
    uint32_t max_header_bytes;   /* header list size; default 16 KiB */
    size_t max_stream_out_bytes; /* queued response bytes per stream; default 4 MiB */
    size_t max_conn_out_bytes;   /* the same over all streams; default 16 MiB */
    uint32_t idle_timeout_ms;    /* no stream and no bytes for this long: close; 300 s */
    uint32_t window_bytes;       /* initial stream window we announce; default 1 MiB */
} h2_limits;

void h2_limits_default(h2_limits *lim);

typedef struct h2_handler {
    /* Headers of a new request are complete (path and content-type may be ""). */
    void (*on_request)(h2_stream *st, const char *method, const char *path,
                       const char *content_type, void *arg);
    void (*on_data)(h2_stream *st, const uint8_t *data, size_t len, void *arg);
    /* The client closed its side (END_STREAM). */
    void (*on_end)(h2_stream *st, void *arg);
    /* The stream is gone (finished, reset or the connection closed): forget st. */
    void (*on_close)(h2_stream *st, void *arg);
} h2_handler;

/* Takes over fd (non-blocking, connected); initial holds bytes already read from it
 * (none when the preface was only peeked). NULL on failure (fd closed). on_gone runs when
 * the connection is freed (after every stream's on_close). */
h2_conn *h2_conn_new(evloop *loop, int fd, const h2_limits *lim, const h2_handler *h, void *arg,
                     void (*on_gone)(h2_conn *c, void *arg));
/* Closes the connection (streams get on_close). Safe from inside handler callbacks. */
void h2_conn_close(h2_conn *c);
/* Server stop: sends GOAWAY (one best-effort write), then closes like h2_conn_close. */
void h2_conn_shutdown(h2_conn *c);

void h2_stream_set_user(h2_stream *st, void *user);
void *h2_stream_user(const h2_stream *st);

typedef struct h2_header {
    const char *name, *value;
} h2_header;

/* Response headers (":status" added by us) and a streaming body. 0 or -1. */
int h2_stream_begin(h2_stream *st, int status, const h2_header *hdrs, size_t n);
/* Queues body bytes. -1 when the stream is gone, or when bytes already wait and these
 * would take the stream's or the connection's queue past its limit (the caller then
 * resets it); a write into an empty queue is always taken. */
int h2_stream_write(h2_stream *st, const void *data, size_t len);
/* The same for two pieces taken as one (a gRPC prefix and its message). */
int h2_stream_write2(h2_stream *st, const void *a, size_t alen, const void *b, size_t blen);
/* Ends the response with trailers after the queued body; without h2_stream_begin the
 * headers and trailers go out as one HEADERS frame ("trailers-only", as gRPC errors). */
int h2_stream_end(h2_stream *st, const h2_header *trailers, size_t n);
/* RST_STREAM with an HTTP/2 error code. */
void h2_stream_reset(h2_stream *st, uint32_t error_code);
/* Bytes queued and not yet handed to nghttp2 (for back-pressure on watch streams). */
size_t h2_stream_queued(const h2_stream *st);

#endif
