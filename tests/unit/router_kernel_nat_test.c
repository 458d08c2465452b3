/* router/kernel_nat.c against the running kernel (nf_tables, conntrack), with real sockets.
 *
 * Every kernel case runs in a forked child that unshare(CLONE_NEWNET)s, so its table, rules
 * and conntrack entries are its own and vanish with it. Addresses: L = 127.0.33.1:5000 (the
 * router's port), T = 127.0.33.2:5432 and T2 = 127.0.33.3:5432 (two "primaries"). A child
 * reports a failed requirement as a "# file:line: ..." line and exit status 1; the parent
 * turns that into the TAP result. Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN for unshare);
 * otherwise the kernel cases are skipped with the reason and only the parser cases run. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/netfilter/nf_conntrack_tcp.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>

#include "check.h"
#include "router/kernel_nat.h"

#define TABLE "knat_test"

/* ------------------------------------------------------------------ child helpers */

#define REQUIRE(cond, ...)                                                                         \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf("# %s:%d: %s: ", __FILE__, __LINE__, #cond);                                    \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
            fflush(stdout);                                                                        \
            _exit(1);                                                                              \
        }                                                                                          \
    } while (0)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct sockaddr_in addr(const char *ip, int port)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, ip, &a.sin_addr);
    return a;
}

static int listen_on(struct sockaddr_in a)
{
    int one = 1, l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(l >= 0, "socket: %s", strerror(errno));
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    REQUIRE(bind(l, (struct sockaddr *)&a, sizeof(a)) == 0, "bind: %s", strerror(errno));
    REQUIRE(listen(l, 64) == 0, "listen: %s", strerror(errno));
    return l;
}

/* Connected socket, or -errno. */
static int connect_to(struct sockaddr_in a)
{
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(c >= 0, "socket: %s", strerror(errno));
    if (connect(c, (struct sockaddr *)&a, sizeof(a)) < 0) {
        int e = errno;
        close(c);
        return -e;
    }
    return c;
}

/* Accepted socket if one arrives on l within ms, else -1. */
static int accept_within(int l, int ms)
{
    struct pollfd p = {.fd = l, .events = POLLIN};
    if (poll(&p, 1, ms) != 1)
        return -1;
    return accept4(l, NULL, NULL, SOCK_CLOEXEC);
}

/* Which of the listeners got the connection c made: the index in ls[], -1 for none. The
 * accepted socket goes to *srv. */
static int landed(const int *ls, int n, int *srv)
{
    struct pollfd p[4];
    for (int i = 0; i < n; i++)
        p[i] = (struct pollfd){.fd = ls[i], .events = POLLIN};
    if (poll(p, (nfds_t)n, 2000) < 1)
        return -1;
    for (int i = 0; i < n; i++)
        if (p[i].revents & POLLIN) {
            *srv = accept4(ls[i], NULL, NULL, SOCK_CLOEXEC);
            return i;
        }
    return -1;
}

static void send_all(int fd, const void *b, size_t n)
{
    REQUIRE(send(fd, b, n, MSG_NOSIGNAL) == (ssize_t)n, "send: %s", strerror(errno));
}

static void recv_exact(int fd, void *b, size_t n)
{
    size_t got = 0;
    double end = now_s() + 3;
    while (got < n) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        REQUIRE(poll(&p, 1, 200) >= 0, "poll: %s", strerror(errno));
        ssize_t r = recv(fd, (char *)b + got, n - got, MSG_DONTWAIT);
        if (r > 0)
            got += (size_t)r;
        REQUIRE(r != 0, "EOF after %zu of %zu bytes", got, n);
        REQUIRE(r > 0 || errno == EAGAIN, "recv: %s", strerror(errno));
        REQUIRE(now_s() < end, "only %zu of %zu bytes within 3 s", got, n);
    }
}

/* Bytes both ways across an established pair. */
static void exchange(int c, int s, size_t n)
{
    static char out[8192], in[8192];
    REQUIRE(n <= sizeof(out), "exchange too big");
    for (size_t i = 0; i < n; i++)
        out[i] = (char)('a' + i % 26);
    send_all(c, out, n);
    recv_exact(s, in, n);
    REQUIRE(memcmp(in, out, n) == 0, "bytes differ client->server");
    send_all(s, out, n / 2);
    recv_exact(c, in, n / 2);
    REQUIRE(memcmp(in, out, n / 2) == 0, "bytes differ server->client");
}

/* Sends until the kernel reports a reset (ECONNRESET/EPIPE) within 3 s: the flow is gone.
 * Returns the errno seen. */
static int wait_reset(int c)
{
    double end = now_s() + 3;
    while (now_s() < end) {
        if (send(c, "x", 1, MSG_NOSIGNAL) < 0 && (errno == ECONNRESET || errno == EPIPE))
            return errno;
        struct pollfd p = {.fd = c, .events = POLLIN};
        (void)poll(&p, 1, 100);
        char b[64];
        ssize_t r = recv(c, b, sizeof(b), MSG_DONTWAIT);
        if (r < 0 && (errno == ECONNRESET || errno == EPIPE))
            return errno;
        REQUIRE(r != 0, "a clean EOF instead of a reset");
        REQUIRE(r < 0, "the ended flow still delivered %zd bytes", r);
    }
    return 0;
}

static kernel_nat *open_ok(void)
{
    char err[256];
    kernel_nat *k = kernel_nat_open(TABLE, err, sizeof(err));
    REQUIRE(k, "open: %s", err);
    return k;
}

static void set_ok(kernel_nat *k, const kernel_nat_target *t)
{
    char err[256];
    REQUIRE(kernel_nat_set(k, t, err, sizeof(err)) == 0, "set: %s", err);
}

static kernel_nat_target target(const char *tip, uint8_t slot)
{
    kernel_nat_target t;
    memset(&t, 0, sizeof(t));
    t.listen = addr("127.0.33.1", 5000);
    t.target = addr(tip, 5432);
    t.slot = slot;
    return t;
}

static kernel_nat_flows flows[256];

static void dump_ok(kernel_nat *k)
{
    char err[256];
    REQUIRE(kernel_nat_flows_dump(k, flows, err, sizeof(err)) == 0, "dump: %s", err);
}

/* Output of a shell command (bounded), for checks with the nft CLI. */
static void run_cmd(const char *cmd, char *out, size_t n)
{
    FILE *f = popen(cmd, "r");
    REQUIRE(f, "popen %s", cmd);
    size_t got = fread(out, 1, n - 1, f);
    out[got] = '\0';
    pclose(f);
}

/* Runs fn in a child in a fresh network namespace with lo up; 0 when it exited 0. */
static int in_netns(void (*fn)(void))
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(20);
        REQUIRE(unshare(CLONE_NEWNET) == 0, "unshare: %s", strerror(errno));
        int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct ifreq ifr;
        memset(&ifr, 0, sizeof(ifr));
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
        REQUIRE(ioctl(s, SIOCGIFFLAGS, &ifr) == 0, "SIOCGIFFLAGS: %s", strerror(errno));
        ifr.ifr_flags |= IFF_UP;
        REQUIRE(ioctl(s, SIOCSIFFLAGS, &ifr) == 0, "SIOCSIFFLAGS: %s", strerror(errno));
        close(s);
        fn();
        fflush(stdout);
        _exit(0);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return -1;
    if (WIFSIGNALED(st))
        printf("# child killed by signal %d\n", WTERMSIG(st));
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int have_root;

#define KERNEL_CASE(name)                                                                          \
    TEST(name)                                                                                     \
    {                                                                                              \
        CHECK_EQ_INT(in_netns(child_##name), 0);                                                   \
    }

/* A kernel case runs as root only; otherwise its TAP line says SKIP with the reason. */
#define RUN_KERNEL(name)                                                                           \
    do {                                                                                           \
        if (have_root) {                                                                           \
            RUN(name);                                                                             \
        } else {                                                                                   \
            check_number++;                                                                        \
            printf("ok %d - %s # SKIP not root (needs CAP_NET_ADMIN, CAP_SYS_ADMIN)\n",            \
                   check_number, #name);                                                           \
        }                                                                                          \
    } while (0)

/* ------------------------------------------------------------------ kernel cases */

/* A connect to L lands on T's listener, then (no rules) on L's, then on T2's. */
static void child_set_routes_new_connections(void)
{
    kernel_nat *k = open_ok();
    int ls[3] = {listen_on(addr("127.0.33.1", 5000)), listen_on(addr("127.0.33.2", 5432)),
                 listen_on(addr("127.0.33.3", 5432))};
    kernel_nat_target t = target("127.0.33.2", 1), t2 = target("127.0.33.3", 2);
    int c, s = -1;

    set_ok(k, &t);
    c = connect_to(addr("127.0.33.1", 5000));
    REQUIRE(c >= 0, "connect: %s", strerror(-c));
    REQUIRE(landed(ls, 3, &s) == 1, "with the rule, the connect did not land on T");
    exchange(c, s, 4000);
    struct sockaddr_in peer;
    socklen_t pl = sizeof(peer);
    memset(&peer, 0, sizeof(peer));
    REQUIRE(getpeername(c, (struct sockaddr *)&peer, &pl) == 0, "getpeername: %s", strerror(errno));
    REQUIRE(peer.sin_port == htons(5000), "client sees port %u", ntohs(peer.sin_port));

    set_ok(k, NULL);
    int c2 = connect_to(addr("127.0.33.1", 5000)), s2 = -1;
    REQUIRE(c2 >= 0, "connect: %s", strerror(-c2));
    REQUIRE(landed(ls, 3, &s2) == 0, "without rules, the connect did not land on L");
    exchange(c2, s2, 100);
    exchange(c, s, 100); /* the flow to T is untouched by the rule change */

    set_ok(k, &t2);
    int c3 = connect_to(addr("127.0.33.1", 5000)), s3 = -1;
    REQUIRE(c3 >= 0, "connect: %s", strerror(-c3));
    REQUIRE(landed(ls, 3, &s3) == 2, "after set(T2), the connect did not land on T2");
    exchange(c3, s3, 100);

    /* The nft CLI reads back what was installed (a loopback target: no prerouting rule). */
    char out[8192];
    run_cmd("nft list table ip " TABLE " 2>&1", out, sizeof(out));
    REQUIRE(strstr(out, "flags owner") && strstr(out, "dnat to 127.0.33.3:5432") &&
                strstr(out, "ct mark set 0x41520102") && !strstr(out, "ct mark set 0x41520202") &&
                strstr(out, "ct mark 0x41520202 masquerade"),
            "nft shows:\n%s", out);
    kernel_nat_close(k);
    run_cmd("nft list tables 2>&1", out, sizeof(out));
    REQUIRE(!strstr(out, TABLE), "table left after close: %s", out);
}
KERNEL_CASE(set_routes_new_connections)

/* A batch the kernel rejects changes nothing: the previous rules (and timeout object) stay,
 * and the error names the message that failed. */
static void child_rejected_set_keeps_the_previous_rules(void)
{
    char err[256], out[4096];
    kernel_nat *k = open_ok();
    int ls[3] = {listen_on(addr("127.0.33.1", 5000)), listen_on(addr("127.0.33.2", 5432)),
                 listen_on(addr("127.0.33.3", 5432))};
    kernel_nat_target t = target("127.0.33.2", 1), t2 = target("127.0.33.3", 2);
    t.idle_timeout_s = 30;
    t2.idle_timeout_s = 40;
    set_ok(k, &t);
#ifdef APPLIANCE_TEST_BUILD /* always, in the unit test build (the linter parses without it) */
    kernel_nat_test_fail_next_set = 1;
#endif
    REQUIRE(kernel_nat_set(k, &t2, err, sizeof(err)) < 0, "the broken batch was accepted");
    printf("# rejected: %s\n", err);
    REQUIRE(strstr(err, "nf_tables: add rule nochain (test): No such file or directory"),
            "error: %s", err);
    int s = -1, c = connect_to(addr("127.0.33.1", 5000));
    REQUIRE(c >= 0 && landed(ls, 3, &s) == 1, "after the rejected set, not on the old target");
    run_cmd("nft list table ip " TABLE " 2>&1", out, sizeof(out));
    REQUIRE(strstr(out, "established : 30") && !strstr(out, "established : 40") &&
                !strstr(out, "127.0.33.3"),
            "after the rejected set:\n%s", out);
    set_ok(k, &t2); /* and the handle still works */
    c = connect_to(addr("127.0.33.1", 5000));
    REQUIRE(c >= 0 && landed(ls, 3, &s) == 2, "after a good set, not on the new target");
    run_cmd("nft list table ip " TABLE " 2>&1", out, sizeof(out));
    REQUIRE(!strstr(out, "established : 30") && strstr(out, "established : 40"),
            "timeout objects after the good set:\n%s", out);
    kernel_nat_close(k);
}
KERNEL_CASE(rejected_set_keeps_the_previous_rules)

/* Swapping T <-> T2 under a stream of connects (no listener on L, so an instant with
 * neither rule would refuse a connect, and with both would be unobservable but impossible
 * in one transaction). */
static void child_swap_under_connects_never_refuses(void)
{
    kernel_nat *k = open_ok();
    int lt = listen_on(addr("127.0.33.2", 5432)), lt2 = listen_on(addr("127.0.33.3", 5432));
    kernel_nat_target t = target("127.0.33.2", 1), t2 = target("127.0.33.3", 2);
    set_ok(k, &t);
    int pipefd[2];
    REQUIRE(pipe(pipefd) == 0, "pipe");
    pid_t pid = fork();
    if (pid == 0) { /* connector: 400 connects, each accepted on whichever target got it */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int counts[3] = {0, 0, 0};
        for (int i = 0; i < 400; i++) {
            int c = connect_to(addr("127.0.33.1", 5000));
            if (c < 0) {
                counts[2]++;
                continue;
            }
            int ls[2] = {lt, lt2}, s = -1;
            int w = landed(ls, 2, &s);
            if (w >= 0)
                counts[w]++;
            close(s);
            close(c);
        }
        if (write(pipefd[1], counts, sizeof(counts)) != sizeof(counts))
            _exit(2);
        _exit(0);
    }
    close(pipefd[1]);
    int swaps = 0, counts[3] = {0, 0, 0};
    struct pollfd p = {.fd = pipefd[0], .events = POLLIN};
    while (poll(&p, 1, 0) == 0) {
        set_ok(k, swaps % 2 ? &t : &t2);
        swaps++;
    }
    REQUIRE(read(pipefd[0], counts, sizeof(counts)) == sizeof(counts), "connector died");
    waitpid(pid, NULL, 0);
    printf("# %d swaps; connects on T %d, on T2 %d, refused %d\n", swaps, counts[0], counts[1],
           counts[2]);
    REQUIRE(counts[2] == 0, "%d connects refused during swaps", counts[2]);
    REQUIRE(counts[0] + counts[1] == 400, "only %d of 400 connects accepted",
            counts[0] + counts[1]);
    REQUIRE(counts[0] > 0 && counts[1] > 0 && swaps > 10, "swaps did not interleave");
    kernel_nat_close(k);
}
KERNEL_CASE(swap_under_connects_never_refuses)

/* end_flows(1) resets slot 1's flow at the client's next segment; slot 2's flow goes on. */
static void child_end_flows_resets_that_slot_only(void)
{
    char err[256];
    kernel_nat *k = open_ok();
    int ls[3] = {listen_on(addr("127.0.33.1", 5000)), listen_on(addr("127.0.33.2", 5432)),
                 listen_on(addr("127.0.33.3", 5432))};
    kernel_nat_target t = target("127.0.33.2", 1), t2 = target("127.0.33.3", 2);
    int s1 = -1, s2 = -1;
    set_ok(k, &t);
    int c1 = connect_to(addr("127.0.33.1", 5000));
    REQUIRE(c1 >= 0 && landed(ls, 3, &s1) == 1, "first connect not on T");
    exchange(c1, s1, 500);
    /* The primary moves to T2; the same target T stays reachable by rule for nobody. */
    set_ok(k, &t2);
    int c2 = connect_to(addr("127.0.33.1", 5000));
    REQUIRE(c2 >= 0 && landed(ls, 3, &s2) == 2, "second connect not on T2");
    exchange(c2, s2, 500);
    dump_ok(k);
    REQUIRE(flows[1].live == 1 && flows[2].live == 1, "live before: slot1 %llu slot2 %llu",
            (unsigned long long)flows[1].live, (unsigned long long)flows[2].live);

    int n = kernel_nat_end_flows(k, 1, err, sizeof(err));
    REQUIRE(n == 1, "end_flows(1) = %d (%s)", n, n < 0 ? err : "");
    int e = wait_reset(c1);
    REQUIRE(e == ECONNRESET || e == EPIPE, "no reset on slot 1's flow within 3 s");
    exchange(c2, s2, 500);
    dump_ok(k);
    REQUIRE(flows[1].live == 0 && flows[2].live == 1, "live after: slot1 %llu slot2 %llu",
            (unsigned long long)flows[1].live, (unsigned long long)flows[2].live);

    /* Even with the rule still pointing at the same target, an ended flow stays ended (only
     * a SYN is DNAT'ed; the client's next segment is a mid-stream pickup). */
    n = kernel_nat_end_flows(k, 2, err, sizeof(err));
    REQUIRE(n == 1, "end_flows(2) = %d (%s)", n, n < 0 ? err : "");
    e = wait_reset(c2);
    REQUIRE(e == ECONNRESET || e == EPIPE, "no reset on slot 2's flow under its own rule");
    n = kernel_nat_end_flows(k, 7, err, sizeof(err));
    REQUIRE(n == 0, "end_flows of an empty slot = %d (%s)", n, n < 0 ? err : "");

    /* A predecessor's flows: when its table goes, their NAT goes with it (the clients'
     * next segments are reset), but the conntrack entries, with our marks, stay until they
     * time out, and a new router would count them as its own. end_all_flows clears them. */
    int s3 = -1, s4 = -1;
    set_ok(k, &t);
    int c3 = connect_to(addr("127.0.33.1", 5000));
    REQUIRE(c3 >= 0 && landed(ls, 3, &s3) == 1, "third connect not on T");
    set_ok(k, &t2);
    int c4 = connect_to(addr("127.0.33.1", 5000));
    REQUIRE(c4 >= 0 && landed(ls, 3, &s4) == 2, "fourth connect not on T2");
    kernel_nat_close(k);
    k = open_ok();
    dump_ok(k);
    REQUIRE(flows[1].live == 1 && flows[2].live == 1,
            "a predecessor's entries: slot1 %llu slot2 %llu", (unsigned long long)flows[1].live,
            (unsigned long long)flows[2].live);
    n = kernel_nat_end_all_flows(k, err, sizeof(err));
    REQUIRE(n == 2, "end_all_flows = %d (%s)", n, n < 0 ? err : "");
    dump_ok(k);
    REQUIRE(flows[1].live == 0 && flows[2].live == 0, "entries left after end_all_flows");
    e = wait_reset(c3);
    REQUIRE(e == ECONNRESET || e == EPIPE, "slot 1's old flow not reset by end_all_flows");
    e = wait_reset(c4);
    REQUIRE(e == ECONNRESET || e == EPIPE, "slot 2's old flow not reset by end_all_flows");
    kernel_nat_close(k);
}
KERNEL_CASE(end_flows_resets_that_slot_only)

static void child_max_connections_overflow_lands_on_listener(void)
{
    kernel_nat *k = open_ok();
    int ls[2] = {listen_on(addr("127.0.33.1", 5000)), listen_on(addr("127.0.33.2", 5432))};
    kernel_nat_target t = target("127.0.33.2", 4);
    t.max_connections = 2;
    set_ok(k, &t);
    int c[3], s[3];
    for (int i = 0; i < 3; i++) {
        c[i] = connect_to(addr("127.0.33.1", 5000));
        REQUIRE(c[i] >= 0, "connect %d: %s", i, strerror(-c[i]));
        int w = landed(ls, 2, &s[i]);
        REQUIRE(w == (i < 2 ? 1 : 0), "connect %d landed on %d", i + 1, w);
        exchange(c[i], s[i], 100);
    }
    dump_ok(k);
    REQUIRE(flows[4].live == 2, "slot 4 live %llu (the third is not NAT'ed, no mark)",
            (unsigned long long)flows[4].live);
    kernel_nat_close(k);
}
KERNEL_CASE(max_connections_overflow_lands_on_listener)

static void child_idle_timeout_ends_the_flow(void)
{
    kernel_nat *k = open_ok();
    int ls[2] = {listen_on(addr("127.0.33.1", 5000)), listen_on(addr("127.0.33.2", 5432))};
    kernel_nat_target t = target("127.0.33.2", 5);
    t.idle_timeout_s = 1;
    set_ok(k, &t);
    set_ok(k, &t); /* a second set replaces the timeout object (new name, old one deleted) */
    int s = -1, c = connect_to(addr("127.0.33.1", 5000));
    REQUIRE(c >= 0 && landed(ls, 2, &s) == 1, "connect not on T");
    exchange(c, s, 100);
    double t0 = now_s(); /* the flow's last segment was just before */
    dump_ok(k);
    REQUIRE(flows[5].live == 1, "live %llu right after the exchange",
            (unsigned long long)flows[5].live);
    while (flows[5].live && now_s() - t0 < 5) {
        usleep(50 * 1000); /* polling the condition, with a deadline */
        dump_ok(k);
    }
    double gone = now_s() - t0;
    printf("# idle flow gone from conntrack after %.2f s\n", gone);
    REQUIRE(flows[5].live == 0, "idle flow still live after 5 s");
    REQUIRE(gone > 0.9, "gone after %.2f s: before the 1 s timeout?", gone);
    int e = wait_reset(c);
    REQUIRE(e == ECONNRESET || e == EPIPE, "no reset after the idle expiry");
    char out[4096];
    run_cmd("nft list table ip " TABLE " 2>&1", out, sizeof(out));
    REQUIRE(strstr(out, "idle_2") && !strstr(out, "idle_1"), "timeout objects:\n%s", out);
    set_ok(k, NULL);
    run_cmd("nft list table ip " TABLE " 2>&1", out, sizeof(out));
    REQUIRE(!strstr(out, "ct timeout"), "timeout object left after set(NULL):\n%s", out);
    kernel_nat_close(k);
}
KERNEL_CASE(idle_timeout_ends_the_flow)

typedef struct ev_log {
    int n_new, n_destroy, n_update;
    uint64_t in[8], out[8];
    int other_slot;
} ev_log;

static void on_ev(void *arg, uint8_t slot, int kind, uint64_t bin, uint64_t bout)
{
    ev_log *l = arg;
    if (slot != 6) {
        l->other_slot++;
        return;
    }
    if (kind == KNAT_EV_UPDATE) {
        l->n_update++;
    } else if (kind == KNAT_EV_NEW) {
        l->n_new++;
    } else if (l->n_destroy < 8) {
        l->in[l->n_destroy] = bin;
        l->out[l->n_destroy] = bout;
        l->n_destroy++;
    }
}

static void drain_until(kernel_nat *k, ev_log *l, int want_new, int want_destroy)
{
    double end = now_s() + 3;
    while ((l->n_new < want_new || l->n_destroy < want_destroy) && now_s() < end) {
        struct pollfd p = {.fd = kernel_nat_events_fd(k), .events = POLLIN};
        (void)poll(&p, 1, 100);
        REQUIRE(kernel_nat_events_drain(k, on_ev, l) == 0, "events lost or failed");
    }
}

/* Three flows with known payloads: dump figures and NEW/DESTROY events with counters. */
static void child_flows_dump_and_events(void)
{
    char err[256];
    kernel_nat *k = open_ok();
    int ls[2] = {listen_on(addr("127.0.33.1", 5000)), listen_on(addr("127.0.33.2", 5432))};
    kernel_nat_target t = target("127.0.33.2", 6);
    set_ok(k, &t);
    ev_log l;
    memset(&l, 0, sizeof(l));
    /* A connection that is not NAT'ed does not even wake the events fd (kernel-side filter
     * by mark; its NEW event was delivered, or not, before connect returned). */
    int d0 = connect_to(addr("127.0.33.2", 5432)), d0s = accept_within(ls[1], 2000);
    REQUIRE(d0 >= 0 && d0s >= 0, "direct connect");
    struct pollfd evp = {.fd = kernel_nat_events_fd(k), .events = POLLIN};
    REQUIRE(poll(&evp, 1, 100) == 0, "events fd readable after a connection without our mark");
    close(d0);
    close(d0s);
    int c[3], s[3];
    for (int i = 0; i < 3; i++) {
        c[i] = connect_to(addr("127.0.33.1", 5000));
        REQUIRE(c[i] >= 0 && landed(ls, 2, &s[i]) == 1, "connect %d not on T", i);
        exchange(c[i], s[i], 2000); /* 2000 bytes in, 1000 out */
    }
    /* A connection that is not NAT'ed (straight to T) produces no event of ours. */
    int d = connect_to(addr("127.0.33.2", 5432)), ds = accept_within(ls[1], 2000);
    REQUIRE(d >= 0 && ds >= 0, "direct connect");
    drain_until(k, &l, 3, 0);
    REQUIRE(l.n_new == 3, "%d NEW events for 3 connects", l.n_new);
    REQUIRE(l.other_slot == 0, "%d events of other slots", l.other_slot);

    dump_ok(k);
    int acct = kernel_nat_bytes_known(k);
    printf("# acct %d: slot 6 live %llu in %llu out %llu\n", acct,
           (unsigned long long)flows[6].live, (unsigned long long)flows[6].bytes_in,
           (unsigned long long)flows[6].bytes_out);
    REQUIRE(flows[6].live == 3, "live %llu", (unsigned long long)flows[6].live);
    REQUIRE(acct, "nf_conntrack_acct could not be turned on as root in a fresh netns");
    /* IP-level bytes: the payload plus 52-byte headers of each packet (a handful per flow
     * on loopback with its 64 KB MTU). */
    REQUIRE(flows[6].bytes_in >= 6000 && flows[6].bytes_in <= 6000 + 3 * 20 * 64,
            "bytes_in %llu for 6000 sent", (unsigned long long)flows[6].bytes_in);
    REQUIRE(flows[6].bytes_out >= 3000 && flows[6].bytes_out <= 3000 + 3 * 20 * 64,
            "bytes_out %llu for 3000 received", (unsigned long long)flows[6].bytes_out);
    for (int i = 0; i < 256; i++)
        REQUIRE(i == 6 || (flows[i].live == 0 && flows[i].bytes_in == 0), "slot %d has flows", i);

    /* A conntrack-only handle (another socket, as a worker thread would use) sees the same
     * flows and ends them; it has no table to set rules in, and closing it leaves ours. */
    kernel_nat *ct = kernel_nat_ct_open(err, sizeof(err));
    REQUIRE(ct, "ct_open: %s", err);
    REQUIRE(kernel_nat_set(ct, &t, err, sizeof(err)) < 0 && strstr(err, "conntrack-only"),
            "set on a conntrack-only handle: %s", err);
    REQUIRE(kernel_nat_events_fd(ct) == -1, "a conntrack-only handle has an events fd");
    static kernel_nat_flows f2[256];
    REQUIRE(kernel_nat_flows_dump(ct, f2, err, sizeof(err)) == 0, "ct dump: %s", err);
    REQUIRE(f2[6].live == 3, "ct handle sees %llu live", (unsigned long long)f2[6].live);
    int n = kernel_nat_end_flows(ct, 6, err, sizeof(err));
    REQUIRE(n == 3, "end_flows = %d (%s)", n, n < 0 ? err : "");
    kernel_nat_close(ct);
    char out[4096];
    run_cmd("nft list tables 2>&1", out, sizeof(out));
    REQUIRE(strstr(out, TABLE), "closing the conntrack-only handle took the table: %s", out);
    drain_until(k, &l, 3, 3);
    REQUIRE(l.n_destroy == 3, "%d DESTROY events for 3 ended flows", l.n_destroy);
    for (int i = 0; i < 3; i++)
        REQUIRE(l.in[i] >= 2000 && l.in[i] <= 2000 + 20 * 64 && l.out[i] >= 1000 &&
                    l.out[i] <= 1000 + 20 * 64,
                "DESTROY %d bytes in %llu out %llu", i, (unsigned long long)l.in[i],
                (unsigned long long)l.out[i]);
    REQUIRE(l.n_new == 3, "extra NEW events: %d", l.n_new);
    /* State changes (SYN_RECV, ESTABLISHED, ...) come as UPDATE events, never as NEW. */
    REQUIRE(l.n_update >= 3, "%d UPDATE events for 3 flows established", l.n_update);
    kernel_nat_close(k);
}
KERNEL_CASE(flows_dump_and_events)

/* Events the socket had no room for are reported (drain returns 1: resync by dump), and the
 * socket goes on delivering afterwards. */
static void child_lost_events_are_reported(void)
{
    kernel_nat *k = open_ok();
    int lt = listen_on(addr("127.0.33.2", 5432));
    kernel_nat_target t = target("127.0.33.2", 6);
    set_ok(k, &t);
    int small = 1; /* the kernel rounds up to its minimum, a few events' worth */
    REQUIRE(setsockopt(kernel_nat_events_fd(k), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)) == 0,
            "SO_RCVBUF: %s", strerror(errno));
    for (int i = 0; i < 40; i++) {
        int c = connect_to(addr("127.0.33.1", 5000)), s = accept_within(lt, 2000);
        REQUIRE(c >= 0 && s >= 0, "connect %d", i);
        close(s);
        close(c);
    }
    ev_log l;
    memset(&l, 0, sizeof(l));
    REQUIRE(kernel_nat_events_drain(k, on_ev, &l) == 1, "40 undrained NEW events, none lost?");
    REQUIRE(l.n_new < 40, "%d of 40 NEW events arrived through a minimal buffer", l.n_new);
    /* Back to a roomy buffer; the 40 flows' closing UPDATE events may have overflowed the
     * small one again meanwhile: drain until a read finds nothing lost. */
    int roomy = 1 << 20;
    REQUIRE(setsockopt(kernel_nat_events_fd(k), SOL_SOCKET, SO_RCVBUF, &roomy, sizeof(roomy)) == 0,
            "SO_RCVBUF: %s", strerror(errno));
    double until = now_s() + 2;
    while (kernel_nat_events_drain(k, on_ev, &l) != 0 && now_s() < until) {
    }
    memset(&l, 0, sizeof(l));
    int c = connect_to(addr("127.0.33.1", 5000)), s = accept_within(lt, 2000);
    REQUIRE(c >= 0 && s >= 0, "connect after the loss");
    drain_until(k, &l, 1, 0);
    REQUIRE(l.n_new == 1, "%d NEW events after the loss", l.n_new);
    kernel_nat_close(k);
}
KERNEL_CASE(lost_events_are_reported)

/* The table belongs to the opening socket: killed -9, its rules go with it. Also: a table
 * left without an owner is replaced; one with a live owner is not taken over. */
static void child_owner_table_dies_with_the_process(void)
{
    char err[256], out[4096];
    int ls[2] = {listen_on(addr("127.0.33.1", 5000)), listen_on(addr("127.0.33.2", 5432))};
    int ready[2];
    REQUIRE(pipe(ready) == 0, "pipe");
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives a failed case */
        kernel_nat *k = open_ok();
        kernel_nat_target t = target("127.0.33.2", 1);
        set_ok(k, &t);
        if (write(ready[1], "r", 1) != 1)
            _exit(2);
        for (;;)
            pause();
    }
    char r;
    REQUIRE(read(ready[0], &r, 1) == 1, "owner child did not get ready");
    int s = -1, c = connect_to(addr("127.0.33.1", 5000));
    REQUIRE(c >= 0 && landed(ls, 2, &s) == 1, "the owner's rule did not apply");
    close(c);
    close(s);
    /* Another opener cannot take a live owner's table. */
    kernel_nat *k2 = kernel_nat_open(TABLE, err, sizeof(err));
    REQUIRE(!k2 && strstr(err, "belongs to a live process"), "second open: %s",
            k2 ? "succeeded" : err);

    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    double end = now_s() + 3;
    do
        run_cmd("nft list tables 2>&1", out, sizeof(out));
    while (strstr(out, TABLE) && now_s() < end && usleep(20 * 1000) == 0);
    REQUIRE(!strstr(out, TABLE), "table outlived its owner: %s", out);
    c = connect_to(addr("127.0.33.1", 5000));
    REQUIRE(c >= 0 && landed(ls, 2, &s) == 0, "after the owner died, connect not on L");

    /* A stale table without an owner (an older run's, or made by hand) is replaced. */
    run_cmd("nft add table ip " TABLE " && nft add chain ip " TABLE
            " output '{ type nat hook output priority -100; }' && nft add rule ip " TABLE
            " output tcp dport 5000 dnat to 127.0.33.9:1 && echo made 2>&1",
            out, sizeof(out));
    REQUIRE(strstr(out, "made"), "could not make the stale table: %s", out);
    kernel_nat *k = open_ok();
    run_cmd("nft list table ip " TABLE " 2>&1", out, sizeof(out));
    REQUIRE(strstr(out, "flags owner") && !strstr(out, "127.0.33.9"), "after open:\n%s", out);
    kernel_nat_close(k);
}
KERNEL_CASE(owner_table_dies_with_the_process)

static void child_unprivileged_open_names_the_operation(void)
{
    char err[256];
    REQUIRE(setgid(65534) == 0 && setuid(65534) == 0, "setuid: %s", strerror(errno));
    kernel_nat *k = kernel_nat_open(TABLE, err, sizeof(err));
    printf("# as uid 65534: %s\n", k ? "opened" : err);
    REQUIRE(!k, "opened without CAP_NET_ADMIN");
    REQUIRE(strstr(err, "create table " TABLE) && strstr(err, "Operation not permitted") &&
                strstr(err, "CAP_NET_ADMIN"),
            "message: %s", err);
}
KERNEL_CASE(unprivileged_open_names_the_operation)

/* Refused before any message is sent (no root needed). */
TEST(bad_table_names_refused)
{
    char err[256], longname[300];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    CHECK(kernel_nat_open("", err, sizeof(err)) == NULL);
    CHECK(strstr(err, "empty") != NULL);
    CHECK(kernel_nat_open(NULL, err, sizeof(err)) == NULL);
    CHECK(kernel_nat_open(longname, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "longer than 255") != NULL);
    CHECK(kernel_nat_open("a b", err, sizeof(err)) == NULL);
    CHECK(strstr(err, "'a b'") != NULL && strstr(err, "0x20") != NULL);
    CHECK(kernel_nat_open("x;drop", err, sizeof(err)) == NULL);
    CHECK_EQ_INT(kernel_nat_table_name_ok("appliance_router_5000", err, sizeof(err)), 0);
    longname[255] = '\0';
    CHECK_EQ_INT(kernel_nat_table_name_ok(longname, err, sizeof(err)), 0);
    kernel_nat_close(NULL);
    CHECK_EQ_INT(kernel_nat_bytes_known(NULL), 0);
    CHECK_EQ_INT(kernel_nat_events_fd(NULL), -1);
}

static void child_set_rejects_bad_targets(void)
{
    char err[256];
    kernel_nat *k = open_ok();
    kernel_nat_target t = target("127.0.33.2", 1);
    t.target.sin_family = AF_INET6;
    REQUIRE(kernel_nat_set(k, &t, err, sizeof(err)) < 0 && strstr(err, "IPv4"), "v6: %s", err);
    t = target("0.0.0.0", 1);
    REQUIRE(kernel_nat_set(k, &t, err, sizeof(err)) < 0, "target 0.0.0.0 accepted");
    /* INADDR_ANY listen: only prerouting gets rules (no output rule: local clients reach
     * the router's own listener). */
    t = target("198.18.2.2", 9);
    t.listen = addr("0.0.0.0", 5000);
    set_ok(k, &t);
    char out[4096];
    run_cmd("nft list chain ip " TABLE " output 2>&1", out, sizeof(out));
    REQUIRE(!strstr(out, "dnat"), "output chain with INADDR_ANY listen:\n%s", out);
    run_cmd("nft list chain ip " TABLE " prerouting 2>&1", out, sizeof(out));
    REQUIRE(strstr(out, "tcp dport 5000") && !strstr(out, "ip daddr") &&
                strstr(out, "ct mark set 0x41520209"),
            "prerouting chain:\n%s", out);
    kernel_nat_close(k);
}
KERNEL_CASE(set_rejects_bad_targets)

/* A namespace held by a paused child (killed with us). Returns its /proc/PID/ns/net fd. */
static int hold_netns(pid_t *pid)
{
    int ready[2];
    REQUIRE(pipe(ready) == 0, "pipe");
    *pid = fork();
    REQUIRE(*pid >= 0, "fork");
    if (*pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (unshare(CLONE_NEWNET) != 0 || write(ready[1], "r", 1) != 1)
            _exit(2);
        for (;;)
            pause();
    }
    char r, path[64];
    REQUIRE(read(ready[0], &r, 1) == 1, "netns holder failed");
    close(ready[0]);
    close(ready[1]);
    snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)*pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0, "open %s: %s", path, strerror(errno));
    return fd;
}

/* Runs a shell command inside the namespace nsfd (home: ours, to come back to). */
static void sh_in(int nsfd, int home, const char *cmd)
{
    char out[1024];
    REQUIRE(setns(nsfd, CLONE_NEWNET) == 0, "setns: %s", strerror(errno));
    run_cmd(cmd, out, sizeof(out));
    REQUIRE(setns(home, CLONE_NEWNET) == 0, "setns home: %s", strerror(errno));
    REQUIRE(strstr(out, "done"), "%s: %s", cmd, out);
}

/* A TCP socket that lives in namespace nsfd (a socket keeps the namespace it was made in). */
static int socket_in(int nsfd, int home)
{
    REQUIRE(setns(nsfd, CLONE_NEWNET) == 0, "setns: %s", strerror(errno));
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(setns(home, CLONE_NEWNET) == 0, "setns home: %s", strerror(errno));
    REQUIRE(s >= 0, "socket: %s", strerror(errno));
    return s;
}

/* connect() with a 3 s deadline (without the masquerade the SYN-ACK never comes back). */
static void connect_nb(int c, struct sockaddr_in a)
{
    int fl = fcntl(c, F_GETFL);
    REQUIRE(fcntl(c, F_SETFL, fl | O_NONBLOCK) == 0, "O_NONBLOCK");
    REQUIRE(connect(c, (struct sockaddr *)&a, sizeof(a)) == 0 || errno == EINPROGRESS,
            "connect: %s", strerror(errno));
    struct pollfd p = {.fd = c, .events = POLLOUT};
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    REQUIRE(poll(&p, 1, 3000) == 1, "connect not done within 3 s");
    REQUIRE(getsockopt(c, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0, "connect: %s",
            strerror(soerr));
    REQUIRE(fcntl(c, F_SETFL, fl) == 0, "blocking again");
}

/* The forwarded origin: client C and primary P in namespaces of their own, joined to this
 * one (the router's, R) by veth pairs on addresses of the RFC 2544 benchmarking range, which
 * exist only inside these private namespaces. P has no route back to C: the flow only
 * works if R masquerades it (postrouting rule, by the FWD mark). */
static void child_forwarded_clients_are_dnated_and_masqueraded(void)
{
    char err[256], cmd[512];
    pid_t cp, pp;
    int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    REQUIRE(home >= 0, "open own netns");
    int cns = hold_netns(&cp), pns = hold_netns(&pp);
    snprintf(cmd, sizeof(cmd),
             "ip link add rc type veth peer name cr netns %d && ip link add rp type veth peer "
             "name pr netns %d && ip addr add 198.18.1.1/24 dev rc && ip addr add 198.18.2.1/24 "
             "dev rp && ip link set rc up && ip link set rp up && echo done 2>&1",
             (int)cp, (int)pp);
    char out[1024];
    run_cmd(cmd, out, sizeof(out));
    REQUIRE(strstr(out, "done"), "veth setup: %s", out);
    int fd = open("/proc/sys/net/ipv4/ip_forward", O_WRONLY | O_CLOEXEC);
    REQUIRE(fd >= 0 && write(fd, "0\n", 2) == 2, "ip_forward off");
    REQUIRE(kernel_nat_forwarding() == 0, "forwarding reported on");
    REQUIRE(lseek(fd, 0, SEEK_SET) == 0 && write(fd, "1\n", 2) == 2, "ip_forward on");
    REQUIRE(kernel_nat_forwarding() == 1, "forwarding reported off");
    close(fd);
    sh_in(cns, home,
          "ip addr add 198.18.1.2/24 dev cr && ip link set cr up && ip link set lo up && ip "
          "route add default via 198.18.1.1 && echo done 2>&1");
    sh_in(pns, home,
          "ip addr add 198.18.2.2/24 dev pr && ip link set pr up && ip link set lo up && echo "
          "done 2>&1");

    kernel_nat *k = open_ok();
    kernel_nat_target t = target("198.18.2.2", 3);
    t.listen = addr("0.0.0.0", 5000);
    set_ok(k, &t);
    int lr = listen_on(addr("0.0.0.0", 5000)); /* the router's own listener */
    int lp = socket_in(pns, home), one = 1;
    struct sockaddr_in pa = addr("198.18.2.2", 5432);
    setsockopt(lp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    REQUIRE(bind(lp, (struct sockaddr *)&pa, sizeof(pa)) == 0 && listen(lp, 8) == 0,
            "listen in P: %s", strerror(errno));

    int c = socket_in(cns, home);
    struct sockaddr_in ra = addr("198.18.1.1", 5000);
    connect_nb(c, ra);
    int ls[2] = {lr, lp}, s = -1;
    REQUIRE(landed(ls, 2, &s) == 1, "the forwarded connect did not reach P");
    struct sockaddr_in peer;
    socklen_t pl = sizeof(peer);
    memset(&peer, 0, sizeof(peer));
    REQUIRE(getpeername(s, (struct sockaddr *)&peer, &pl) == 0, "getpeername");
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof(ip));
    REQUIRE(strcmp(ip, "198.18.2.1") == 0, "P sees the client as %s, not masqueraded", ip);
    exchange(c, s, 3000);
    dump_ok(k);
    REQUIRE(flows[3].live == 1, "slot 3 live %llu", (unsigned long long)flows[3].live);
    int n = kernel_nat_end_flows(k, 3, err, sizeof(err));
    REQUIRE(n == 1, "end_flows(3) = %d (%s)", n, n < 0 ? err : "");
    int e = wait_reset(c);
    REQUIRE(e == ECONNRESET || e == EPIPE, "no reset for the forwarded flow after end_flows");

    /* A loopback listen address with a remote target: no output rule (the SYN could not
     * leave lo with its 127.x source and the client would hang); the local client reaches
     * the router's listener. */
    t.listen = addr("127.0.33.1", 5000);
    set_ok(k, &t);
    int lo_c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), lo_s = -1;
    REQUIRE(lo_c >= 0, "socket");
    connect_nb(lo_c, addr("127.0.33.1", 5000));
    REQUIRE(landed(ls, 2, &lo_s) == 0, "loopback client with a remote target not on the router");
    close(lo_c);
    close(lo_s);

    /* A loopback target: no prerouting rule (a forwarded SYN DNAT'ed to 127.x would be
     * dropped as a martian and the client would hang); the forwarded client reaches the
     * router's listener. */
    t = target("127.0.33.2", 3);
    t.listen = addr("0.0.0.0", 5000);
    set_ok(k, &t);
    int c5 = socket_in(cns, home), s5 = -1;
    connect_nb(c5, ra);
    REQUIRE(landed(ls, 2, &s5) == 0, "forwarded client with a loopback target not on the router");
    close(c5);
    close(s5);
    t = target("198.18.2.2", 3);

    /* One connection limit covers both origins. A local client (source on P's side, so P
     * can answer it without masquerade) takes the only place; the forwarded client is then
     * over the limit and reaches the router's own listener. */
    t.listen = addr("198.18.1.1", 5000);
    t.max_connections = 1;
    set_ok(k, &t);
    int lc = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in src = addr("198.18.2.1", 0);
    REQUIRE(lc >= 0 && bind(lc, (struct sockaddr *)&src, sizeof(src)) == 0, "bind local client");
    connect_nb(lc, ra);
    int ls_ = -1;
    REQUIRE(landed(ls, 2, &ls_) == 1, "the local client (under the limit) did not reach P");
    exchange(lc, ls_, 100);
    int c2 = socket_in(cns, home), s2 = -1;
    connect_nb(c2, ra);
    REQUIRE(landed(ls, 2, &s2) == 0, "the forwarded client over the shared limit was NAT'ed");
    kernel_nat_close(k);
}
KERNEL_CASE(forwarded_clients_are_dnated_and_masqueraded)

/* ------------------------------------------------------------------ parser cases */

typedef struct parsed {
    int n_ct, n_ack, n_done, n_table;
    kernel_nat_msg last;
} parsed;

static int collect(void *arg, const kernel_nat_msg *m)
{
    parsed *p = arg;
    p->last = *m;
    if (m->kind == KNAT_MSG_CT)
        p->n_ct++;
    else if (m->kind == KNAT_MSG_ACK)
        p->n_ack++;
    else if (m->kind == KNAT_MSG_DONE)
        p->n_done++;
    else if (m->kind == KNAT_MSG_TABLE)
        p->n_table++;
    return 0;
}

/* A tiny writer for hand-made answers. */
typedef struct wbuf {
    uint8_t b[1024];
    size_t len;
} wbuf;

static size_t w_put(wbuf *w, const void *d, size_t n)
{
    size_t at = w->len;
    memcpy(w->b + w->len, d, n);
    w->len += (n + 3) & ~(size_t)3;
    return at;
}

static size_t w_attr(wbuf *w, uint16_t type, const void *d, size_t n)
{
    struct nlattr h = {.nla_len = (uint16_t)(NLA_HDRLEN + n), .nla_type = type};
    size_t at = w_put(w, &h, sizeof(h));
    if (d && n)
        w_put(w, d, n);
    return at;
}

static void w_close(wbuf *w, size_t at) /* fix a nest's length */
{
    uint16_t len = (uint16_t)(w->len - at);
    memcpy(w->b + at, &len, 2);
}

/* A ctnetlink DESTROY event with mark, TCP state and counters. */
static void make_ct(wbuf *w, uint32_t mark, uint8_t state, uint64_t bin, uint64_t bout)
{
    memset(w, 0, sizeof(*w));
    struct nlmsghdr h = {.nlmsg_type = NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_DELETE,
                         .nlmsg_seq = 77};
    struct nfgenmsg g = {.nfgen_family = AF_INET};
    w_put(w, &h, sizeof(h));
    w_put(w, &g, sizeof(g));
    uint32_t m = htonl(mark);
    w_attr(w, CTA_MARK, &m, 4);
    size_t pi = w_attr(w, CTA_PROTOINFO | NLA_F_NESTED, NULL, 0);
    size_t tcp = w_attr(w, CTA_PROTOINFO_TCP | NLA_F_NESTED, NULL, 0);
    w_attr(w, CTA_PROTOINFO_TCP_STATE, &state, 1);
    w_close(w, tcp);
    w_close(w, pi);
    uint8_t be[2][8];
    for (int j = 0; j < 8; j++) {
        be[0][j] = (uint8_t)(bin >> (56 - 8 * j));
        be[1][j] = (uint8_t)(bout >> (56 - 8 * j));
    }
    for (int i = 0; i < 2; i++) {
        size_t c = w_attr(
            w, (uint16_t)((i ? CTA_COUNTERS_REPLY : CTA_COUNTERS_ORIG) | NLA_F_NESTED), NULL, 0);
        w_attr(w, CTA_COUNTERS_BYTES, be[i], 8);
        w_close(w, c);
    }
    uint32_t len = (uint32_t)w->len;
    memcpy(w->b, &len, 4);
}

TEST(parser_reads_a_conntrack_message)
{
    wbuf w;
    parsed p;
    char err[160];
    make_ct(&w, 0x41520107, TCP_CONNTRACK_ESTABLISHED, 123456789012ull, 42);
    memset(&p, 0, sizeof(p));
    CHECK_EQ_INT(kernel_nat_parse(w.b, w.len, collect, &p, err, sizeof(err)), 0);
    CHECK_EQ_INT(p.n_ct, 1);
    CHECK(p.last.has_mark && p.last.mark == 0x41520107);
    CHECK_EQ_INT(p.last.ct_destroy, 1);
    CHECK_EQ_INT(p.last.tcp_state, TCP_CONNTRACK_ESTABLISHED);
    CHECK(p.last.bytes_orig == 123456789012ull && p.last.bytes_reply == 42);
    CHECK_EQ_INT(p.last.seq, 77);
    /* An ack and a DONE after it in the same buffer. */
    struct {
        struct nlmsghdr h;
        int32_t e;
        struct nlmsghdr orig;
    } ack = {{sizeof(ack), NLMSG_ERROR, 0, 78, 0}, -EPERM, {0, 0, 0, 0, 0}};
    struct {
        struct nlmsghdr h;
        int32_t e;
    } done = {{sizeof(done), NLMSG_DONE, 2, 79, 0}, 0};
    memcpy(w.b + w.len, &ack, sizeof(ack));
    memcpy(w.b + w.len + sizeof(ack), &done, sizeof(done));
    memset(&p, 0, sizeof(p));
    CHECK_EQ_INT(
        kernel_nat_parse(w.b, w.len + sizeof(ack) + sizeof(done), collect, &p, err, sizeof(err)),
        0);
    CHECK(p.n_ct == 1 && p.n_ack == 1 && p.n_done == 1);
}

TEST(parser_rejects_garbage)
{
    wbuf w;
    parsed p;
    char err[160];
    make_ct(&w, 0x41520107, 3, 1, 2);
    /* Every truncation of a valid message is either a shorter valid buffer or an error,
     * never an out-of-bounds read (ASan watches). A cut message is an error. */
    for (size_t cut = 0; cut < w.len; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1); /* exact size: ASan sees any overread */
        memcpy(copy, w.b, cut);
        memset(&p, 0, sizeof(p));
        int r = kernel_nat_parse(copy, cut, collect, &p, err, sizeof(err));
        free(copy);
        CHECK(cut == 0 ? r == 0 : r == -1);
        CHECK_EQ_INT(p.n_ct, 0);
    }
    /* nlmsg_len larger than the buffer ("oversized"). */
    wbuf big = w;
    uint32_t len = (uint32_t)big.len + 4;
    memcpy(big.b, &len, 4);
    CHECK_EQ_INT(kernel_nat_parse(big.b, big.len, collect, &p, err, sizeof(err)), -1);
    CHECK(strstr(err, "message length") != NULL);
    /* An attribute of length 0 would loop a careless walker forever. */
    wbuf z = w;
    uint16_t zero = 0;
    memcpy(z.b + NLMSG_HDRLEN + 4, &zero, 2); /* the first attribute's nla_len */
    CHECK_EQ_INT(kernel_nat_parse(z.b, z.len, collect, &p, err, sizeof(err)), -1);
    CHECK(strstr(err, "length 0") != NULL);
    /* A nested attribute claiming more than its container. */
    wbuf n = w;
    uint16_t huge = 400;
    memcpy(n.b + NLMSG_HDRLEN + 4 + 8 + 4, &huge, 2); /* CTA_PROTOINFO_TCP inside PROTOINFO */
    CHECK_EQ_INT(kernel_nat_parse(n.b, n.len, collect, &p, err, sizeof(err)), -1);
    /* A mark of the wrong size. */
    wbuf m = w;
    uint16_t five = 5;
    memcpy(m.b + NLMSG_HDRLEN + 4, &five, 2);
    CHECK_EQ_INT(kernel_nat_parse(m.b, m.len, collect, &p, err, sizeof(err)), -1);
    /* An error message too short to hold its code; an error code out of range. */
    struct nlmsghdr h = {NLMSG_HDRLEN + 2, NLMSG_ERROR, 0, 1, 0};
    uint8_t e[NLMSG_HDRLEN + 4] = {0};
    memcpy(e, &h, sizeof(h));
    CHECK_EQ_INT(kernel_nat_parse(e, NLMSG_HDRLEN + 2, collect, &p, err, sizeof(err)), -1);
    h.nlmsg_len = NLMSG_HDRLEN + 4;
    int32_t code = 5;
    memcpy(e, &h, sizeof(h));
    memcpy(e + NLMSG_HDRLEN, &code, 4);
    CHECK_EQ_INT(kernel_nat_parse(e, sizeof(e), collect, &p, err, sizeof(err)), -1);
    /* Random bytes: any verdict, no crash, terminates. */
    srand(6);
    for (int round = 0; round < 20000; round++) {
        uint8_t r[256];
        size_t rl = (size_t)(rand() % (int)sizeof(r));
        memcpy(r, w.b, rl < w.len ? rl : w.len);
        for (int j = 0; j < 1 + rand() % 6; j++)
            if (rl)
                r[rand() % (int)rl] = (uint8_t)rand();
        uint8_t *copy = malloc(rl ? rl : 1);
        memcpy(copy, r, rl);
        (void)kernel_nat_parse(copy, rl, collect, &p, err, sizeof(err));
        free(copy);
    }
}

int main(void)
{
    have_root = geteuid() == 0;
    if (!have_root)
        printf("# not root: the kernel cases skip (CI runs them as root)\n");
    RUN(bad_table_names_refused);
    RUN(parser_reads_a_conntrack_message);
    RUN(parser_rejects_garbage);
    RUN_KERNEL(set_routes_new_connections);
    RUN_KERNEL(rejected_set_keeps_the_previous_rules);
    RUN_KERNEL(swap_under_connects_never_refuses);
    RUN_KERNEL(end_flows_resets_that_slot_only);
    RUN_KERNEL(max_connections_overflow_lands_on_listener);
    RUN_KERNEL(idle_timeout_ends_the_flow);
    RUN_KERNEL(flows_dump_and_events);
    RUN_KERNEL(lost_events_are_reported);
    RUN_KERNEL(owner_table_dies_with_the_process);
    RUN_KERNEL(unprivileged_open_names_the_operation);
    RUN_KERNEL(set_rejects_bad_targets);
    RUN_KERNEL(forwarded_clients_are_dnated_and_masqueraded);
    return check_done();
}
