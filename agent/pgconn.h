/* One SQL statement on a fresh libpq connection, fully asynchronous on the loop
 * (PQconnectStart/PQconnectPoll, PQsendQuery, PQsocket in epoll) with a deadline, so a hung
 * or dead postgres never blocks the agent. The callback runs exactly once. */
#ifndef AGENT_PGCONN_H
#define AGENT_PGCONN_H

/* Debian's libpq-dev (sanitizer build) keeps it under postgresql/; the musl prefix does not. */
#if __has_include(<libpq-fe.h>)
#include <libpq-fe.h>
#else
#include <postgresql/libpq-fe.h>
#endif
#include <stdint.h>

#include "evloop.h"

/* res: the last result (NULL on failure, then err says why). Owned by the caller of the
 * callback: it is cleared after the callback returns. */
typedef void (*pgq_cb)(PGresult *res, const char *err, void *arg);

typedef struct pgq pgq;
pgq *pgq_run(evloop *loop, const char *conninfo, const char *sql, uint32_t timeout_ms, pgq_cb cb,
             void *arg);
/* Cancels without calling back. */
void pgq_cancel(pgq *q);

#endif
