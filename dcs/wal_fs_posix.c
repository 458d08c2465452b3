/* wal_fs over POSIX: pread/pwrite/fdatasync/fallocate, rename, and fsync of the directory. */
#include "dcs/wal_fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int px_open(void *ctx, const char *path, int mode)
{
    int flags = O_CLOEXEC;
    if (mode == WAL_FS_READ)
        flags |= O_RDONLY;
    else if (mode == WAL_FS_WRITE)
        flags |= O_RDWR;
    else
        flags |= O_RDWR | O_CREAT | O_TRUNC;
    int fd = open(path, flags, 0600);
    return fd < 0 ? -errno : fd;
}

static int px_close(void *ctx, int fd)
{
    return close(fd) < 0 ? -errno : 0;
}

static int64_t px_pread(void *ctx, int fd, void *buf, size_t len, uint64_t off)
{
    ssize_t n;
    do
        n = pread(fd, buf, len, (off_t)off);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

static int64_t px_pwrite(void *ctx, int fd, const void *buf, size_t len, uint64_t off)
{
    ssize_t n;
    do
        n = pwrite(fd, buf, len, (off_t)off);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

static int px_fdatasync(void *ctx, int fd)
{
    return fdatasync(fd) < 0 ? -errno : 0;
}

static int px_size(void *ctx, int fd, uint64_t *size)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    *size = (uint64_t)st.st_size;
    return 0;
}

static int px_allocate(void *ctx, int fd, uint64_t size)
{
    int rc = posix_fallocate(fd, 0, (off_t)size);
    if (rc == EOPNOTSUPP || rc == EINVAL) /* e.g. tmpfs without fallocate: extend instead */
        return ftruncate(fd, (off_t)size) < 0 ? -errno : 0;
    return -rc;
}

static int px_rename(void *ctx, const char *from, const char *to)
{
    return rename(from, to) < 0 ? -errno : 0;
}

static int px_unlink(void *ctx, const char *path)
{
    return unlink(path) < 0 ? -errno : 0;
}

static int px_mkdir(void *ctx, const char *path)
{
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

static int px_sync_dir(void *ctx, const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

static int px_list_dir(void *ctx, const char *path, int (*cb)(void *arg, const char *name),
                       void *arg)
{
    DIR *d = opendir(path);
    if (!d)
        return -errno;
    int rc = 0;
    const struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        rc = cb(arg, de->d_name);
    }
    closedir(d);
    return rc;
}

const wal_fs wal_fs_posix = {
    .open = px_open,
    .close = px_close,
    .pread = px_pread,
    .pwrite = px_pwrite,
    .fdatasync = px_fdatasync,
    .size = px_size,
    .allocate = px_allocate,
    .rename = px_rename,
    .unlink = px_unlink,
    .mkdir = px_mkdir,
    .sync_dir = px_sync_dir,
    .list_dir = px_list_dir,
};

int wal_fs_read_file(const wal_fs *fs, const char *path, uint64_t max, uint8_t **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    int fd = fs->open(fs->ctx, path, WAL_FS_READ);
    if (fd < 0)
        return fd;
    uint64_t size;
    int rc = fs->size(fs->ctx, fd, &size);
    if (rc == 0 && size > max)
        rc = -EFBIG;
    uint8_t *b = NULL;
    if (rc == 0) {
        b = malloc(size ? size : 1);
        if (!b)
            rc = -ENOMEM;
    }
    uint64_t got = 0;
    while (rc == 0 && got < size) {
        int64_t n = fs->pread(fs->ctx, fd, b + got, (size_t)(size - got), got);
        if (n < 0)
            rc = (int)n;
        else if (n == 0)
            break; /* shrank under us: take what is there */
        else
            got += (uint64_t)n;
    }
    fs->close(fs->ctx, fd);
    if (rc) {
        free(b);
        return rc;
    }
    *buf = b;
    *len = (size_t)got;
    return 0;
}

int wal_fs_write_all(const wal_fs *fs, int fd, const void *buf, size_t len, uint64_t off)
{
    const uint8_t *p = buf;
    while (len) {
        int64_t n = fs->pwrite(fs->ctx, fd, p, len, off);
        if (n < 0)
            return (int)n;
        if (n == 0)
            return -EIO;
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}
