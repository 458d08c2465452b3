/* v2 long-poll waiters: a list scanned per event (a handful of Patroni replicas wait on
 * the leader key; the table size is bounded). */
#include "dcs/v2_watch.h"

#include <stdlib.h>
#include <string.h>

typedef struct waiter waiter;
struct waiter {
    waiter *next;
    uint64_t handle, since;
    char *key;
    bool recursive;
    v2_wait_cb cb;
    void *arg;
};

struct v2_waiters {
    v2_store *s;
    waiter *list;
    size_t n, max;
    uint64_t next_handle;
};

/* etcd's isHidden: a recursive watcher is not told about keys below it whose path has a
 * component starting with '_' (a watcher on exactly that key still is). */
static bool hidden_below(const char *watch_key, const char *event_key)
{
    size_t wl = strlen(watch_key);
    if (strlen(event_key) <= wl || strncmp(event_key, watch_key, wl) != 0)
        return false;
    const char *rest = event_key + wl;
    return (wl == 1 && rest[0] == '_') || strstr(rest, "/_") != NULL;
}

static void on_event(void *arg, const v2_result *ev)
{
    v2_waiters *w = arg;
    waiter **pp = &w->list;
    while (*pp) {
        waiter *x = *pp;
        if (ev->index >= x->since && v2_event_matches(ev, x->key, x->recursive) &&
            !hidden_below(x->key, ev->node->key)) {
            *pp = x->next; /* unlink first: the callback may add or remove waiters */
            w->n--;
            x->cb(x->arg, ev);
            free(x->key);
            free(x);
            pp = &w->list; /* the list may have changed under the callback */
            continue;
        }
        pp = &x->next;
    }
}

v2_waiters *v2_waiters_new(v2_store *s, size_t max)
{
    v2_waiters *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->s = s;
    w->max = max ? max : 4096;
    v2_store_set_hook(s, on_event, w);
    return w;
}

void v2_waiters_free(v2_waiters *w)
{
    if (!w)
        return;
    while (w->list) {
        waiter *x = w->list;
        w->list = x->next;
        free(x->key);
        free(x);
    }
    v2_store_set_hook(w->s, NULL, NULL);
    free(w);
}

uint64_t v2_waiters_add(v2_waiters *w, const char *key, bool recursive, uint64_t since,
                        v2_wait_cb cb, void *arg)
{
    if (w->n >= w->max)
        return 0;
    waiter *x = calloc(1, sizeof(*x));
    if (!x)
        return 0;
    x->key = strdup(key);
    if (!x->key) {
        free(x);
        return 0;
    }
    x->handle = ++w->next_handle;
    x->since = since;
    x->recursive = recursive;
    x->cb = cb;
    x->arg = arg;
    x->next = w->list;
    w->list = x;
    w->n++;
    return x->handle;
}

void v2_waiters_remove(v2_waiters *w, uint64_t handle)
{
    for (waiter **pp = &w->list; *pp; pp = &(*pp)->next)
        if ((*pp)->handle == handle) {
            waiter *x = *pp;
            *pp = x->next;
            w->n--;
            free(x->key);
            free(x);
            return;
        }
}

size_t v2_waiters_count(const v2_waiters *w)
{
    return w->n;
}
