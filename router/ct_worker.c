/* The conntrack thread: requests in under a mutex, results out through an eventfd. */
#include "router/ct_worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

struct ct_worker {
    evloop *loop;
    ct_worker_cb cb;
    void *arg;
    kernel_nat *ct; /* the thread's own socket: the loop's is never shared */
    int efd;        /* thread -> loop: results ready */
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* under mu */
    uint8_t end_req[256];
    int dump_req;
    int stop;
    ct_worker_result out;        /* filled by the thread, emptied by the loop */
    kernel_nat_flows flows[256]; /* the thread's dump buffer */
    ct_worker_result res;        /* the loop's copy of out */
};

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void *run(void *arg)
{
    ct_worker *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        int any = w->dump_req;
        for (int i = 0; i < 256 && !any; i++)
            any = w->end_req[i];
        if (!any && w->stop)
            break;
        if (!any) {
            pthread_cond_wait(&w->cv, &w->mu);
            continue;
        }
        uint8_t end[256];
        memcpy(end, w->end_req, sizeof(end));
        memset(w->end_req, 0, sizeof(w->end_req));
        int dump = w->dump_req;
        w->dump_req = 0;
        pthread_mutex_unlock(&w->mu);

        /* Flushes first: a dump taken after them does not count flows already ended. */
        struct {
            uint8_t slot;
            int count;
            double ms;
        } done[256];
        size_t ndone = 0;
        char err[256] = "";
        for (int i = 0; i < 256; i++) {
            if (!end[i])
                continue;
            double t0 = mono_ms();
            int c = kernel_nat_end_flows(w->ct, (uint8_t)i, err, sizeof(err));
            done[ndone].slot = (uint8_t)i;
            done[ndone].count = c;
            done[ndone].ms = mono_ms() - t0;
            ndone++;
        }
        int dumped = dump && kernel_nat_flows_dump(w->ct, w->flows, err, sizeof(err)) == 0;

        pthread_mutex_lock(&w->mu);
        for (size_t i = 0; i < ndone && w->out.n_ended < CT_WORKER_ENDED_MAX; i++) {
            w->out.ended[w->out.n_ended].slot = done[i].slot;
            w->out.ended[w->out.n_ended].count = done[i].count;
            w->out.ended[w->out.n_ended].ms = done[i].ms;
            w->out.n_ended++;
        }
        if (dumped) {
            memcpy(w->out.flows, w->flows, sizeof(w->flows));
            w->out.dumped = 1;
        }
        if (err[0])
            snprintf(w->out.err, sizeof(w->out.err), "%s", err);
        uint64_t one = 1;
        if (write(w->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
            log_warn("router: conntrack thread: eventfd: %s", strerror(errno));
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static void deliver(ct_worker *w)
{
    pthread_mutex_lock(&w->mu);
    w->res = w->out;
    memset(&w->out, 0, sizeof(w->out));
    pthread_mutex_unlock(&w->mu);
    if (w->res.dumped || w->res.n_ended || w->res.err[0])
        w->cb(w->arg, &w->res);
}

static void on_ready(evloop *loop, int fd, uint32_t events, void *arg)
{
    uint64_t v;
    (void)loop;
    (void)events;
    while (read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v)) {
    }
    deliver(arg);
}

ct_worker *ct_worker_start(evloop *loop, ct_worker_cb cb, void *arg, char *err, size_t errsz)
{
    ct_worker *w = calloc(1, sizeof(*w));
    if (!w) {
        snprintf(err, errsz, "conntrack thread: out of memory");
        return NULL;
    }
    w->loop = loop;
    w->cb = cb;
    w->arg = arg;
    w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->efd < 0) {
        snprintf(err, errsz, "conntrack thread: eventfd: %s", strerror(errno));
        free(w);
        return NULL;
    }
    w->ct = kernel_nat_ct_open(err, errsz);
    if (!w->ct) {
        close(w->efd);
        free(w);
        return NULL;
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    int rc = evloop_add_fd(loop, w->efd, EPOLLIN, on_ready, w);
    if (rc == 0)
        rc = pthread_create(&w->th, NULL, run, w);
    else
        rc = errno;
    if (rc != 0) {
        snprintf(err, errsz, "conntrack thread: %s", strerror(rc));
        evloop_del_fd(loop, w->efd);
        kernel_nat_close(w->ct);
        close(w->efd);
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        free(w);
        return NULL;
    }
    return w;
}

void ct_worker_end_flows(ct_worker *w, uint8_t slot)
{
    pthread_mutex_lock(&w->mu);
    w->end_req[slot] = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void ct_worker_dump(ct_worker *w)
{
    pthread_mutex_lock(&w->mu);
    w->dump_req = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void ct_worker_stop(ct_worker *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->th, NULL);
    deliver(w); /* the last flushes still get their log line */
    evloop_del_fd(w->loop, w->efd);
    close(w->efd);
    kernel_nat_close(w->ct);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
}
