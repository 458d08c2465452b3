/* appliance-dcs flags and ETCD_* environment: defaults, both flag spellings, env vs flag
 * precedence, and a clear error naming the flag/value for every kind of bad input. Also
 * the peer handshake check (cluster token mismatch is refused). */
#include <stdarg.h>
#include <string.h>

#include "check.h"
#include "dcs/flags.h"
#include "dcs/transport.h"

static dcs_flags f;
static char err[4096];

static int parse(char **env, int argc, ...)
{
    char *argv[32] = {"appliance-dcs"};
    va_list ap;
    va_start(ap, argc);
    for (int i = 0; i < argc && i < 30; i++)
        argv[i + 1] = va_arg(ap, char *);
    va_end(ap);
    err[0] = 0;
    return dcs_flags_parse(&f, argc + 1, argv, env, err, sizeof(err));
}

#define IC "n1=http://127.0.80.1:2380,n2=http://127.0.80.2:2380,n3=http://127.0.80.3:2380"

TEST(defaults_are_etcds)
{
    CHECK_EQ_INT(parse(NULL, 0), 0);
    CHECK_STR(f.name, "default");
    CHECK_STR(f.data_dir, "default.etcd");
    CHECK_STR(f.token, "etcd-cluster");
    CHECK_EQ_INT(f.heartbeat_ms, 100);
    CHECK_EQ_INT(f.election_ms, 1000);
    CHECK_EQ_INT(f.nmembers, 1);
    CHECK_STR(f.listen_client[0].host, "localhost");
    CHECK_STR(f.listen_client[0].port, "2379");
    CHECK(!f.enable_v2);
    CHECK(f.state_new);
}

TEST(three_members_both_spellings)
{
    CHECK_EQ_INT(parse(NULL, 9, "--name=n2", "-initial-cluster", IC,
                       "--initial-advertise-peer-urls", "http://127.0.80.2:2380",
                       "--heartbeat-interval=50", "--enable-v2", "--election-timeout", "500"),
                 0);
    CHECK_EQ_INT(f.nmembers, 3);
    CHECK_EQ_INT(f.self, 1);
    CHECK_STR(f.members[2].peer.host, "127.0.80.3");
    CHECK_EQ_INT(f.heartbeat_ms, 50);
    CHECK_EQ_INT(f.election_ms, 500);
    CHECK(f.enable_v2);
    CHECK(f.members[0].id != f.members[1].id);
    /* IDs and the cluster ID are stable (a restart must find the same ones) */
    uint64_t id = f.members[1].id, cid = f.cluster_id;
    CHECK_EQ_INT(parse(NULL, 4, "--name=n2", "--initial-cluster=" IC,
                       "--initial-advertise-peer-urls=http://127.0.80.2:2380", "--enable-v2=false"),
                 0);
    CHECK(f.members[1].id == id);
    CHECK(f.cluster_id == cid);
    CHECK(!f.enable_v2);
    /* another token: other member IDs and cluster ID */
    CHECK_EQ_INT(parse(NULL, 4, "--name=n2", "--initial-cluster=" IC,
                       "--initial-advertise-peer-urls=http://127.0.80.2:2380",
                       "--initial-cluster-token=other"),
                 0);
    CHECK(f.cluster_id != cid);
}

TEST(environment_and_flag_precedence)
{
    static char env_ic[] = "ETCD_INITIAL_CLUSTER=" IC;
    char *env[] = {"PATH=/bin",
                   "ETCD_NAME=n3",
                   env_ic,
                   "ETCD_INITIAL_ADVERTISE_PEER_URLS=http://127.0.80.3:2380",
                   "ETCD_DATA_DIR=/etcd-data",
                   "ETCD_ENABLE_V2=true",
                   "ETCDCTL_API=3",
                   NULL};
    CHECK_EQ_INT(parse(env, 0), 0);
    CHECK_STR(f.name, "n3");
    CHECK_STR(f.data_dir, "/etcd-data");
    CHECK(f.enable_v2);
    CHECK_EQ_INT(parse(env, 1, "--data-dir=/x"), 0);
    CHECK_STR(f.data_dir, "/x");
    char *bad[] = {"ETCD_NAMEE=x", NULL};
    CHECK_EQ_INT(parse(bad, 0), -1);
    CHECK(strstr(err, "ETCD_NAMEE") != NULL);
    char *badv[] = {"ETCD_HEARTBEAT_INTERVAL=fast", NULL};
    CHECK_EQ_INT(parse(badv, 0), -1);
    CHECK(strstr(err, "ETCD_HEARTBEAT_INTERVAL") && strstr(err, "fast"));
}

TEST(bad_input_names_flag_and_value)
{
    CHECK_EQ_INT(parse(NULL, 1, "--bogus=1"), -1);
    CHECK(strstr(err, "unknown flag") && strstr(err, "--bogus"));
    CHECK_EQ_INT(parse(NULL, 1, "--heartbeat-interval=abc"), -1);
    CHECK(strstr(err, "--heartbeat-interval") && strstr(err, "abc"));
    CHECK_EQ_INT(parse(NULL, 1, "--heartbeat-interval=-5"), -1);
    CHECK_EQ_INT(parse(NULL, 2, "--heartbeat-interval=300", "--election-timeout=1000"), -1);
    CHECK(strstr(err, "5 times") != NULL);
    CHECK_EQ_INT(parse(NULL, 1, "--initial-cluster-state=maybe"), -1);
    CHECK(strstr(err, "maybe") != NULL);
    CHECK_EQ_INT(parse(NULL, 1, "--listen-client-urls=https://127.0.0.1:2379"), -1);
    CHECK(strstr(err, "TLS") != NULL);
    CHECK_EQ_INT(parse(NULL, 1, "--listen-client-urls=http://127.0.0.1:99999"), -1);
    CHECK(strstr(err, "port") != NULL);
    CHECK_EQ_INT(parse(NULL, 1, "--listen-client-urls=http://127.0.0.1"), -1);
    CHECK_EQ_INT(parse(NULL, 1, "--enable-v2=maybe"), -1);
    CHECK(strstr(err, "--enable-v2") && strstr(err, "maybe"));
    CHECK_EQ_INT(parse(NULL, 1, "--name"), -1);
    CHECK(strstr(err, "needs an argument") != NULL);
    CHECK_EQ_INT(parse(NULL, 2, "--name=x", "--initial-cluster=" IC), -1);
    CHECK(strstr(err, "\"x\"") && strstr(err, "not in"));
    CHECK_EQ_INT(parse(NULL, 2, "--name=n1", "--initial-cluster=n1"), -1);
    CHECK(strstr(err, "NAME=URL") != NULL);
    /* the advertised peer URL must be this member's entry */
    CHECK_EQ_INT(parse(NULL, 2, "--name=n1", "--initial-cluster=" IC), -1);
    CHECK(strstr(err, "must match") != NULL);
    CHECK_EQ_INT(parse(NULL, 1, "stray"), -1);
    CHECK_EQ_INT(parse(NULL, 1, "--help"), 1);
    CHECK(strstr(err, "--initial-cluster") != NULL);
    CHECK_EQ_INT(parse(NULL, 1, "--snapshot-count=0"), -1);
}

TEST(auto_compaction)
{
    CHECK_EQ_INT(parse(NULL, 0), 0);
    CHECK(!f.compaction_periodic);
    CHECK_EQ_INT(f.compaction_retention, 1000); /* our default: bounded history */
    CHECK_EQ_INT(parse(NULL, 1, "--auto-compaction-retention=0"), 0);
    CHECK_EQ_INT(f.compaction_retention, 0);
    CHECK_EQ_INT(
        parse(NULL, 3, "--auto-compaction-mode", "revision", "--auto-compaction-retention=50"), 0);
    CHECK_EQ_INT(f.compaction_retention, 50);
    CHECK_EQ_INT(parse(NULL, 1, "--auto-compaction-mode=periodic"), 0);
    CHECK(f.compaction_periodic);
    CHECK_EQ_INT(f.compaction_retention, 3600000);
    CHECK_EQ_INT(
        parse(NULL, 2, "--auto-compaction-mode=periodic", "--auto-compaction-retention=1h30m"), 0);
    CHECK_EQ_INT(f.compaction_retention, 5400000);
    CHECK_EQ_INT(parse(NULL, 2, "--auto-compaction-mode=periodic", "--auto-compaction-retention=2"),
                 0);
    CHECK_EQ_INT(f.compaction_retention, 7200000); /* a bare number is hours, as etcd */
    char *env[] = {"ETCD_AUTO_COMPACTION_MODE=periodic", "ETCD_AUTO_COMPACTION_RETENTION=90s",
                   NULL};
    CHECK_EQ_INT(parse(env, 0), 0);
    CHECK_EQ_INT(f.compaction_retention, 90000);
    CHECK_EQ_INT(parse(NULL, 1, "--auto-compaction-mode=hourly"), -1);
    CHECK(strstr(err, "--auto-compaction-mode") && strstr(err, "\"hourly\""));
    CHECK_EQ_INT(
        parse(NULL, 2, "--auto-compaction-mode=periodic", "--auto-compaction-retention=1d"), -1);
    CHECK(strstr(err, "--auto-compaction-retention") && strstr(err, "\"1d\""));
    CHECK_EQ_INT(parse(NULL, 1, "--auto-compaction-retention=1h"), -1); /* revision mode: a count */
    CHECK(strstr(err, "\"1h\"") != NULL);
    CHECK_EQ_INT(parse(NULL, 2, "--auto-compaction-mode=periodic", "--auto-compaction-retention=m"),
                 -1);
}

TEST(ipv6_urls)
{
    CHECK_EQ_INT(parse(NULL, 1, "--listen-client-urls=http://[::1]:2379,http://127.0.0.1:2379"), 0);
    CHECK_EQ_INT(f.nlisten_client, 2);
    CHECK_STR(f.listen_client[0].host, "::1");
    CHECK_STR(f.listen_client[0].port, "2379");
}

TEST(handshake_refuses_other_cluster_and_strangers)
{
    transport_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.cluster_id = 77;
    cfg.self_id = 1;
    cfg.npeers = 2;
    cfg.peer_ids[0] = 2;
    cfg.peer_ids[1] = 3;
    uint8_t h[TRANSPORT_HELLO_LEN];
    uint64_t from = 0;
    char why[256];
    transport_hello_encode(h, 77, 3, 1);
    CHECK_EQ_INT(transport_hello_check(&cfg, h, -1, &from, why, sizeof(why)), 0);
    CHECK(from == 3);
    CHECK_EQ_INT(transport_hello_check(&cfg, h, 0, &from, why, sizeof(why)), -1); /* not peer 0 */
    transport_hello_encode(h, 78, 3, 1);
    CHECK_EQ_INT(transport_hello_check(&cfg, h, -1, &from, why, sizeof(why)), -1);
    CHECK(strstr(why, "cluster ID mismatch") != NULL);
    transport_hello_encode(h, 77, 9, 1);
    CHECK_EQ_INT(transport_hello_check(&cfg, h, -1, &from, why, sizeof(why)), -1);
    CHECK(strstr(why, "unknown member") != NULL);
    transport_hello_encode(h, 77, 3, 2);
    CHECK_EQ_INT(transport_hello_check(&cfg, h, -1, &from, why, sizeof(why)), -1);
    transport_hello_encode(h, 77, 3, 1);
    h[8] = 2; /* version */
    CHECK_EQ_INT(transport_hello_check(&cfg, h, -1, &from, why, sizeof(why)), -1);
    CHECK(strstr(why, "version") != NULL);
    h[0] = 'X';
    CHECK_EQ_INT(transport_hello_check(&cfg, h, -1, &from, why, sizeof(why)), -1);
}

int main(void)
{
    RUN(defaults_are_etcds);
    RUN(three_members_both_spellings);
    RUN(environment_and_flag_precedence);
    RUN(bad_input_names_flag_and_value);
    RUN(auto_compaction);
    RUN(ipv6_urls);
    RUN(handshake_refuses_other_cluster_and_strangers);
    return check_done();
}
