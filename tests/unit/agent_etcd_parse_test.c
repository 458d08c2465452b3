/* lib/etcd_client pure parts: response parsing per contracts §2.1 (base64, int64 strings,
 * omitted zero fields, errors), the watch stream splitter, and prefix range ends. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "etcd_client.h"

TEST(range_response)
{
    const char body[] =
        "{\"header\":{\"cluster_id\":\"1258597160876026949\",\"revision\":\"57\"},"
        "\"kvs\":[{\"key\":\"L3NlcnZpY2UvYmF0bWFuL2xlYWRlcg==\",\"create_revision\":\"40\","
        "\"mod_revision\":\"41\",\"version\":\"1\",\"value\":\"cG9zdGdyZXNxbDA=\","
        "\"lease\":\"7587862072907329069\"},{\"key\":\"L2E=\"}],\"count\":\"2\"}";
    etcd_result r;
    char err[128];
    CHECK_EQ_INT(etcd_parse_response(body, strlen(body), 200, &r, err, sizeof(err)), 0);
    CHECK_EQ_INT(r.ok, 1);
    CHECK_EQ_INT(r.revision, 57);
    CHECK_EQ_INT(r.nkvs, 2);
    CHECK_STR(r.kvs[0].key, "/service/batman/leader");
    CHECK_STR(r.kvs[0].value, "postgresql0");
    CHECK_EQ_INT(r.kvs[0].mod_revision, 41);
    CHECK(r.kvs[0].lease == 7587862072907329069LL);
    /* a key with an empty value has no "value" field */
    CHECK_STR(r.kvs[1].value, "");
    CHECK_EQ_INT(r.kvs[1].lease, 0);
    etcd_result_clear(&r);
}

TEST(txn_and_lease_responses)
{
    etcd_result r;
    char err[128];
    const char failed[] = "{\"header\":{\"revision\":\"9\"}}";
    CHECK_EQ_INT(etcd_parse_response(failed, strlen(failed), 200, &r, err, sizeof(err)), 0);
    CHECK_EQ_INT(r.succeeded, 0);
    const char ok[] = "{\"header\":{\"revision\":\"10\"},\"succeeded\":true,\"responses\":[]}";
    CHECK_EQ_INT(etcd_parse_response(ok, strlen(ok), 200, &r, err, sizeof(err)), 0);
    CHECK_EQ_INT(r.succeeded, 1);
    const char nested[] = "{\"header\":{},\"responses\":[{\"response_txn\":{\"succeeded\":true}}]}";
    CHECK_EQ_INT(etcd_parse_response(nested, strlen(nested), 200, &r, err, sizeof(err)), 0);
    CHECK_EQ_INT(r.succeeded, 1);
    /* keepalive on an expired lease: 200 without TTL */
    const char ka[] = "{\"result\":{\"header\":{\"revision\":\"3\"},\"ID\":\"77\"}}\n";
    CHECK_EQ_INT(etcd_parse_response(ka, strlen(ka), 200, &r, err, sizeof(err)), 0);
    CHECK_EQ_INT(r.lease_id, 77);
    CHECK_EQ_INT(r.ttl, 0);
    const char grant[] = "{\"header\":{},\"ID\":\"7587862072907329069\",\"TTL\":\"4\"}";
    CHECK_EQ_INT(etcd_parse_response(grant, strlen(grant), 200, &r, err, sizeof(err)), 0);
    CHECK_EQ_INT(r.ttl, 4);
}

TEST(error_responses)
{
    etcd_result r;
    char err[256];
    const char nf[] = "{\"error\":\"etcdserver: requested lease not found\",\"code\":5,"
                      "\"message\":\"etcdserver: requested lease not found\"}";
    CHECK_EQ_INT(etcd_parse_response(nf, strlen(nf), 404, &r, err, sizeof(err)), -1);
    CHECK_EQ_INT(r.ok, 0);
    CHECK_EQ_INT(r.grpc_code, 5);
    CHECK(strstr(r.error, "requested lease not found") != NULL);
    const char stream[] =
        "{\"error\":{\"grpc_code\":14,\"message\":\"no leader\",\"http_code\":503}}";
    CHECK_EQ_INT(etcd_parse_response(stream, strlen(stream), 200, &r, err, sizeof(err)), -1);
    CHECK_EQ_INT(r.grpc_code, 14);
    CHECK_EQ_INT(etcd_parse_response("garbage", 7, 200, &r, err, sizeof(err)), -1);
    CHECK(strstr(r.error, "unparsable") != NULL);
}

static int count_cb(const char *obj, size_t len, void *arg)
{
    int *n = arg;
    (*n)++;
    return obj[0] == '{' && obj[len - 1] == '}' ? 0 : -1;
}

TEST(watch_splitter)
{
    etcd_json_splitter s;
    etcd_splitter_init(&s, 1024);
    int n = 0;
    const char stream[] = "{\"result\":{\"created\":true}}\n{\"result\":{\"events\":[{\"kv\":"
                          "{\"key\":\"a}\"}}]}}{\"x\":\"\\\"}\"}";
    /* byte by byte: objects split across chunks, braces inside strings */
    for (size_t i = 0; i < strlen(stream); i++)
        CHECK_EQ_INT(etcd_splitter_feed(&s, stream + i, 1, count_cb, &n), 0);
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_INT(etcd_splitter_feed(&s, "]", 1, count_cb, &n), -1);
    etcd_splitter_free(&s);
    etcd_splitter_init(&s, 16);
    CHECK_EQ_INT(etcd_splitter_feed(&s, "{\"aaaaaaaaaaaaaaaaaaaaaa\":1}", 28, count_cb, &n), -1);
    etcd_splitter_free(&s);
}

TEST(prefix_end)
{
    char out[32];
    etcd_prefix_end("/service/batman/", 16, out);
    CHECK(memcmp(out, "/service/batman0", 16) == 0);
}

int main(void)
{
    RUN(range_response);
    RUN(txn_and_lease_responses);
    RUN(error_responses);
    RUN(watch_splitter);
    RUN(prefix_end);
    return check_done();
}
