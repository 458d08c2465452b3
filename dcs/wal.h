/* Segmented write-ahead log of the raft core's durable state: entries, hard state
 * (term/vote/commit) and snapshot markers.
 *
 * Layout: DIR/%016llx.wal segments (sequence number), each preallocated to
 * segment_bytes (so an fdatasync does not have to write file-size metadata) and starting
 * with a header record, the current snapshot marker and the current hard state (so old
 * segments can be deleted). Records are 8-byte aligned:
 *   u32 payload length | u32 CRC-32C of the rest | u8 type | u8 flags | u16 0 |
 *   u64 batch number | payload | zero padding
 * Each wal_sync() writes one batch (flags bit 0 marks its last record) with one pwrite and
 * ONE fdatasync (group commit); a batch never spans segments.
 *
 * Recovery: a batch counts only if its closing record is on disk (all or nothing). Damage
 * or an unclosed batch at the end of the LAST segment is a torn tail (the batch whose
 * fdatasync never returned) if no intact record of a LATER batch follows it: the tail is
 * zeroed, the log is closed with a batch of its own under a fresh number, and logging
 * continues. Anything else (damage in an older segment, or followed by a later batch) is
 * corruption of acknowledged data: wal_open refuses with an error naming the file and
 * offset and changes nothing.
 * An entry record with index i replaces any earlier entry >= i (log truncation). */
#ifndef APPLIANCE_WAL_H
#define APPLIANCE_WAL_H

#include "dcs/raft.h"
#include "dcs/wal_fs.h"

typedef struct wal wal;

typedef struct wal_options {
    uint64_t segment_bytes; /* default 16 MiB */
} wal_options;

typedef struct wal_state {
    raft_hard_state hs;
    uint64_t snap_index, snap_term; /* latest snapshot marker */
    raft_entry *entries;            /* snap_index+1 ..; data malloc'd per entry */
    size_t n_entries;
    int torn_tail; /* 1 if recovery cut a torn tail */
} wal_state;

#define WAL_MAX_RECORD (64u << 20)

/* Opens (creating if needed) the WAL in dir and recovers its state into *st. */
int wal_open(const wal_fs *fs, const char *dir, const wal_options *opt, wal **out, wal_state *st,
             char *err, size_t errlen);
/* Buffers entries, then hard state (either may be empty/NULL) for the next wal_sync. */
int wal_save(wal *w, const raft_hard_state *hs, const raft_entry *ents, size_t n);
/* Buffers a snapshot marker: entries <= index are covered by the snapshot file at index
 * (which must already be durable); reset=1 also drops every entry after it (a snapshot
 * installed from the leader replaces the whole log). */
int wal_mark_snapshot(wal *w, uint64_t index, uint64_t term, int reset);
/* Writes the buffered batch and makes it durable with one fdatasync. */
int wal_sync(wal *w);
/* Deletes segments holding only entries <= snap_index (after its marker is synced). */
int wal_release(wal *w, uint64_t snap_index);
void wal_close(wal *w);
/* fdatasync calls made so far (for tests and benchmarks) */
uint64_t wal_sync_count(const wal *w);

/* Reconciles a freshly opened WAL with the newest valid snapshot file (index/term, 0 =
 * none) and makes the WAL agree with it durably. A snapshot newer than the WAL's marker
 * (a crash came between saving a snapshot and recording it) keeps the WAL entries after it
 * only if the WAL holds that snapshot's last entry (same index and term), as an installed
 * snapshot replaces a log that does not match; the marker is then written and synced, so
 * a later restart sees the same log. Error if the WAL's marker is newer than every valid
 * snapshot file, or if entries are missing after the snapshot. */
int wal_adopt_snapshot(wal *w, wal_state *st, uint64_t snap_index, uint64_t snap_term, char *err,
                       size_t errlen);
void wal_state_free(wal_state *st);

/* Parses one segment image for the fuzzer and tests: returns 0 and fills st (as recovery
 * of a WAL holding only this segment as its last segment would), or -1 with err. */
int wal_parse_segment(const uint8_t *buf, size_t len, wal_state *st, size_t *valid_end, char *err,
                      size_t errlen);

#endif
