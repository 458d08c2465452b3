/* The resolver thread and its slot table (see resolver.h). */
#include "router/resolver.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"

enum slot_state { SLOT_FREE, SLOT_QUEUED, SLOT_RUNNING, SLOT_DONE };

typedef struct slot {
    enum slot_state state;
    uint64_t seq; /* lookups run in the order they were filed */
    resolver_result res;
} slot;

/* Shared by the loop and the thread; freed by whichever lets go last (the thread may still
 * sit in getaddrinfo when the loop is done with it). */
struct resolver {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    slot slots[RESOLVER_MAX_PENDING];
    uint64_t next_seq;
    int stopping;
    atomic_int refs;
    int efd;
    evloop *loop;
    resolver_cb cb;
    void *arg;
};

static void unref(resolver *rs)
{
    if (atomic_fetch_sub(&rs->refs, 1) != 1)
        return;
    close(rs->efd);
    pthread_cond_destroy(&rs->cv);
    pthread_mutex_destroy(&rs->mu);
    free(rs);
}

static slot *oldest_queued(resolver *rs)
{
    slot *best = NULL;
    for (size_t i = 0; i < RESOLVER_MAX_PENDING; i++) {
        slot *s = &rs->slots[i];
        if (s->state == SLOT_QUEUED && (!best || s->seq < best->seq))
            best = s;
    }
    return best;
}

static void *resolver_thread(void *arg)
{
    resolver *rs = arg;
    pthread_mutex_lock(&rs->mu);
    for (;;) {
        slot *s = NULL;
        while (!rs->stopping && !(s = oldest_queued(rs)))
            pthread_cond_wait(&rs->cv, &rs->mu);
        if (rs->stopping)
            break;
        s->state = SLOT_RUNNING;
        resolver_result r = s->res;
        pthread_mutex_unlock(&rs->mu);

        char port[8];
        snprintf(port, sizeof(port), "%u", (unsigned)r.port);
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
        struct addrinfo *ai = NULL;
        r.gai_rc = getaddrinfo(r.host, port, &hints, &ai);
        r.addrlen = 0;
        if (r.gai_rc == 0 && ai && ai->ai_addrlen <= sizeof(r.addr)) {
            memcpy(&r.addr, ai->ai_addr, ai->ai_addrlen);
            r.addrlen = ai->ai_addrlen;
        } else if (r.gai_rc == 0) {
            r.gai_rc = EAI_FAIL;
        }
        if (ai)
            freeaddrinfo(ai);

        pthread_mutex_lock(&rs->mu);
        s->res = r;
        s->state = SLOT_DONE;
        if (!rs->stopping) {
            uint64_t one = 1;
            if (write(rs->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
                log_warn("router: resolver: eventfd: %s", strerror(errno));
        }
    }
    pthread_mutex_unlock(&rs->mu);
    unref(rs);
    return NULL;
}

static void on_done(evloop *loop, int fd, uint32_t events, void *arg)
{
    resolver *rs = arg;
    uint64_t v;
    (void)loop;
    (void)events;
    while (read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v)) {
    }
    resolver_result done[RESOLVER_MAX_PENDING];
    size_t n = 0;
    pthread_mutex_lock(&rs->mu);
    for (size_t i = 0; i < RESOLVER_MAX_PENDING; i++)
        if (rs->slots[i].state == SLOT_DONE) {
            done[n++] = rs->slots[i].res;
            rs->slots[i].state = SLOT_FREE;
        }
    pthread_mutex_unlock(&rs->mu);
    /* Callbacks run unlocked: they may file new lookups. */
    for (size_t i = 0; i < n; i++)
        rs->cb(&done[i], rs->arg);
}

resolver *resolver_new(evloop *loop, resolver_cb cb, void *arg)
{
    resolver *rs = calloc(1, sizeof(*rs));
    if (!rs)
        return NULL;
    rs->loop = loop;
    rs->cb = cb;
    rs->arg = arg;
    rs->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (rs->efd < 0) {
        free(rs);
        return NULL;
    }
    pthread_mutex_init(&rs->mu, NULL);
    pthread_cond_init(&rs->cv, NULL);
    atomic_init(&rs->refs, 2);
    if (evloop_add_fd(loop, rs->efd, EPOLLIN, on_done, rs) < 0)
        goto fail;
    pthread_t th;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    /* A fixed stack, ample for getaddrinfo (glibc's DNS code keeps 64 KiB buffers on it),
     * instead of the libc default (musl's 128 KiB is tight, glibc's 8 MiB wasteful). */
    pthread_attr_setstacksize(&at, (size_t)512 * 1024);
    int rc = pthread_create(&th, &at, resolver_thread, rs);
    pthread_attr_destroy(&at);
    if (rc != 0) {
        evloop_del_fd(loop, rs->efd);
        goto fail;
    }
    return rs;
fail:
    close(rs->efd);
    pthread_cond_destroy(&rs->cv);
    pthread_mutex_destroy(&rs->mu);
    free(rs);
    return NULL;
}

int resolver_submit(resolver *rs, const char *key, const char *host, uint16_t port)
{
    int rc = -1;
    pthread_mutex_lock(&rs->mu);
    slot *free_slot = NULL;
    for (size_t i = 0; i < RESOLVER_MAX_PENDING; i++) {
        slot *s = &rs->slots[i];
        if ((s->state == SLOT_QUEUED || s->state == SLOT_RUNNING) && strcmp(s->res.key, key) == 0) {
            rc = 0;
            goto out;
        }
        if (s->state == SLOT_FREE && !free_slot)
            free_slot = s;
    }
    if (free_slot) {
        memset(&free_slot->res, 0, sizeof(free_slot->res));
        snprintf(free_slot->res.key, sizeof(free_slot->res.key), "%s", key);
        snprintf(free_slot->res.host, sizeof(free_slot->res.host), "%s", host);
        free_slot->res.port = port;
        free_slot->seq = rs->next_seq++;
        free_slot->state = SLOT_QUEUED;
        pthread_cond_signal(&rs->cv);
        rc = 1;
    }
out:
    pthread_mutex_unlock(&rs->mu);
    return rc;
}

unsigned resolver_pending(resolver *rs)
{
    unsigned n = 0;
    pthread_mutex_lock(&rs->mu);
    for (size_t i = 0; i < RESOLVER_MAX_PENDING; i++)
        n += rs->slots[i].state == SLOT_QUEUED || rs->slots[i].state == SLOT_RUNNING;
    pthread_mutex_unlock(&rs->mu);
    return n;
}

void resolver_free(resolver *rs)
{
    if (!rs)
        return;
    evloop_del_fd(rs->loop, rs->efd);
    pthread_mutex_lock(&rs->mu);
    rs->stopping = 1;
    pthread_cond_signal(&rs->cv);
    pthread_mutex_unlock(&rs->mu);
    unref(rs);
}
