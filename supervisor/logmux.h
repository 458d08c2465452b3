/* Log multiplexing: every child's stdout and stderr become records in ONE stream on
 * appliance-init's stdout, one line per record:
 *
 *   2026-11-25T22:00:00.123Z <container>/<role> <child>[pid]: text
 *
 * or one JSON object per line with LOG_FORMAT=json. Only this module writes to that
 * stream and it writes whole records, so lines never tear or interleave.
 *
 * Bounds (why: a flooding child must never block the supervisor or the other children):
 *   - a line longer than LOGMUX_LINE_MAX is split into records, each but the last marked
 *     " [line continues]" (JSON: "continues":true);
 *   - the queue of formatted records waiting for stdout is capped (LOGMUX_QUEUE_MAX) and
 *     each source may hold at most LOGMUX_SOURCE_QUOTA of it; a record that does not fit
 *     is dropped and counted, and the count is reported in the stream as soon as the
 *     source has room again (or when it closes, or at exit) — never silently.
 * The supervisor keeps reading children's pipes whatever stdout does, so children never
 * block on their own output; only the slow consumer of init's stdout loses lines, and
 * the flooding source loses them first (its quota fills, the others' does not). */
#ifndef APPLIANCE_LOGMUX_H
#define APPLIANCE_LOGMUX_H

#include <stddef.h>
#include <stdint.h>

#define LOGMUX_LINE_MAX     ((size_t)16384)
#define LOGMUX_QUEUE_MAX    ((size_t)1024 * 1024)
#define LOGMUX_SOURCE_QUOTA ((size_t)256 * 1024)

enum logmux_format { LOGMUX_TEXT, LOGMUX_JSON };

struct logmux;
struct log_source;

/* out_fd: where the stream goes (init's stdout). container/role: the record prefix.
 * If out_fd is a pipe or socket it is switched to non-blocking (restored by free). */
struct logmux *logmux_new(int out_fd, enum logmux_format fmt, const char *container,
                          const char *role);
/* Writes what is queued (blocking), reports unreported drops, frees. */
void logmux_free(struct logmux *mux);

/* The name and pid init's own records carry ("appliance-init", getpid()). */
void logmux_set_self(struct logmux *mux, const char *name, int pid);

/* A child's pipe: child name, pid, stream name ("stdout"/"stderr", a static string). */
struct log_source *logmux_source_new(struct logmux *mux, const char *child, int pid,
                                     const char *stream);
/* Reads once from fd (non-blocking) into the source's line buffer and queues every
 * complete line. Returns bytes read, 0 at EOF, -1 with errno (EAGAIN: nothing there). */
long logmux_source_read(struct logmux *mux, struct log_source *src, int fd);
/* Same processing for bytes already in memory (tests, fuzzing). */
void logmux_source_feed(struct logmux *mux, struct log_source *src, const char *buf, size_t len);
/* Queues a pending partial line, reports drops, and releases the source (its queued
 * records are still written). */
void logmux_source_close(struct logmux *mux, struct log_source *src);

/* A record from init itself: "level: text". */
void logmux_say(struct logmux *mux, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes as much as the output takes without blocking. Returns 1 if records remain
 * (wait for EPOLLOUT when logmux_out_pollable), 0 when the queue is empty. */
int logmux_flush(struct logmux *mux);
/* Whether the output fd can be watched with epoll (pipe, socket, tty). */
int logmux_out_pollable(const struct logmux *mux);
size_t logmux_queued_bytes(const struct logmux *mux);

struct logmux_stats {
    uint64_t records, dropped_records, dropped_bytes;
};
void logmux_get_stats(const struct logmux *mux, struct logmux_stats *st);

/* Appends the JSON string escape of s[0..len) to out (capacity cap) without quotes;
 * invalid UTF-8 becomes U+FFFD. Returns bytes written (stops early if cap is reached).
 * Exposed for unit tests. */
size_t logmux_json_escape(char *out, size_t cap, const char *s, size_t len);

#endif
