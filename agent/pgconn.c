/* libpq, non-blocking: connect, send, collect; the socket is re-registered whenever libpq
 * asks for the other direction (or changes socket during connection attempts). */
#include "agent/pgconn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pgq {
    evloop *loop;
    PGconn *conn;
    int fd;
    int phase; /* 0 connecting, 1 querying */
    char *sql;
    pgq_cb cb;
    void *arg;
    ev_timer *timer;
    PGresult *last;
};

static void finish(pgq *q, const char *err)
{
    if (q->fd >= 0)
        evloop_del_fd(q->loop, q->fd);
    if (q->timer)
        evloop_timer_cancel(q->loop, q->timer);
    pgq_cb cb = q->cb;
    void *arg = q->arg;
    PGresult *res = err ? NULL : q->last;
    char errbuf[256];
    if (err)
        snprintf(errbuf, sizeof(errbuf), "%s", err);
    if (cb)
        cb(res, err ? errbuf : NULL, arg);
    PQclear(q->last);
    PQfinish(q->conn);
    free(q->sql);
    free(q);
}

static void io(evloop *loop, int fd, uint32_t events, void *arg);

static void watch(pgq *q, uint32_t ev)
{
    int fd = PQsocket(q->conn);
    if (fd != q->fd) {
        if (q->fd >= 0)
            evloop_del_fd(q->loop, q->fd);
        q->fd = fd;
        if (fd >= 0)
            evloop_add_fd(q->loop, fd, ev, io, q);
    } else if (fd >= 0) {
        evloop_mod_fd(q->loop, fd, ev);
    }
}

static void step(pgq *q)
{
    if (q->phase == 0) {
        PostgresPollingStatusType st = PQconnectPoll(q->conn);
        if (st == PGRES_POLLING_FAILED) {
            char e[256];
            snprintf(e, sizeof(e), "connect: %s", PQerrorMessage(q->conn));
            e[strcspn(e, "\n")] = '\0';
            finish(q, e);
            return;
        }
        if (st == PGRES_POLLING_READING) {
            watch(q, EPOLLIN);
            return;
        }
        if (st == PGRES_POLLING_WRITING) {
            watch(q, EPOLLOUT);
            return;
        }
        /* PGRES_POLLING_OK */
        PQsetnonblocking(q->conn, 1);
        if (!PQsendQuery(q->conn, q->sql)) {
            finish(q, PQerrorMessage(q->conn));
            return;
        }
        q->phase = 1;
    }
    if (PQflush(q->conn) == 1) {
        watch(q, EPOLLIN | EPOLLOUT);
        return;
    }
    if (!PQconsumeInput(q->conn)) {
        finish(q, PQerrorMessage(q->conn));
        return;
    }
    while (!PQisBusy(q->conn)) {
        PGresult *r = PQgetResult(q->conn);
        if (!r) {
            if (!q->last) {
                finish(q, "no result");
                return;
            }
            ExecStatusType s = PQresultStatus(q->last);
            if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK) {
                char e[256];
                snprintf(e, sizeof(e), "query: %s", PQresultErrorMessage(q->last));
                e[strcspn(e, "\n")] = '\0';
                finish(q, e);
                return;
            }
            finish(q, NULL);
            return;
        }
        PQclear(q->last);
        q->last = r;
    }
    watch(q, EPOLLIN);
}

static void io(evloop *loop, int fd, uint32_t events, void *arg)
{
    step(arg);
}

static void on_timeout(evloop *loop, void *arg)
{
    pgq *q = arg;
    q->timer = NULL;
    finish(q, "timeout");
}

pgq *pgq_run(evloop *loop, const char *conninfo, const char *sql, uint32_t timeout_ms, pgq_cb cb,
             void *arg)
{
    pgq *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    q->loop = loop;
    q->fd = -1;
    q->cb = cb;
    q->arg = arg;
    q->sql = strdup(sql);
    q->conn = PQconnectStart(conninfo);
    if (!q->conn || !q->sql || PQstatus(q->conn) == CONNECTION_BAD) {
        PQfinish(q->conn);
        free(q->sql);
        free(q);
        return NULL;
    }
    q->timer = evloop_timer_start(loop, timeout_ms, on_timeout, q);
    watch(q, EPOLLOUT);
    return q;
}

void pgq_cancel(pgq *q)
{
    q->cb = NULL;
    finish(q, "cancelled");
}
