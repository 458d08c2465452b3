/* Watch hub: etcd v3 watch semantics on top of the MVCC store.
 *
 * A watch_stream is one /v3/watch request (a gRPC bidi stream through the gateway); it
 * holds watchers (IDs from 0 per stream, or the client's own) and one FIFO of responses
 * to send. Watchers are "synced" (live events from the store hook are queued directly) or
 * "unsynced" (replaying history from start_revision, or fallen behind): unsynced watchers
 * are fed from mvcc_history in bounded batches only when the stream's queue has room, so
 * a replay or a slow client never grows memory past the stream's bounds (etcd's
 * synced/unsynced/victim design). A watcher whose next revision gets compacted away is
 * canceled with compact_revision (etcd's answer; the client re-reads and re-watches).
 *
 * Everything runs on the caller's thread; notify() tells the server a stream has output
 * (call watch_stream_next until it returns false). */
#ifndef APPLIANCE_DCS_WATCH_H
#define APPLIANCE_DCS_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dcs/mvcc.h"
#include "dcs/v3_request.h"
#include "dcs/v3_response.h"

typedef struct watch_limits {
    size_t max_queue_bytes;       /* per stream; default 4 MiB */
    size_t max_queue_items;       /* per stream; default 1024 */
    size_t max_watchers;          /* per stream; default 1024 */
    size_t replay_batch;          /* events per history batch; default 256 */
    size_t fragment_bytes;        /* split point for fragment=true; default 1.5 MiB */
    int64_t progress_interval_ms; /* progress_notify period; default 600000 (etcd) */
} watch_limits;

typedef struct watch_hub watch_hub;
typedef struct watch_stream watch_stream;

void watch_limits_default(watch_limits *lim);
/* Installs itself as the store's watch hook. */
watch_hub *watch_hub_new(mvcc *s, const watch_limits *lim);
void watch_hub_free(watch_hub *h);
/* Number of watchers over all streams. */
size_t watch_hub_watchers(const watch_hub *h);
/* Progress notifications for idle synced watchers that asked for them. */
void watch_hub_tick(watch_hub *h, int64_t now_ms);

watch_stream *watch_stream_new(watch_hub *h, void (*notify)(void *arg), void *arg);
/* Drops the stream, its watchers and queued responses. */
void watch_stream_free(watch_stream *st);
/* Handles one parsed /v3/watch request message (create, cancel, progress). */
void watch_stream_request(watch_stream *st, const v3_request *req, int64_t now_ms);

/* The next response to send: *resp and *header_revision (0 = omit) stay valid until the
 * next call or watch_stream_free. False when nothing is pending. */
bool watch_stream_next(watch_stream *st, v3_watch_resp *resp, int64_t *header_revision);
size_t watch_stream_queued_bytes(const watch_stream *st);
/* True while some watcher still replays history: when watch_stream_next returned false
 * and this is true, call watch_stream_next again later (next loop turn). */
bool watch_stream_busy(const watch_stream *st);

#endif
