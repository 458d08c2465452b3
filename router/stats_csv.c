/* HAProxy-compatible CSV (the "show stat" / ";csv" format of HAProxy 2.6). Each row is
 * built as an array indexed by column, so the order is the table's and nothing else. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "router/stats.h"

const char *const stats_csv_fields[] = {
    "pxname",
    "svname",
    "qcur",
    "qmax",
    "scur",
    "smax",
    "slim",
    "stot",
    "bin",
    "bout",
    "dreq",
    "dresp",
    "ereq",
    "econ",
    "eresp",
    "wretr",
    "wredis",
    "status",
    "weight",
    "act",
    "bck",
    "chkfail",
    "chkdown",
    "lastchg",
    "downtime",
    "qlimit",
    "pid",
    "iid",
    "sid",
    "throttle",
    "lbtot",
    "tracked",
    "type",
    "rate",
    "rate_lim",
    "rate_max",
    "check_status",
    "check_code",
    "check_duration",
    "hrsp_1xx",
    "hrsp_2xx",
    "hrsp_3xx",
    "hrsp_4xx",
    "hrsp_5xx",
    "hrsp_other",
    "hanafail",
    "req_rate",
    "req_rate_max",
    "req_tot",
    "cli_abrt",
    "srv_abrt",
    "comp_in",
    "comp_out",
    "comp_byp",
    "comp_rsp",
    "lastsess",
    "last_chk",
    "last_agt",
    "qtime",
    "ctime",
    "rtime",
    "ttime",
    "agent_status",
    "agent_code",
    "agent_duration",
    "check_desc",
    "agent_desc",
    "check_rise",
    "check_fall",
    "check_health",
    "agent_rise",
    "agent_fall",
    "agent_health",
    "addr",
    "cookie",
    "mode",
    "algo",
    "conn_rate",
    "conn_rate_max",
    "conn_tot",
    "intercepted",
    "dcon",
    "dses",
    "wrew",
    "connect",
    "reuse",
    "cache_lookups",
    "cache_hits",
    "srv_icur",
    "src_ilim",
    "qtime_max",
    "ctime_max",
    "rtime_max",
    "ttime_max",
    "eint",
    "idle_conn_cur",
    "safe_conn_cur",
    "used_conn_cur",
    "need_conn_est",
    "uweight",
    "agg_server_status",
    "agg_server_check_status",
    "agg_check_status",
    "-",
    "ssl_sess",
    "ssl_reused_sess",
    "ssl_failed_handshake",
    "h2_headers_rcvd",
    "h2_data_rcvd",
    "h2_settings_rcvd",
    "h2_rst_stream_rcvd",
    "h2_goaway_rcvd",
    "h2_detected_conn_protocol_errors",
    "h2_detected_strm_protocol_errors",
    "h2_rst_stream_resp",
    "h2_goaway_resp",
    "h2_open_connections",
    "h2_backend_open_streams",
    "h2_total_connections",
    "h2_backend_total_streams",
    "h1_open_connections",
    "h1_open_streams",
    "h1_total_connections",
    "h1_total_streams",
    "h1_bytes_in",
    "h1_bytes_out",
    "h1_spliced_bytes_in",
    "h1_spliced_bytes_out",
};
const size_t stats_csv_nfields = sizeof(stats_csv_fields) / sizeof(stats_csv_fields[0]);

#define NF       (sizeof(stats_csv_fields) / sizeof(stats_csv_fields[0]))
#define CELL_MAX 64

typedef struct row {
    char cell[NF][CELL_MAX];
} row;

static void setf(row *w, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void setf(row *w, const char *name, const char *fmt, ...)
{
    for (size_t i = 0; i < NF; i++) {
        if (strcmp(stats_csv_fields[i], name) != 0)
            continue;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->cell[i], CELL_MAX, fmt, ap);
        va_end(ap);
        /* CSV cells never carry the separator or a line break. */
        for (char *p = w->cell[i]; *p; p++)
            if (*p == ',' || *p == '\n' || *p == '\r')
                *p = ' ';
        return;
    }
}

static void setu(row *w, const char *name, uint64_t v)
{
    setf(w, name, "%" PRIu64, v);
}

static void emit(strbuf *out, const row *w)
{
    for (size_t i = 0; i < NF; i++) {
        strbuf_puts(out, w->cell[i]);
        strbuf_append(out, ",", 1);
    }
    strbuf_append(out, "\n", 1);
}

static uint64_t secs_since(uint64_t now, uint64_t then)
{
    return now > then ? (now - then) / 1000 : 0;
}

static const char *check_desc(const check_state *c)
{
    if (!c->checked)
        return "Initializing";
    switch (c->last_outcome) {
    case CHECK_PASS:
        return "Layer7 check passed";
    case CHECK_STATUS:
        return "Layer7 wrong status";
    case CHECK_CONNECT:
        return "Layer4 connection problem";
    case CHECK_TIMEOUT:
        return "Layer4 timeout";
    }
    return "";
}

static void zero_tail(row *w)
{
    /* The separator column and the protocol counters HAProxy prints as 0 for tcp. */
    setf(w, "-", "-");
    static const char *const zeros[] = {"ssl_sess", "ssl_reused_sess", "ssl_failed_handshake"};
    for (size_t i = 0; i < sizeof(zeros) / sizeof(zeros[0]); i++)
        setu(w, zeros[i], 0);
}

void stats_render_csv(const router *r, uint64_t now, strbuf *out)
{
    strbuf_puts(out, "# ");
    for (size_t i = 0; i < NF; i++) {
        strbuf_puts(out, stats_csv_fields[i]);
        strbuf_append(out, ",", 1);
    }
    strbuf_append(out, "\n", 1);
    row w;
    for (int l = 0; l < LSN_COUNT; l++) {
        const proxy_listener *pl = &r->lsn[l];
        if (pl->fd < 0)
            continue;
        const char *px = stats_proxy_name(l);
        unsigned iid = (unsigned)l + 2; /* HAProxy numbers "stats" 1, then primary, replicas */
        const frontend_stats *fe = &pl->fe;

        memset(&w, 0, sizeof(w));
        setf(&w, "pxname", "%s", px);
        setf(&w, "svname", "FRONTEND");
        setu(&w, "scur", fe->scur);
        setu(&w, "smax", fe->smax);
        setu(&w, "slim", r->cfg.max_connections);
        setu(&w, "stot", fe->stot);
        setu(&w, "bin", fe->bin);
        setu(&w, "bout", fe->bout);
        setu(&w, "dreq", fe->denied);
        setu(&w, "dresp", 0);
        setu(&w, "ereq", 0);
        setf(&w, "status", "OPEN");
        setu(&w, "pid", 1);
        setu(&w, "iid", iid);
        setu(&w, "sid", 0);
        setu(&w, "type", 0);
        uint64_t rate = now - fe->rate_window_start_ms < 1000 ? fe->rate_count : 0;
        setu(&w, "rate", rate);
        setu(&w, "rate_lim", 0);
        setu(&w, "rate_max", fe->rate_max);
        setf(&w, "mode", "tcp");
        setu(&w, "conn_rate", rate);
        setu(&w, "conn_rate_max", fe->rate_max);
        setu(&w, "conn_tot", fe->stot);
        setu(&w, "dcon", 0);
        setu(&w, "dses", 0);
        setu(&w, "eint", 0);
        zero_tail(&w);
        emit(out, &w);

        uint64_t act = 0, scur = 0, smax = 0, stot = 0, bin = 0, bout = 0, econ = 0;
        uint64_t cli = 0, srv = 0, lastsess = 0;
        for (size_t i = 0; i < r->n_backends; i++) {
            const backend *b = r->backends[i];
            const server_stats *st = &b->st[l];
            const check_state *ck = l == LSN_PRIMARY ? &b->primary_chk : &b->replica_chk;
            int up = stats_server_up(r, l, b);
            act += (uint64_t)up;
            scur += st->scur;
            smax = st->smax > smax ? st->smax : smax;
            stot += st->stot;
            bin += st->bin;
            bout += st->bout;
            econ += st->econ;
            cli += st->cli_abrt;
            srv += st->srv_abrt;
            if (st->lastsess_ms > lastsess)
                lastsess = st->lastsess_ms;

            memset(&w, 0, sizeof(w));
            setf(&w, "pxname", "%s", px);
            setf(&w, "svname", "%s", b->conf.name);
            setu(&w, "qcur", 0);
            setu(&w, "qmax", 0);
            setu(&w, "scur", st->scur);
            setu(&w, "smax", st->smax);
            setu(&w, "stot", st->stot);
            setu(&w, "bin", st->bin);
            setu(&w, "bout", st->bout);
            setu(&w, "dresp", 0);
            setu(&w, "econ", st->econ);
            setu(&w, "eresp", st->eresp);
            setu(&w, "wretr", 0);
            setu(&w, "wredis", 0);
            setf(&w, "status", "%s", up ? "UP" : "DOWN");
            setu(&w, "weight", 1);
            setu(&w, "act", 1);
            setu(&w, "bck", 0);
            setu(&w, "chkfail", ck->chkfail);
            setu(&w, "chkdown", ck->chkdown);
            setu(&w, "lastchg", secs_since(now, ck->last_change_ms));
            setu(&w, "downtime", check_state_downtime_ms(ck, now) / 1000);
            setu(&w, "pid", 1);
            setu(&w, "iid", iid);
            setu(&w, "sid", i + 1);
            setu(&w, "lbtot", st->stot);
            setu(&w, "type", 2);
            setu(&w, "rate", 0);
            setu(&w, "rate_max", 0);
            setf(&w, "check_status", "%s", check_state_status_name(ck));
            if (ck->last_code)
                setu(&w, "check_code", (uint64_t)ck->last_code);
            setu(&w, "check_duration", ck->last_duration_ms);
            setu(&w, "cli_abrt", st->cli_abrt);
            setu(&w, "srv_abrt", st->srv_abrt);
            if (st->lastsess_ms)
                setu(&w, "lastsess", secs_since(now, st->lastsess_ms));
            else
                setf(&w, "lastsess", "-1");
            if (ck->checked && ck->last_outcome == CHECK_STATUS)
                setf(&w, "last_chk", "%d", ck->last_code);
            setu(&w, "qtime", 0);
            setu(&w, "ctime", 0);
            setu(&w, "rtime", 0);
            setu(&w, "ttime", 0);
            setf(&w, "check_desc", "%s", check_desc(ck));
            setu(&w, "check_rise", r->cfg.check_rise);
            setu(&w, "check_fall", r->cfg.check_fall);
            setu(&w, "check_health", ck->health);
            setf(&w, "addr", "%s:%u", b->conf.host, (unsigned)b->conf.port);
            setf(&w, "mode", "tcp");
            setu(&w, "wrew", 0);
            setu(&w, "connect", st->stot);
            setu(&w, "reuse", 0);
            setu(&w, "srv_icur", 0);
            setu(&w, "eint", 0);
            setu(&w, "uweight", 1);
            zero_tail(&w);
            emit(out, &w);
        }

        memset(&w, 0, sizeof(w));
        setf(&w, "pxname", "%s", px);
        setf(&w, "svname", "BACKEND");
        setu(&w, "qcur", fe->qcur);
        setu(&w, "qmax", fe->qmax);
        setu(&w, "scur", scur);
        setu(&w, "smax", smax);
        setu(&w, "slim", r->cfg.max_connections);
        setu(&w, "stot", stot);
        setu(&w, "bin", bin);
        setu(&w, "bout", bout);
        setu(&w, "dreq", 0);
        setu(&w, "dresp", 0);
        setu(&w, "econ", econ);
        setu(&w, "eresp", 0);
        setu(&w, "wretr", 0);
        setu(&w, "wredis", 0);
        setf(&w, "status", "%s", act ? "UP" : "DOWN");
        setu(&w, "weight", act);
        setu(&w, "act", act);
        setu(&w, "bck", 0);
        setu(&w, "chkdown", r->write_changes);
        if (l == LSN_PRIMARY)
            setu(&w, "lastchg", secs_since(now, r->write_target_since_ms));
        setu(&w, "pid", 1);
        setu(&w, "iid", iid);
        setu(&w, "sid", 0);
        setu(&w, "lbtot", stot);
        setu(&w, "type", 1);
        setu(&w, "rate", 0);
        setu(&w, "rate_max", fe->rate_max);
        setu(&w, "cli_abrt", cli);
        setu(&w, "srv_abrt", srv);
        if (lastsess)
            setu(&w, "lastsess", secs_since(now, lastsess));
        else
            setf(&w, "lastsess", "-1");
        setu(&w, "qtime", 0);
        setu(&w, "ctime", 0);
        setu(&w, "rtime", 0);
        setu(&w, "ttime", 0);
        setf(&w, "mode", "tcp");
        setf(&w, "algo", "%s", l == LSN_PRIMARY ? "first" : "leastconn");
        setu(&w, "wrew", 0);
        setu(&w, "connect", stot);
        setu(&w, "reuse", 0);
        setu(&w, "eint", 0);
        setu(&w, "uweight", act);
        setu(&w, "agg_server_status", 0);
        setu(&w, "agg_server_check_status", 0);
        setu(&w, "agg_check_status", 0);
        zero_tail(&w);
        emit(out, &w);
    }
}
