/* Writes snapshot files on a thread of its own, so the event loop keeps serving while a
 * snapshot's fdatasync waits for the disk (a synchronous save stalled every member's loop
 * for 15-90 ms per snapshot under load: the largest source of tail latency in bench/dcs).
 *
 * Bounded: one snapshot at a time. The caller serialises the store on the loop (a
 * consistent image at one applied index), hands a copy over with snap_writer_submit, and
 * learns the outcome through `done`, called on the loop thread. Only then may the snapshot
 * be recorded in the WAL and older WAL segments released (raft.h: the file must be durable
 * before its marker). */
#ifndef APPLIANCE_DCS_SNAP_WRITER_H
#define APPLIANCE_DCS_SNAP_WRITER_H

#include <stdbool.h>
#include <stdint.h>

#include "dcs/raft.h"
#include "evloop.h"

typedef struct snap_writer snap_writer;

/* rc 0: the file for (index, term) is durable; otherwise err describes the failure. */
typedef void (*snap_writer_done_cb)(void *arg, uint64_t index, uint64_t term, int rc,
                                    const char *err);

snap_writer *snap_writer_new(evloop *loop, const char *dir, snap_writer_done_cb done, void *arg);
/* Takes ownership of data (malloc'd, s->len bytes; s->data is ignored). Returns 0, or -1 if
 * a snapshot is still being written (the caller tries again later) or on failure. */
int snap_writer_submit(snap_writer *w, const raft_snapshot *s, uint8_t *data);
bool snap_writer_busy(const snap_writer *w);
/* Waits for a snapshot in progress (its callback is not called), stops the thread. */
void snap_writer_free(snap_writer *w);

#endif
