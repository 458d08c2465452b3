/* Golden-test driver: the DCS state machine and API codecs without Raft or sockets.
 * Reads HTTP-like requests from stdin, one per line:
 *     POST /v3/kv/put {"key":"YQ==","value":"MQ=="}
 *     PUT /v2/keys/dir/a value=1&ttl=30
 *     GET /v2/keys/dir?recursive=true
 *     SNAPSHOT            (save the whole state, restore it into a fresh store, continue;
 *                          open watch streams are dropped)
 *     WATCH {"create_request":{...}} {"cancel_request":{...}}   (opens watch stream N,
 *                          N = 1, 2, ... in order, and feeds it the request messages)
 *     WATCHREAD N         (everything stream N has to send now, as a JSON array)
 * and prints one line per request: "STATUS BODY" for v3, "STATUS INDEX BODY" for v2
 * (INDEX = X-Etcd-Index). Before each request the driver does what the Raft leader will:
 * leases past their deadline (lessor_expired on the monotonic clock) and v2 keys past
 * their expiration (wall clock) are expired through LEASE_EXPIRE / V2 EXPIRE commands. Every write
 * goes the way the server will send it: parsed request -> store command -> binary encoding ->
 * decode -> apply -> rendered response. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dcs/store_cmd.h"
#include "dcs/v2_codec.h"
#include "dcs/v3_gateway.h"
#include "dcs/watch.h"

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const v3_header hdr = {1, 2, 3, 0}; /* cluster_id, member_id, raft_term: fixed */

static void print_out(int status, const char *prefix, jw *w)
{
    size_t n;
    char *out = jw_take(w, &n);
    while (out && n && out[n - 1] == '\n')
        out[--n] = 0;
    printf("%d %s%s\n", status, prefix, out ? out : "{\"error\":\"render failed\"}");
    free(out);
}

static int apply_cmd(dcs_store *st, const store_cmd *cmd, mvcc_arena *a, store_result *res)
{
    uint8_t *buf;
    size_t len;
    if (store_cmd_encode(cmd, 4u << 20, &buf, &len) != 0) {
        fprintf(stderr, "encode failed\n");
        return -1;
    }
    /* the result points into the decoded command only through the store, so the
     * buffer may go once applied */
    int rc = store_apply_bytes(st, buf, len, mono_ms(), a, res);
    free(buf);
    return rc;
}

static void do_v3(dcs_store *st, const char *path, const char *body)
{
    mvcc_arena a;
    mvcc_arena_init(&a, 0);
    jw w;
    jw_init(&w, 64u << 20);
    int status = 200;
    v3_request req;
    v3_error err;
    int ep = v3_endpoint_of(path);
    if (!ep) {
        printf("404 {\"error\":\"not found\"}\n");
        mvcc_arena_free(&a);
        return;
    }
    if (v3_parse_request(ep, body, strlen(body), &a, &req, &err) != 0) {
        v3_render_error(&w, &err);
        status = v3_error_http_status(&err);
    } else {
        store_cmd cmd;
        if (v3_request_command(&req, &cmd)) {
            store_result res;
            apply_cmd(st, &cmd, &a, &res);
            v3_render_result(&req, &res, &hdr, &w, &status);
        } else {
            v3_header h = hdr;
            v3_execute_read(st, &req, &h, mono_ms(), &a, &w, &status);
        }
    }
    print_out(status, "", &w);
    mvcc_arena_free(&a);
}

static void do_v2(dcs_store *st, const char *method, const char *target, const char *body)
{
    mvcc_arena a;
    mvcc_arena_init(&a, 0);
    jw w;
    jw_init(&w, 64u << 20);
    char *path = mvcc_arena_dup(&a, target, strlen(target));
    char *q = strchr(path, '?');
    const char *query = "";
    if (q) {
        *q = 0;
        query = q + 1;
    }
    v2_request req;
    v2_result res;
    int64_t now = wall_ms();
    if (v2_parse_request(method, path, query, body, strlen(body), now, &a, &req, &res) == 0) {
        if (req.method == V2_GET) {
            if (v2_store_get(st->v2, &req, now, &a, &res) != 0)
                fprintf(stderr, "v2 get failed\n");
            if (res.pending) {
                printf("200 %llu PENDING\n", (unsigned long long)res.index);
                mvcc_arena_free(&a);
                return;
            }
        } else {
            store_cmd cmd;
            memset(&cmd, 0, sizeof(cmd));
            cmd.type = STORE_CMD_V2;
            cmd.v2 = req;
            store_result sr;
            apply_cmd(st, &cmd, &a, &sr);
            res = sr.v2;
        }
    }
    v2_render_result(&w, &res);
    char prefix[32];
    snprintf(prefix, sizeof(prefix), "%llu ", (unsigned long long)res.index);
    print_out(res.http_status ? res.http_status : 200, prefix, &w);
    mvcc_arena_free(&a);
}

/* The leader's duty, run before every request: propose expiry of what is due. */
static void expire_due(dcs_store *st)
{
    mvcc_arena a;
    mvcc_arena_init(&a, 0);
    int64_t ids[64];
    size_t n = lessor_expired(mvcc_lessor(st->kv), mono_ms(), ids, 64);
    for (size_t i = 0; i < n; i++) {
        store_cmd c;
        memset(&c, 0, sizeof(c));
        c.type = STORE_CMD_LEASE_EXPIRE;
        c.lease_id = ids[i];
        store_result r;
        apply_cmd(st, &c, &a, &r);
    }
    int64_t next = v2_store_next_expiry(st->v2), now = wall_ms();
    if (next && next <= now) {
        store_cmd c;
        memset(&c, 0, sizeof(c));
        c.type = STORE_CMD_V2;
        c.v2.method = V2_EXPIRE;
        c.v2.prev_exist = -1;
        c.v2.time_ms = now;
        store_result r;
        apply_cmd(st, &c, &a, &r);
    }
    mvcc_arena_free(&a);
}

#define MAX_STREAMS 32
static watch_hub *hub;
static watch_stream *streams[MAX_STREAMS];
static int nstreams;

static void drop_watches(void)
{
    for (int i = 0; i < nstreams; i++)
        watch_stream_free(streams[i]);
    memset(streams, 0, sizeof(streams));
    watch_hub_free(hub);
    hub = NULL;
}

/* Length of the JSON value at the start of p (objects/arrays/strings aware). */
static size_t json_span(const char *p, size_t n)
{
    int depth = 0, in_str = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if ((c == '}' || c == ']') && --depth == 0) {
            return i + 1;
        }
    }
    return n;
}

static void do_watch(dcs_store *st, const char *body)
{
    if (!hub)
        hub = watch_hub_new(st->kv, NULL);
    if (nstreams == MAX_STREAMS) {
        printf("500 {\"error\":\"too many streams\"}\n");
        return;
    }
    watch_stream *ws = watch_stream_new(hub, NULL, NULL);
    streams[nstreams++] = ws;
    size_t len = strlen(body), off = 0;
    while (off < len) {
        while (off < len && body[off] == ' ')
            off++;
        if (off == len)
            break;
        size_t span = json_span(body + off, len - off);
        mvcc_arena a;
        mvcc_arena_init(&a, 0);
        v3_request req;
        v3_error err;
        if (v3_parse_request(V3_WATCH, body + off, span, &a, &req, &err) == 0)
            watch_stream_request(ws, &req, mono_ms());
        mvcc_arena_free(&a);
        off += span;
    }
    printf("200 {\"stream\":%d}\n", nstreams);
}

static void do_watchread(int n)
{
    jw w;
    jw_init(&w, 64u << 20);
    jw_arr(&w);
    watch_stream *ws = n >= 1 && n <= nstreams ? streams[n - 1] : NULL;
    for (int guard = 0; ws && guard < 1000000; guard++) {
        v3_watch_resp r;
        int64_t hrev;
        if (!watch_stream_next(ws, &r, &hrev)) {
            if (watch_stream_busy(ws))
                continue; /* history replay in progress: more next turn */
            break;
        }
        v3_header h = hdr;
        h.revision = hrev;
        v3_render_watch(&w, &h, &r); /* the array writer adds the commas */
    }
    jw_arr_end(&w);
    print_out(200, "", &w);
}

int main(void)
{
    dcs_store *st = dcs_store_new(NULL);
    if (!st)
        return 1;
    lessor_promote(mvcc_lessor(st->kv), mono_ms(), 0);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        if (n == 0 || line[0] == '#')
            continue;
        expire_due(st);
        if (strcmp(line, "SNAPSHOT") == 0) {
            uint8_t *buf;
            size_t len;
            dcs_store *nst = NULL;
            if (store_snapshot_save(st, &buf, &len) == 0) {
                nst = store_snapshot_load(buf, len, NULL);
                free(buf);
            }
            if (!nst) {
                printf("500 {\"error\":\"snapshot round trip failed\"}\n");
                continue;
            }
            drop_watches();
            nstreams = 0;
            dcs_store_free(st);
            st = nst;
            lessor_promote(mvcc_lessor(st->kv), mono_ms(), 0);
            printf("200 {\"snapshot\":%zu}\n", len);
            fflush(stdout);
            continue;
        }
        if (strncmp(line, "WATCHREAD ", 10) == 0) {
            do_watchread((int)strtol(line + 10, NULL, 10));
            fflush(stdout);
            continue;
        }
        if (strncmp(line, "WATCH ", 6) == 0) {
            do_watch(st, line + 6);
            fflush(stdout);
            continue;
        }
        char *sp1 = strchr(line, ' ');
        if (!sp1)
            continue;
        *sp1 = 0;
        char *target = sp1 + 1;
        char *sp2 = strchr(target, ' ');
        const char *body = "";
        if (sp2) {
            *sp2 = 0;
            body = sp2 + 1;
        }
        if (strncmp(target, "/v2/", 4) == 0)
            do_v2(st, line, target, body);
        else
            do_v3(st, target, body);
        fflush(stdout);
    }
    free(line);
    drop_watches();
    dcs_store_free(st);
    return 0;
}
