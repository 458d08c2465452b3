/* Snapshot writer thread: one job slot guarded by a mutex, completion signalled to the
 * event loop through an eventfd (see snap_writer.h for why). */
#include "dcs/snap_writer.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "dcs/snap.h"

struct snap_writer {
    evloop *loop;
    char dir[1100];
    snap_writer_done_cb done;
    void *arg;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int efd;
    /* guarded by mu */
    bool quit;
    bool has_job; /* submitted, not yet reported on the loop */
    bool job_ready;
    bool finished;
    raft_snapshot job; /* job.data owned here */
    int rc;
    char err[256];
};

static void *writer_main(void *arg)
{
    snap_writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->quit && !w->job_ready)
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->quit)
            break;
        raft_snapshot s = w->job;
        w->job_ready = false;
        pthread_mutex_unlock(&w->mu);
        char err[256] = "";
        int rc = snap_save(&wal_fs_posix, w->dir, &s, err, sizeof(err));
        pthread_mutex_lock(&w->mu);
        w->rc = rc;
        snprintf(w->err, sizeof(w->err), "%s", err);
        w->finished = true;
        uint64_t one = 1;
        if (write(w->efd, &one, sizeof(one)) < 0) {
            /* cannot happen with an eventfd counter far from overflow */
        }
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static void on_event(evloop *loop, int fd, uint32_t events, void *arg)
{
    snap_writer *w = arg;
    uint64_t v;
    if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        return;
    pthread_mutex_lock(&w->mu);
    if (!w->finished) {
        pthread_mutex_unlock(&w->mu);
        return;
    }
    uint64_t index = w->job.index, term = w->job.term;
    int rc = w->rc;
    char err[256];
    snprintf(err, sizeof(err), "%s", w->err);
    free((void *)w->job.data);
    w->job.data = NULL;
    w->finished = false;
    w->has_job = false;
    pthread_mutex_unlock(&w->mu);
    w->done(w->arg, index, term, rc, err);
}

snap_writer *snap_writer_new(evloop *loop, const char *dir, snap_writer_done_cb done, void *arg)
{
    snap_writer *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->loop = loop;
    snprintf(w->dir, sizeof(w->dir), "%s", dir);
    w->done = done;
    w->arg = arg;
    w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->efd < 0) {
        free(w);
        return NULL;
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (evloop_add_fd(loop, w->efd, EPOLLIN, on_event, w) != 0 ||
        pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        evloop_del_fd(loop, w->efd);
        close(w->efd);
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        free(w);
        return NULL;
    }
    return w;
}

bool snap_writer_busy(const snap_writer *w)
{
    /* has_job only changes on the loop thread: no lock needed to read it there */
    return w->has_job;
}

int snap_writer_submit(snap_writer *w, const raft_snapshot *s, uint8_t *data)
{
    if (w->has_job)
        return -1;
    pthread_mutex_lock(&w->mu);
    w->job = *s;
    w->job.data = data;
    w->has_job = true;
    w->job_ready = true;
    w->finished = false;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

void snap_writer_free(snap_writer *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->quit = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL); /* a save in progress completes first */
    evloop_del_fd(w->loop, w->efd);
    close(w->efd);
    free((void *)w->job.data);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
}
