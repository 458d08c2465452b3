/* Simulated disk for the raft simulator: a wal_fs whose writes live in a "page cache"
 * until fdatasync, whose names (create/rename/unlink) are durable only after sync_dir,
 * and which can lose power at any operation.
 *
 * sim_disk_fail_after(d, n): the n-th next operation and everything after it fail with
 * -EIO, as if power went out in the middle of it (a write in progress may be half done).
 * sim_disk_crash(d, rng): what survives a power loss: every file keeps its synced content
 * plus, for each unsynced write in order, either nothing, all of it, or a torn subset of
 * its 512-byte sectors; the directory keeps its synced names plus a random prefix of the
 * unsynced name operations. All choices come from the caller's random generator. */
#ifndef APPLIANCE_SIM_DISK_H
#define APPLIANCE_SIM_DISK_H

#include "dcs/wal_fs.h"

#include <stdint.h>

typedef struct sim_disk sim_disk;

sim_disk *sim_disk_new(void);
void sim_disk_free(sim_disk *d);
/* A wal_fs bound to d. */
void sim_disk_fs(sim_disk *d, wal_fs *fs);
void sim_disk_fail_after(sim_disk *d, uint32_t ops);
int sim_disk_failed(const sim_disk *d);
/* rng: returns uniformly random 64-bit values. */
void sim_disk_crash(sim_disk *d, uint64_t (*rng)(void *), void *rng_ctx);
uint64_t sim_disk_syncs(const sim_disk *d);

#endif
