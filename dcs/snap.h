/* Snapshot files: the store's serialised state at a log index, with its raft metadata.
 *
 * DIR/%016llx-%016llx.snap (term, index). Layout, little-endian:
 *   u64 magic "PGASNAP1" | u32 version (1) | u32 voter count | u64 index | u64 term |
 *   voters x u64 | u64 data length | data | u32 CRC-32C of everything before it
 * Saved under a temporary name, fdatasync'ed, renamed into place, directory fsync'ed, so
 * a crash leaves either the whole new file or none of it. Loading checks the CRC and every
 * field; a damaged file is skipped (reported) in favour of an older one. */
#ifndef APPLIANCE_SNAP_H
#define APPLIANCE_SNAP_H

#include "dcs/raft.h"
#include "dcs/wal_fs.h"

#define SNAP_MAX_BYTES (1ull << 32)

int snap_save(const wal_fs *fs, const char *dir, const raft_snapshot *s, char *err, size_t errlen);
/* Loads the newest valid snapshot. Returns 0 and fills *s (s->data is malloc'd: free it
 * with snap_free), 1 if there is none, negative on an I/O error. *skipped counts damaged
 * files passed over; err describes the last one. */
int snap_load_latest(const wal_fs *fs, const char *dir, raft_snapshot *s, int *skipped, char *err,
                     size_t errlen);
void snap_free(raft_snapshot *s);
/* Deletes snapshot files older than keep_index (and leftover temporary files). */
int snap_purge(const wal_fs *fs, const char *dir, uint64_t keep_index);
/* Parses a snapshot file image; s->data points into buf. 0, or -1 with err. */
int snap_decode(const uint8_t *buf, size_t len, raft_snapshot *s, char *err, size_t errlen);
/* Encodes into a malloc'd buffer. */
int snap_encode(const raft_snapshot *s, uint8_t **buf, size_t *len);

#endif
