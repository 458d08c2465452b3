/* Router pure logic: HAProxy rise/fall bookkeeping, write/read target selection (DCS and
 * checks must agree), and the stats formats: CSV header identical to HAProxy 2.6's (the
 * reference CSV captured from the Patroni stack), every row with the same column count,
 * JSON that parses, Prometheus lines, HTML escaping, the 8404 request routing. */
#include "check.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/check_state.h"
#include "router/select.h"
#include "router/stats.h"
#include "router/stats_server.h"

TEST(check_state_rise_fall_like_haproxy)
{
    check_state s;
    check_state_init(&s, 0);
    CHECK_STR(check_state_status_name(&s), "INI");
    /* rise 2: one pass is not enough */
    CHECK_EQ_INT(check_state_apply(&s, CHECK_PASS, 200, 1, 10, 2, 3, 0), 0);
    CHECK_EQ_INT(s.up, 0);
    CHECK_EQ_INT(check_state_apply(&s, CHECK_PASS, 200, 1, 20, 2, 3, 0), 1);
    CHECK_EQ_INT(s.up, 1);
    CHECK_EQ_INT(s.health, 4); /* rise + fall - 1 */
    CHECK_EQ_INT(s.last_change_ms, 20);
    /* fall 3: two transport failures keep it up, the third takes it down */
    CHECK_EQ_INT(check_state_apply(&s, CHECK_TIMEOUT, 0, 1000, 30, 2, 3, 0), 0);
    CHECK_EQ_INT(check_state_apply(&s, CHECK_CONNECT, 0, 1, 40, 2, 3, 0), 0);
    CHECK_EQ_INT(s.up, 1);
    CHECK_STR(check_state_status_name(&s), "L4CON");
    CHECK_EQ_INT(check_state_apply(&s, CHECK_CONNECT, 0, 1, 50, 2, 3, 0), 1);
    CHECK_EQ_INT(s.up, 0);
    CHECK_EQ_INT(s.chkdown, 1);
    CHECK_EQ_INT(s.chkfail, 3);
    CHECK_EQ_INT(check_state_downtime_ms(&s, 1050), 1000);
    /* back up, then a single non-200 answer is final when status_is_final (/primary) */
    check_state_apply(&s, CHECK_PASS, 200, 1, 1060, 1, 3, 1);
    CHECK_EQ_INT(s.up, 1);
    CHECK_EQ_INT(check_state_downtime_ms(&s, 5000), 1010);
    CHECK_EQ_INT(check_state_apply(&s, CHECK_STATUS, 503, 1, 1070, 1, 3, 1), 1);
    CHECK_EQ_INT(s.up, 0);
    CHECK_STR(check_state_status_name(&s), "L7STS");
    CHECK_EQ_INT(s.last_code, 503);
    /* ...but counts against fall for the replica check */
    check_state_apply(&s, CHECK_PASS, 200, 1, 1080, 1, 3, 0);
    CHECK_EQ_INT(check_state_apply(&s, CHECK_STATUS, 503, 1, 1090, 1, 3, 0), 0);
    CHECK_EQ_INT(s.up, 1);
}

static evloop *loop;
static router R;
static backend B[3];

static void mk(void)
{
    memset(&R, 0, sizeof(R));
    memset(B, 0, sizeof(B));
    if (!loop)
        loop = evloop_new();
    R.loop = loop;
    router_config_defaults(&R.cfg);
    for (int i = 0; i < 3; i++) {
        snprintf(B[i].conf.name, sizeof(B[i].conf.name), "pg-%d", i);
        snprintf(B[i].conf.host, sizeof(B[i].conf.host), "127.0.30.%d", 10 + i);
        B[i].conf.port = 5432;
        B[i].conf.check_port = 8008;
        B[i].addrlen = 16;
        R.backends[i] = &B[i];
    }
    R.n_backends = R.n_all = 3;
    R.lsn[0].fd = 5; /* rendered as open */
    R.lsn[1].fd = 6;
}

TEST(write_target_needs_dcs_and_check_to_agree)
{
    mk();
    R.dcs = DCS_OFF;
    CHECK(select_write_target(&R) == NULL);
    B[1].primary_chk.up = 1;
    CHECK(select_write_target(&R) == &B[1]);
    B[2].primary_chk.up = 1; /* two claim it and no DCS: split view, no target */
    CHECK(select_write_target(&R) == NULL);
    R.dcs = DCS_OK;
    snprintf(R.dcs_leader, sizeof(R.dcs_leader), "pg-2");
    CHECK(select_write_target(&R) == &B[2]);
    B[2].primary_chk.up = 0; /* DCS says pg-2 but pg-2's /primary fails: no writes */
    CHECK(select_write_target(&R) == NULL);
    B[0].primary_chk.up = 1; /* another node answering 200 is not enough without the DCS */
    CHECK(select_write_target(&R) == NULL);
    R.dcs_leader[0] = '\0'; /* leader key gone */
    B[2].primary_chk.up = 1;
    CHECK(select_write_target(&R) == NULL);
    /* DCS lost: the last view is trusted for grace_ms, then checks alone decide */
    snprintf(R.dcs_leader, sizeof(R.dcs_leader), "pg-2");
    R.dcs = DCS_UNKNOWN;
    R.dcs_last_ok_ms = evloop_update_now(loop);
    R.cfg.dcs_grace_ms = 100000;
    CHECK(select_write_target(&R) == &B[2]);
    R.cfg.dcs_grace_ms = 0;
    CHECK(select_write_target(&R) == NULL); /* several claim it: split */
    B[0].primary_chk.up = B[1].primary_chk.up = 0;
    CHECK(select_write_target(&R) == &B[2]);
}

TEST(replica_selection_least_conn_tags_fallback)
{
    mk();
    size_t rr = 0;
    int fb = -1;
    CHECK(select_replica(&R, &rr, &fb) == NULL);
    R.write_target = &B[0];
    CHECK(select_replica(&R, &rr, &fb) == &B[0]);
    CHECK_EQ_INT(fb, 1);
    R.cfg.replicas_fallback_to_primary = 0;
    CHECK(select_replica(&R, &rr, &fb) == NULL);
    B[1].replica_chk.up = B[2].replica_chk.up = 1;
    B[1].sessions[LSN_REPLICAS].count = 3;
    B[2].sessions[LSN_REPLICAS].count = 1;
    CHECK(select_replica(&R, &rr, &fb) == &B[2]);
    CHECK_EQ_INT(fb, 0);
    B[2].conf.noloadbalance = 1;
    CHECK(select_replica(&R, &rr, &fb) == &B[1]);
    B[2].conf.noloadbalance = 0;
    B[1].sessions[LSN_REPLICAS].count = 1; /* tie: rotates */
    backend *a = select_replica(&R, &rr, &fb), *b = select_replica(&R, &rr, &fb);
    CHECK(a != b);
}

static char *read_fixture(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static size_t count_char(const char *s, size_t n, char ch)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += s[i] == ch;
    return k;
}

TEST(csv_header_is_haproxy_26s)
{
    char *ref = read_fixture("tests/integration/router/fixtures/haproxy-2.6-patroni-stats.csv");
    CHECK(ref != NULL);
    char *nl = strchr(ref, '\n');
    CHECK(nl != NULL);
    *nl = '\0';
    mk();
    strbuf sb;
    strbuf_init(&sb, 1 << 20);
    stats_render_csv(&R, 0, &sb);
    CHECK(sb.data != NULL);
    char *mynl = strchr(sb.data, '\n');
    CHECK(mynl != NULL);
    CHECK_EQ_INT((size_t)(mynl - sb.data), strlen(ref));
    CHECK(strncmp(sb.data, ref, strlen(ref)) == 0);
    CHECK_EQ_INT(stats_csv_nfields, 128);
    strbuf_free(&sb);
}

TEST(csv_rows_have_every_column_and_haproxy_values)
{
    mk();
    R.write_target = &B[1];
    B[1].primary_chk.up = 1;
    B[1].primary_chk.checked = 1;
    B[1].primary_chk.last_code = 200;
    B[0].replica_chk.up = 1;
    B[2].primary_chk.checked = 1;
    B[2].primary_chk.last_outcome = CHECK_STATUS;
    B[2].primary_chk.last_code = 503;
    B[1].st[LSN_PRIMARY].scur = 2;
    B[1].st[LSN_PRIMARY].bin = 554;
    snprintf(B[0].conf.name, sizeof(B[0].conf.name), "a,b"); /* a separator must not leak */
    strbuf sb;
    strbuf_init(&sb, 1 << 20);
    stats_render_csv(&R, 5000, &sb);
    /* 1 header + 2 listeners x (FRONTEND + 3 servers + BACKEND) */
    CHECK_EQ_INT(count_char(sb.data, sb.len, '\n'), 11);
    char *save = NULL;
    int rows = 0;
    int saw_up = 0, saw_l7sts = 0;
    for (char *line = strtok_r(sb.data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        CHECK_EQ_INT(count_char(line, strlen(line), ','), 128);
        if (strncmp(line, "primary,pg-1,", 13) == 0) {
            /* pxname,svname,qcur,qmax,scur,smax,slim,stot,bin -> scur is field 5, bin 9 */
            CHECK(strstr(line, "primary,pg-1,0,0,2,") == line);
            CHECK(strstr(line, ",554,") != NULL);
            CHECK(strstr(line, ",UP,") != NULL);
            CHECK(strstr(line, ",L7OK,200,") != NULL);
            saw_up = 1;
        }
        if (strncmp(line, "primary,pg-2,", 13) == 0) {
            CHECK(strstr(line, ",DOWN,") != NULL);
            CHECK(strstr(line, ",L7STS,503,") != NULL);
            CHECK(strstr(line, "Layer7 wrong status") != NULL);
            saw_l7sts = 1;
        }
        if (strncmp(line, "replicas,BACKEND,", 17) == 0)
            CHECK(strstr(line, ",UP,1,1,0,") != NULL); /* status,weight,act,bck */
        rows++;
    }
    CHECK_EQ_INT(rows, 11);
    CHECK(saw_up && saw_l7sts);
    strbuf_free(&sb);
}

TEST(json_prometheus_html)
{
    mk();
    R.write_target = &B[0];
    R.dcs = DCS_OK;
    snprintf(R.dcs_leader, sizeof(R.dcs_leader), "pg-0");
    snprintf(B[2].conf.name, sizeof(B[2].conf.name), "<b>&");
    strbuf sb;
    strbuf_init(&sb, 1 << 20);
    stats_render_json(&R, 100, &sb);
    json_error_t e;
    json_t *j = json_loadb(sb.data, sb.len, 0, &e);
    CHECK(j != NULL);
    CHECK_STR(json_string_value(json_object_get(j, "write_target")), "pg-0");
    CHECK_STR(json_string_value(json_object_get(json_object_get(j, "dcs"), "leader")), "pg-0");
    CHECK_EQ_INT(json_array_size(json_object_get(j, "backends")), 3);
    json_decref(j);
    strbuf_free(&sb);

    strbuf_init(&sb, 1 << 20);
    stats_render_prometheus(&R, 100, &sb);
    CHECK(strstr(sb.data, "router_server_is_primary{server=\"pg-0\"} 1\n") != NULL);
    CHECK(strstr(sb.data, "router_server_up{frontend=\"primary\",server=\"pg-0\"} 1\n") != NULL);
    CHECK(strstr(sb.data, "# TYPE router_frontend_sessions_total counter\n") != NULL);
    /* every non-comment line is "name{labels} value" or "name value" */
    char *save = NULL;
    for (char *line = strtok_r(sb.data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#')
            continue;
        char *sp = strrchr(line, ' ');
        CHECK(sp != NULL && sp[1] != '\0');
        char *end = NULL;
        strtod(sp + 1, &end);
        CHECK(*end == '\0');
    }
    strbuf_free(&sb);

    strbuf_init(&sb, 1 << 20);
    stats_render_html(&R, 100, &sb);
    CHECK(strstr(sb.data, "&lt;b&gt;&amp;") != NULL);
    CHECK(strstr(sb.data, "<b>&") == NULL);
    strbuf_free(&sb);
}

TEST(stats_request_routing_and_caps)
{
    mk();
    strbuf sb;
    const char *ct = NULL;
    strbuf_init(&sb, 1 << 20);
    CHECK_EQ_INT(stats_dispatch(&R, "GET", "/;csv", "", &sb, &ct), 200);
    CHECK(strncmp(sb.data, "# pxname,svname,", 16) == 0);
    strbuf_free(&sb);
    strbuf_init(&sb, 1 << 20);
    CHECK_EQ_INT(stats_dispatch(&R, "GET", "/", "csv", &sb, &ct), 200);
    CHECK(strncmp(sb.data, "# pxname", 8) == 0);
    strbuf_free(&sb);
    strbuf_init(&sb, 1 << 20);
    CHECK_EQ_INT(stats_dispatch(&R, "GET", "/metrics", "", &sb, &ct), 200);
    CHECK(strncmp(ct, "text/plain; version=0.0.4", 25) == 0);
    strbuf_free(&sb);
    strbuf_init(&sb, 1 << 20);
    CHECK_EQ_INT(stats_dispatch(&R, "POST", "/", "", &sb, &ct), 405);
    strbuf_free(&sb);
    strbuf_init(&sb, 1 << 20);
    CHECK_EQ_INT(stats_dispatch(&R, "GET", "/etc/passwd", "", &sb, &ct), 404);
    strbuf_free(&sb);
    strbuf_init(&sb, 100); /* a page that does not fit the cap answers 500, not a torso */
    CHECK_EQ_INT(stats_dispatch(&R, "GET", "/;csv", "", &sb, &ct), 500);
    strbuf_free(&sb);
}

int main(void)
{
    RUN(check_state_rise_fall_like_haproxy);
    RUN(write_target_needs_dcs_and_check_to_agree);
    RUN(replica_selection_least_conn_tags_fallback);
    RUN(csv_header_is_haproxy_26s);
    RUN(csv_rows_have_every_column_and_haproxy_values);
    RUN(json_prometheus_html);
    RUN(stats_request_routing_and_caps);
    if (loop)
        evloop_free(loop);
    return check_done();
}
