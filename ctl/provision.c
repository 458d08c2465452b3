/* `appliancectl provision`: the one-shot ROLE=init job (compose service pg-cluster-init).
 *
 *   appliancectl provision [--host H] [--port P] [--file SQL] [--timeout SECONDS]
 *                          [--user U] [--dbname D]
 *
 * Defaults: host $PGHOST or pg-router, port $PGPORT or 5000 (the router's write port),
 * file $PROVISION_SQL or /etc/appliance/init_users_dbs.sql, timeout $PROVISION_TIMEOUT or
 * 300 s, user $PGUSER or postgres, database postgres; password $PGPASSWORD_SUPERUSER (or the
 * file named by $PGPASSWORD_SUPERUSER_FILE, Spilo's names), else libpq's own PGPASSWORD or
 * ~/.pgpass.
 *
 * How "once per cluster" is recorded, and why:
 * - The record is a row in postgres itself (table appliance.provisioned in the database we
 *   connect to), not a DCS key or a file: it lives and dies with the data it describes. A
 *   cluster rebuilt from scratch (new data) is provisioned again; a DCS wiped while the data
 *   survives is not provisioned twice; and every replica has the record by replication.
 * - The file's statements run inside ONE transaction together with the INSERT of that row,
 *   so a run either leaves both the changes and the record, or neither (a failed or
 *   interrupted run is simply run again). PostgreSQL refuses a few statements inside a
 *   transaction block (CREATE DATABASE, ALTER SYSTEM, VACUUM...: SQLSTATE 25001); such a
 *   statement is retried on its own after committing what came before it, so a run that
 *   fails after one of them re-runs those parts: they must be idempotent (the shipped file
 *   guards them with WHERE NOT EXISTS). Each statement runs under a savepoint so that a
 *   25001 refusal does not abort the transaction.
 * - Two provisioners at once (a second `docker-compose up`) serialise on an advisory lock,
 *   and the second finds the record.
 * - The record also keeps the file's sha256 and time: a later run with a changed file does
 *   NOT run it again (once per cluster) but says so.
 * Waiting: the router's write port is polled until a connection reaches a primary
 * (pg_is_in_recovery() false), bounded by the timeout, with a progress line every 10 s. A
 * connection lost mid-run (failover) starts the run again within the same deadline; an SQL
 * error ends it at once with the file, line and statement named. */
#include "ctl/provision.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/pgconn.h" /* libpq-fe.h from the release prefix or Debian's -dev */
#include "ctl/read_file.h"
#include "ctl/sql_script.h"

#define PROVISION_MAX_FILE ((size_t)4 << 20)
#define PROVISION_LOCK_KEY "7164839208" /* advisory lock key: any fixed number */
#define PROGRESS_EVERY_MS  10000
#define CONNECT_TIMEOUT_S  "3"
#define SAVEPOINT          "appliance_provision"
#define MARKER_TABLE       "appliance.provisioned"

enum { RUN_OK = 0, RUN_FAILED = 1, RUN_RETRY = 3 };

typedef struct prov_opts {
    const char *host, *port, *file, *user, *dbname;
    char password[256];
    int have_password;
    long timeout_s;
} prov_opts;

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int usage(void)
{
    fprintf(stderr, "usage: appliancectl provision [--host HOST] [--port PORT] [--file SQL] "
                    "[--timeout SECONDS] [--user USER] [--dbname DB]\n");
    return 2;
}

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && v[0] ? v : def;
}

static PGconn *connect_once(const prov_opts *o)
{
    const char *k[] = {"host",
                       "port",
                       "user",
                       "dbname",
                       "connect_timeout",
                       "application_name",
                       o->have_password ? "password" : NULL,
                       NULL};
    const char *v[] = {o->host,
                       o->port,
                       o->user,
                       o->dbname,
                       CONNECT_TIMEOUT_S,
                       "appliancectl provision",
                       o->have_password ? o->password : NULL,
                       NULL};
    return PQconnectdbParams(k, v, 0);
}

/* A connection to a writable primary, or NULL once the deadline has passed. */
static PGconn *wait_primary(const prov_opts *o, long long deadline)
{
    long long next_note = mono_ms() + PROGRESS_EVERY_MS;
    char why[300] = "";
    for (;;) {
        PGconn *c = connect_once(o);
        if (PQstatus(c) == CONNECTION_OK) {
            PGresult *r = PQexec(c, "SELECT pg_is_in_recovery()");
            int primary = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
                          strcmp(PQgetvalue(r, 0, 0), "f") == 0;
            if (primary) {
                PQclear(r);
                return c;
            }
            snprintf(why, sizeof(why), "%s",
                     PQresultStatus(r) == PGRES_TUPLES_OK ? "the server is a replica (read-only)"
                                                          : PQerrorMessage(c));
            PQclear(r);
        } else {
            snprintf(why, sizeof(why), "%s", PQerrorMessage(c));
        }
        PQfinish(c);
        why[strcspn(why, "\n")] = '\0';
        long long now = mono_ms();
        if (now >= deadline) {
            fprintf(stderr,
                    "appliancectl provision: no primary accepted a connection at %s:%s within "
                    "the timeout (last: %s)\n",
                    o->host, o->port, why);
            return NULL;
        }
        if (now >= next_note) {
            fprintf(stderr, "appliancectl provision: waiting for a primary at %s:%s (%s)\n",
                    o->host, o->port, why);
            next_note = now + PROGRESS_EVERY_MS;
        }
        long left = (long)(deadline - now);
        sleep_ms(left < 1000 ? left : 1000);
    }
}

/* Runs a command whose result does not matter beyond success. */
static int simple(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "appliancectl provision: %s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    return ok ? 0 : -1;
}

static int lost(PGconn *c)
{
    return PQstatus(c) != CONNECTION_OK;
}

/* Line of the error inside the statement: PG_DIAG_STATEMENT_POSITION counts characters
 * (UTF-8 continuation bytes do not start one). */
static int error_line(const char *sql, int first_line, const PGresult *r)
{
    const char *pos = PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION);
    int line = first_line;
    if (!pos)
        return line;
    long chars = strtol(pos, NULL, 10);
    for (const char *p = sql; *p && chars > 1; p++) {
        if (((unsigned char)*p & 0xC0) != 0x80)
            chars--;
        if (*p == '\n')
            line++;
    }
    return line;
}

static void report(const prov_opts *o, const char *sql, int line, int generated, const PGresult *r,
                   PGconn *c)
{
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *sev = r ? PQresultErrorField(r, PG_DIAG_SEVERITY) : NULL;
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    char first[201];
    snprintf(first, sizeof(first), "%s", sql);
    first[strcspn(first, "\n")] = '\0';
    fprintf(stderr, "appliancectl provision: %s:%d%s: %s:  %s%s%s%s\n  statement: %s%s\n", o->file,
            r && !generated ? error_line(sql, line, r) : line,
            generated ? " (a statement generated by \\gexec)" : "", sev ? sev : "ERROR",
            msg ? msg : PQerrorMessage(c), state ? " (SQLSTATE " : "", state ? state : "",
            state ? ")" : "", first, strlen(first) < strlen(sql) ? " ..." : "");
}

/* One statement of the file inside the run's transaction (see the top of the file). On
 * success with `rows` non-NULL, the result is handed over (the \gexec query). */
static int run_stmt(const prov_opts *o, PGconn *c, const char *sql, int line, int generated,
                    PGresult **rows)
{
    if (PQtransactionStatus(c) == PQTRANS_IDLE && simple(c, "BEGIN") != 0)
        return lost(c) ? RUN_RETRY : RUN_FAILED;
    if (simple(c, "SAVEPOINT " SAVEPOINT) != 0)
        return lost(c) ? RUN_RETRY : RUN_FAILED;
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
        PQclear(r);
        fprintf(stderr, "appliancectl provision: %s:%d: COPY from/to the client is not supported\n",
                o->file, line);
        return RUN_FAILED; /* the connection is closed by the caller: nothing commits */
    }
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY) {
        if (rows)
            *rows = r;
        else
            PQclear(r);
        /* the file may have ended our transaction itself (COMMIT): nothing to release */
        if (PQtransactionStatus(c) == PQTRANS_INTRANS &&
            simple(c, "RELEASE SAVEPOINT " SAVEPOINT) != 0)
            return lost(c) ? RUN_RETRY : RUN_FAILED;
        return RUN_OK;
    }
    if (lost(c)) {
        PQclear(r);
        return RUN_RETRY;
    }
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (state && strcmp(state, "25001") == 0) {
        /* refused inside a transaction block: commit what came before, run it alone */
        PQclear(r);
        if (simple(c, "ROLLBACK TO SAVEPOINT " SAVEPOINT) != 0 || simple(c, "COMMIT") != 0)
            return lost(c) ? RUN_RETRY : RUN_FAILED;
        r = PQexec(c, sql);
        st = PQresultStatus(r);
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY) {
            PQclear(r);
            return RUN_OK; /* the next statement opens the transaction again */
        }
        if (lost(c)) {
            PQclear(r);
            return RUN_RETRY;
        }
    }
    report(o, sql, line, generated, r, c);
    PQclear(r);
    return RUN_FAILED;
}

/* \gexec: every non-null value of the query's result, row by row, column by column, is
 * run as a statement (psql's order). */
static int run_gexec(const prov_opts *o, PGconn *c, const sql_stmt *s)
{
    PGresult *rows = NULL;
    int rc = run_stmt(o, c, s->text, s->line, 0, &rows);
    if (rc != RUN_OK)
        return rc;
    int nr = PQntuples(rows), nf = PQnfields(rows);
    for (int i = 0; i < nr && rc == RUN_OK; i++)
        for (int j = 0; j < nf && rc == RUN_OK; j++)
            if (!PQgetisnull(rows, i, j))
                rc = run_stmt(o, c, PQgetvalue(rows, i, j), s->line, 1, NULL);
    PQclear(rows);
    return rc;
}

static int query1(PGconn *c, const char *sql, int nparams, const char *const *vals, const int *lens,
                  const int *fmts, char *out, size_t outsz)
{
    PGresult *r = PQexecParams(c, sql, nparams, NULL, vals, lens, fmts, 0);
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    int n = ok ? PQntuples(r) : 0;
    out[0] = '\0';
    if (n > 0)
        snprintf(out, outsz, "%s", PQgetvalue(r, 0, 0));
    if (!ok)
        fprintf(stderr, "appliancectl provision: %s", PQerrorMessage(c));
    PQclear(r);
    return ok ? (n > 0 ? 1 : 0) : -1;
}

/* One attempt on a connection to the primary. */
static int run(const prov_opts *o, PGconn *c, const sql_script *sc, const char *text, size_t len,
               long long deadline)
{
    char buf[200];
    /* serialise concurrent provisioners, bounded by what is left of the deadline */
    long long left = deadline - mono_ms();
    snprintf(buf, sizeof(buf), "SET lock_timeout = %lld", left > 1000 ? left : 1000);
    if (simple(c, buf) != 0 || simple(c, "SELECT pg_advisory_lock(" PROVISION_LOCK_KEY ")") != 0 ||
        simple(c, "RESET lock_timeout") != 0)
        return lost(c) ? RUN_RETRY : RUN_FAILED;
    const char *vals[] = {text};
    const int lens[] = {(int)len}, fmts[] = {1};
    char sha[80], done[200];
    if (query1(c, "SELECT encode(sha256($1::bytea), 'hex')", 1, vals, lens, fmts, sha,
               sizeof(sha)) != 1)
        return lost(c) ? RUN_RETRY : RUN_FAILED;
    char exists[8];
    if (query1(c, "SELECT to_regclass('" MARKER_TABLE "') IS NOT NULL", 0, NULL, NULL, NULL, exists,
               sizeof(exists)) != 1)
        return lost(c) ? RUN_RETRY : RUN_FAILED;
    int have = 0;
    if (strcmp(exists, "t") == 0) {
        have = query1(c,
                      "SELECT done_at || ' (file ' || file || ', sha256 ' || sha256 || ')' || "
                      "CASE WHEN sha256 <> $1 THEN '; the file has changed since, it is not "
                      "run again' ELSE '' END FROM " MARKER_TABLE " WHERE id = 1",
                      1, (const char *const[]){sha}, NULL, NULL, done, sizeof(done));
        if (have < 0)
            return lost(c) ? RUN_RETRY : RUN_FAILED;
    }
    if (have == 1) {
        printf("appliancectl provision: already provisioned at %s: nothing to do\n", done);
        return RUN_OK;
    }
    for (size_t i = 0; i < sc->n; i++) {
        int rc = sc->stmts[i].gexec ? run_gexec(o, c, &sc->stmts[i])
                                    : run_stmt(o, c, sc->stmts[i].text, sc->stmts[i].line, 0, NULL);
        if (rc != RUN_OK)
            return rc;
    }
    if (PQtransactionStatus(c) == PQTRANS_IDLE && simple(c, "BEGIN") != 0)
        return lost(c) ? RUN_RETRY : RUN_FAILED;
    const char *mvals[] = {o->file, sha};
    PGresult *r;
    if (simple(c, "RESET SESSION AUTHORIZATION") != 0 ||
        simple(c, "CREATE SCHEMA IF NOT EXISTS appliance") != 0 ||
        simple(c, "CREATE TABLE IF NOT EXISTS " MARKER_TABLE
                  " (id int PRIMARY KEY CHECK (id = 1), done_at timestamptz NOT NULL DEFAULT "
                  "now(), file text NOT NULL, sha256 text NOT NULL)") != 0)
        return lost(c) ? RUN_RETRY : RUN_FAILED;
    r = PQexecParams(c, "INSERT INTO " MARKER_TABLE " (id, file, sha256) VALUES (1, $1, $2)", 2,
                     NULL, mvals, NULL, NULL, 0);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "appliancectl provision: recording the run: %s", PQerrorMessage(c));
    PQclear(r);
    if (!ok || simple(c, "COMMIT") != 0)
        return lost(c) ? RUN_RETRY : RUN_FAILED;
    printf("appliancectl provision: %s: %zu statements run, recorded in " MARKER_TABLE "\n",
           o->file, sc->n);
    return RUN_OK;
}

int provision_main(int argc, char **argv)
{
    prov_opts o = {.host = env_or("PGHOST", "pg-router"),
                   .port = env_or("PGPORT", "5000"),
                   .file = env_or("PROVISION_SQL", "/etc/appliance/init_users_dbs.sql"),
                   .user = env_or("PGUSER", "postgres"),
                   .dbname = "postgres"};
    const char *timeout = env_or("PROVISION_TIMEOUT", "300");
    for (int i = 0; i < argc; i++) {
        const char **dst = NULL;
        if (strcmp(argv[i], "--host") == 0)
            dst = &o.host;
        else if (strcmp(argv[i], "--port") == 0)
            dst = &o.port;
        else if (strcmp(argv[i], "--file") == 0)
            dst = &o.file;
        else if (strcmp(argv[i], "--user") == 0)
            dst = &o.user;
        else if (strcmp(argv[i], "--dbname") == 0)
            dst = &o.dbname;
        else if (strcmp(argv[i], "--timeout") == 0)
            dst = &timeout;
        if (!dst || i + 1 >= argc)
            return usage();
        *dst = argv[++i];
    }
    char *end;
    errno = 0;
    o.timeout_s = strtol(timeout, &end, 10);
    if (errno || *end || end == timeout || o.timeout_s < 1 || o.timeout_s > 86400) {
        fprintf(stderr,
                "appliancectl provision: timeout: '%s' is not a number of seconds in [1, "
                "86400]\n",
                timeout);
        return 2;
    }
    const char *pw = getenv("PGPASSWORD_SUPERUSER");
    if (pw) {
        snprintf(o.password, sizeof(o.password), "%s", pw);
        o.have_password = 1;
    } else if ((pw = getenv("PGPASSWORD_SUPERUSER_FILE")) != NULL) {
        FILE *f = fopen(pw, "re");
        if (!f) {
            fprintf(stderr,
                    "appliancectl provision: PGPASSWORD_SUPERUSER_FILE: cannot read '%s': %s\n", pw,
                    strerror(errno));
            return 2;
        }
        if (!fgets(o.password, sizeof(o.password), f))
            o.password[0] = '\0';
        fclose(f);
        o.password[strcspn(o.password, "\r\n")] = '\0';
        o.have_password = 1;
    }
    size_t len;
    char *text = ctl_read_file("appliancectl provision", o.file, PROVISION_MAX_FILE, &len);
    if (!text)
        return 2;
    sql_script sc;
    char err[300];
    if (sql_script_parse(text, len, &sc, err, sizeof(err)) != 0) {
        fprintf(stderr, "appliancectl provision: %s: %s\n", o.file, err);
        free(text);
        return 2;
    }
    long long deadline = mono_ms() + o.timeout_s * 1000;
    int rc;
    for (;;) {
        PGconn *c = wait_primary(&o, deadline);
        if (!c) {
            rc = RUN_FAILED;
            break;
        }
        rc = run(&o, c, &sc, text, len, deadline);
        if (rc == RUN_RETRY) {
            char why[300];
            snprintf(why, sizeof(why), "%s", PQerrorMessage(c));
            why[strcspn(why, "\n")] = '\0';
            fprintf(stderr,
                    "appliancectl provision: connection lost during the run (%s): nothing of "
                    "the transaction was kept, starting again\n",
                    why);
        }
        PQfinish(c);
        if (rc != RUN_RETRY)
            break;
        if (mono_ms() >= deadline) {
            fprintf(stderr, "appliancectl provision: giving up: the timeout has passed\n");
            rc = RUN_FAILED;
            break;
        }
        sleep_ms(1000);
    }
    sql_script_free(&sc);
    free(text);
    return rc == RUN_OK ? 0 : 1;
}
