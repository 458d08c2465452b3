/* Long-poll waiters of the v2 keys API (GET ?wait=true): what a server keeps for requests
 * that v2_store_get answered "pending". Each waiter wants the first event on its key (or
 * below it, recursive) with index >= since; it is called back once and removed. Bounded:
 * at most max waiters (a full table refuses new ones; the server answers them with an
 * empty 200 like etcd's wait timeout, and the client retries). */
#ifndef APPLIANCE_DCS_V2_WATCH_H
#define APPLIANCE_DCS_V2_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dcs/v2_store.h"

typedef struct v2_waiters v2_waiters;
/* ev lives only during the call (render it there). */
typedef void (*v2_wait_cb)(void *arg, const v2_result *ev);

/* Installs itself as the store's event hook. */
v2_waiters *v2_waiters_new(v2_store *s, size_t max);
void v2_waiters_free(v2_waiters *w);
/* Returns a handle (> 0), or 0 when the table is full or out of memory. */
uint64_t v2_waiters_add(v2_waiters *w, const char *key, bool recursive, uint64_t since,
                        v2_wait_cb cb, void *arg);
/* Drops a waiter (client gone, timeout); unknown handles are ignored. */
void v2_waiters_remove(v2_waiters *w, uint64_t handle);
size_t v2_waiters_count(const v2_waiters *w);

#endif
