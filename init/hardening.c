/* User resolution, data dir preparation and the in-child privilege drop (see
 * hardening.h). */
#include "hardening.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <linux/capability.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* capget/capset through the raw syscalls: musl has no libcap, and only these two are
 * needed. Version 3: 64 capability bits in two 32-bit words. */
static int caps_get(uint64_t *permitted)
{
    struct __user_cap_header_struct hd = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof(d));
    if (syscall(SYS_capget, &hd, d) < 0)
        return -1;
    *permitted = (uint64_t)d[0].permitted | (uint64_t)d[1].permitted << 32;
    return 0;
}

static int caps_set(uint64_t caps)
{
    struct __user_cap_header_struct hd = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    for (int i = 0; i < 2; i++) {
        uint32_t w = (uint32_t)(caps >> (32 * i));
        d[i].effective = d[i].permitted = d[i].inheritable = w;
    }
    return (int)syscall(SYS_capset, &hd, d);
}

/* Keeps `caps` across setuid and makes them ambient, so they survive the exec of the
 * role's program (an ordinary binary: no file capabilities involved). */
static int keep_ambient(uint64_t caps)
{
    if (caps_set(caps) < 0 || prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
        return -1;
    for (unsigned c = 0; c < 64; c++)
        if ((caps >> c & 1) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0)
            return -1;
    return 0;
}

static int drop_to(const struct hardening *h)
{
    /* Only what this process holds can be kept (a container without cap_add has no
     * CAP_NET_ADMIN to give): the rest of the role's wish is dropped silently, and the
     * program finds out when it tries (the router then proxies in user space). */
    uint64_t have = 0, keep = 0;
    if (h->keep_caps && caps_get(&have) == 0)
        keep = h->keep_caps & have;
    if (keep && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
        return -1;
    if (setgroups((size_t)h->ngroups, h->groups) < 0 || setgid(h->gid) < 0 || setuid(h->uid) < 0)
        return -1;
    if (keep && keep_ambient(keep) < 0)
        return -1;
    /* Paranoia: a dropped process must not be able to get root back. */
    if (setuid(0) == 0)
        return (errno = EPERM), -1;
    return 0;
}

/* mkdir -p; the last component gets 0700, parents 0755. */
static int mkdir_p(const char *path)
{
    char tmp[1024];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(tmp, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

/* Checks, as the role's user, that dir can be listed and written: parent directories may
 * block a user that root itself passes through. */
static int usable_as_user(const struct hardening *h, const char *dir)
{
    pid_t pid = fork();
    if (pid < 0)
        return errno;
    if (pid == 0) {
        if (h->drop && drop_to(h) < 0)
            _exit(errno & 0x7f);
        if (access(dir, R_OK | W_OK | X_OK) < 0)
            _exit(errno & 0x7f);
        _exit(0);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return errno;
    return WIFEXITED(st) ? WEXITSTATUS(st) : EIO;
}

static int prepare_dir(const struct hardening *h, const char *dir, char *err, size_t errlen)
{
    struct stat st;
    if (stat(dir, &st) < 0) {
        if (errno != ENOENT) {
            snprintf(err, errlen, "DATA_DIR='%s': cannot access: %s", dir, strerror(errno));
            return -1;
        }
        if (mkdir_p(dir) < 0 || stat(dir, &st) < 0) {
            snprintf(err, errlen, "DATA_DIR='%s': cannot create: %s", dir, strerror(errno));
            return -1;
        }
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "DATA_DIR='%s' exists and is not a directory", dir);
        return -1;
    }
    uid_t want_uid = h->drop ? h->uid : getuid();
    gid_t want_gid = h->drop ? h->gid : getgid();
    if (st.st_uid != want_uid || (h->drop && st.st_gid != want_gid)) {
        /* Only the directory itself: its content belongs to the role's program, and a
         * recursive chown of a big data dir at every start would be slow and surprising. */
        if (chown(dir, want_uid, want_gid) < 0) {
            snprintf(err, errlen,
                     "DATA_DIR='%s' is owned by uid %u, not uid %u, and cannot be "
                     "chowned: %s",
                     dir, (unsigned)st.st_uid, (unsigned)want_uid, strerror(errno));
            return -1;
        }
    }
    if ((st.st_mode & 07777) != 0700 && chmod(dir, 0700) < 0) {
        snprintf(err, errlen, "DATA_DIR='%s': cannot set mode 0700: %s", dir, strerror(errno));
        return -1;
    }
    int e = usable_as_user(h, dir);
    if (e) {
        snprintf(err, errlen, "DATA_DIR='%s' is not usable by uid %u: %s", dir, (unsigned)want_uid,
                 strerror(e));
        return -1;
    }
    return 0;
}

int hardening_prepare(struct hardening *h, const struct init_settings *s, char *notes,
                      size_t noteslen, char *err, size_t errlen)
{
    memset(h, 0, sizeof(*h));
    notes[0] = '\0';
    if (!s->role)
        return 0;
    /* The user is checked even when not root: a typo must not go unnoticed in tests. */
    errno = 0;
    struct passwd *pw = getpwnam(s->user);
    if (!pw) {
        snprintf(err, errlen,
                 "user '%s' (APPLIANCE_USER or the %s role's default) does not exist%s%s", s->user,
                 s->role->name, errno ? ": " : "", errno ? strerror(errno) : "");
        return -1;
    }
    if (pw->pw_uid == 0) {
        snprintf(err, errlen, "user '%s' is root: roles never run as root", s->user);
        return -1;
    }
    if (getuid() == 0) {
        h->drop = 1;
        h->uid = pw->pw_uid;
        h->gid = pw->pw_gid;
        snprintf(h->user, sizeof(h->user), "%s", s->user);
        snprintf(h->home, sizeof(h->home), "%s", pw->pw_dir ? pw->pw_dir : "/");
        h->ngroups = HARDENING_MAX_GROUPS;
        if (getgrouplist(s->user, h->gid, h->groups, &h->ngroups) < 0)
            h->ngroups = 0; /* more than 64 groups: keep the primary group only */
        if (h->ngroups == 0) {
            h->groups[0] = h->gid;
            h->ngroups = 1;
        }
    } else {
        snprintf(notes, noteslen,
                 "not running as root (uid %u): no privilege drop, children "
                 "run as uid %u",
                 (unsigned)getuid(), (unsigned)getuid());
    }
    h->keep_caps = s->role->ambient_caps;
    if (s->data_dir && prepare_dir(h, s->data_dir, err, errlen) < 0)
        return -1;
    h->seccomp = seccomp_policy_new(s->role, s->seccomp, err, errlen);
    return h->seccomp ? 0 : -1;
}

int hardening_child_setup(void *arg, int sock)
{
    struct hardening *h = arg;
    if (h->drop) {
        if (drop_to(h) < 0)
            return errno ? errno : EPERM;
        setenv("HOME", h->home, 1);
        setenv("USER", h->user, 1);
        setenv("LOGNAME", h->user, 1);
        /* The inherited cwd (often /root) may not be readable by the user. */
        if (chdir(h->home) < 0 && chdir("/") < 0)
            return errno;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return errno;
    if (h->seccomp)
        return seccomp_policy_load_child(h->seccomp, sock);
    return 0;
}

void hardening_free(struct hardening *h)
{
    seccomp_policy_free(h->seccomp);
    h->seccomp = NULL;
}
