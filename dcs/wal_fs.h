/* The file operations the WAL and snapshot code use, as a small vtable, so the same code
 * runs on the real disk (wal_fs_posix) and on the simulator's disk, which loses unsynced
 * writes and tears them on a simulated crash.
 *
 * Every call returns 0 (or a byte count) on success and a negative errno on failure.
 * Durability contract (what the callers rely on, and what the simulator enforces):
 *   - data written with pwrite is durable only after fdatasync on that file;
 *   - a created, renamed or unlinked name is durable only after sync_dir on its directory;
 *   - rename replaces the target atomically. */
#ifndef APPLIANCE_WAL_FS_H
#define APPLIANCE_WAL_FS_H

#include <stddef.h>
#include <stdint.h>

enum wal_fs_open { WAL_FS_READ = 0, WAL_FS_WRITE = 1, WAL_FS_CREATE = 2 /* new, truncated */ };

typedef struct wal_fs {
    void *ctx;
    int (*open)(void *ctx, const char *path, int mode);
    int (*close)(void *ctx, int fd);
    int64_t (*pread)(void *ctx, int fd, void *buf, size_t len, uint64_t off);
    int64_t (*pwrite)(void *ctx, int fd, const void *buf, size_t len, uint64_t off);
    int (*fdatasync)(void *ctx, int fd);
    int (*size)(void *ctx, int fd, uint64_t *size);
    /* extends the file with zeros to at least size bytes (preallocation) */
    int (*allocate)(void *ctx, int fd, uint64_t size);
    int (*rename)(void *ctx, const char *from, const char *to);
    int (*unlink)(void *ctx, const char *path);
    int (*mkdir)(void *ctx, const char *path); /* 0 if it exists already */
    int (*sync_dir)(void *ctx, const char *path);
    /* calls cb for every entry name (not . or ..); a non-zero cb result stops and is returned */
    int (*list_dir)(void *ctx, const char *path, int (*cb)(void *arg, const char *name), void *arg);
} wal_fs;

/* The real thing (ctx unused). */
extern const wal_fs wal_fs_posix;

/* Reads a whole file (at most max bytes) into a malloc'd buffer. */
int wal_fs_read_file(const wal_fs *fs, const char *path, uint64_t max, uint8_t **buf, size_t *len);
/* Writes all of buf at off, retrying short writes. */
int wal_fs_write_all(const wal_fs *fs, int fd, const void *buf, size_t len, uint64_t off);

#endif
