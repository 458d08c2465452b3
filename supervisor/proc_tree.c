/* Descendant walk over /proc/PID/stat (see proc_tree.h). */
#include "proc_tree.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A bound on the table: more processes than this under one container is not plausible,
 * and the walk repeats at shutdown until nothing is left anyway. */
#define PROC_TREE_MAX 65536

struct pp {
    pid_t pid, ppid;
    int mark;
};

static pid_t read_ppid(const char *pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%s/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    /* "pid (comm) state ppid ...": comm may contain anything, so parse after the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ' || !p[2] || p[3] != ' ')
        return -1;
    return (pid_t)strtol(p + 4, NULL, 10);
}

int proc_signal_descendants(pid_t root, int sig)
{
    DIR *d = opendir("/proc");
    if (!d)
        return -1;
    struct pp *t = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < PROC_TREE_MAX) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        pid_t ppid = read_ppid(e->d_name);
        if (ppid < 0)
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 256;
            struct pp *nt = realloc(t, nc * sizeof(*nt));
            if (!nt)
                break;
            t = nt;
            cap = nc;
        }
        t[n].pid = (pid_t)strtol(e->d_name, NULL, 10);
        t[n].ppid = ppid;
        t[n].mark = 0;
        n++;
    }
    closedir(d);
    /* Mark descendants: repeat until a pass adds nothing (depth is small in practice). */
    int changed = 1, count = 0;
    while (changed) {
        changed = 0;
        for (size_t i = 0; i < n; i++) {
            if (t[i].mark || t[i].pid == root)
                continue;
            int parent_in = t[i].ppid == root;
            for (size_t j = 0; !parent_in && j < n; j++)
                parent_in = t[j].mark && t[j].pid == t[i].ppid;
            if (parent_in) {
                t[i].mark = 1;
                changed = 1;
                count++;
            }
        }
    }
    for (size_t i = 0; i < n && sig != 0; i++)
        if (t[i].mark)
            kill(t[i].pid, sig);
    free(t);
    return count;
}
