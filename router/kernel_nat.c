/* nf_tables + ctnetlink over raw NETLINK_NETFILTER sockets (see kernel_nat.h).
 *
 * Encoding: every request is built in the handle's fixed transmit buffer; a message that
 * would not fit sets an overflow flag and nothing is sent. nf_tables changes go in one
 * batch (NFNL_MSG_BATCH_BEGIN .. END, NLM_F_ACK on each message), which the kernel applies
 * as one transaction: all or nothing. nfnetlink handles a request synchronously in the
 * sender's sendmsg() (and a dump's next part in recvmsg()), so by the time send returns
 * every ack is queued; the poll deadline is only a guard against a kernel that stays silent.
 *
 * Expression encodings are those `nft --debug=netlink` shows for the equivalent rules
 * (nftables 1.0.6): 16-byte registers NFT_REG_1/NFT_REG_2, big-endian attribute integers,
 * register contents in the byte order of the packet field (ct mark: host order). */
#include "router/kernel_nat.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter/nf_conntrack_tcp.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netfilter/nfnetlink_cttimeout.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* <linux/netfilter.h> and <linux/netfilter/nf_nat.h> pull in <linux/in.h>, which clashes
 * with musl's <netinet/in.h>; the few values needed are stable UAPI. */
enum {
    KNAT_NF_ACCEPT = 1,
    KNAT_NFPROTO_IPV4 = 2,
    KNAT_HOOK_PRE_ROUTING = 0,
    KNAT_HOOK_LOCAL_OUT = 3,
    KNAT_HOOK_POST_ROUTING = 4,
    KNAT_NAT_RANGE_PROTO_SPECIFIED = 2,
};

#define TX_MAX         16384
#define RX_MAX         65536
#define BATCH_MSGS_MAX 16 /* messages between BEGIN and END in one batch */
#define LABEL_MAX      160
#define ANSWER_MS      2000 /* guard only: answers are synchronous (see top) */
#define EVENT_READS    256  /* datagrams per kernel_nat_events_drain call */
#define SOCK_BUF       (1 << 20)
/* Nested attributes open at once while building (a rule's verdict is 5 deep:
 * EXPRESSIONS/LIST_ELEM/EXPR_DATA/IMMEDIATE_DATA/DATA_VERDICT). */
#define NEST_MAX 8

/* 0-2: the base chains; 3: a regular chain holding the connection limit, jumped to from
 * output and prerouting, so that one "ct count" (one count) covers local and forwarded
 * clients. (A named connlimit object would do the same, but nft 1.0.6 aborts listing a
 * table that holds one, and operators must be able to `nft list ruleset`.) */
enum { CHAIN_LIMIT = 3 };
static const char *const chain_names[4] = {"output", "prerouting", "postrouting", "limit"};

struct kernel_nat {
    int fd;          /* requests and their answers (nf_tables and ctnetlink) */
    int ev_fd;       /* conntrack NEW/DESTROY multicast */
    uint32_t portid; /* ours: the table's owner */
    uint32_t seq;
    int acct;
    unsigned gen; /* names a new ct timeout object per set() */
    char table[KNAT_TABLE_MAX + 1];
    char timeout_obj[32]; /* ct timeout object the installed rules use; "" for none */
    struct batch *bt;     /* scratch for the batch being built (labels are large) */
    _Alignas(8) uint8_t tx[TX_MAX];
    _Alignas(8) uint8_t rx[RX_MAX];
};

/* ---------------------------------------------------------------- message building */

typedef struct msgbuf {
    uint8_t *p;
    size_t cap, len;
    int overflow;
    size_t msg_start;
    size_t nest[NEST_MAX];
    int depth;
} msgbuf;

static void *mb_reserve(msgbuf *b, size_t n)
{
    size_t a = NLMSG_ALIGN(n);
    if (b->overflow || b->cap - b->len < a) {
        b->overflow = 1;
        return NULL;
    }
    void *r = b->p + b->len;
    memset(r, 0, a);
    b->len += a;
    return r;
}

static void msg_begin(msgbuf *b, uint16_t type, uint16_t flags, uint32_t seq, uint8_t family,
                      uint16_t res_id)
{
    b->msg_start = b->len;
    struct nlmsghdr h = {
        .nlmsg_type = type, .nlmsg_flags = (uint16_t)(NLM_F_REQUEST | flags), .nlmsg_seq = seq};
    struct nfgenmsg g = {.nfgen_family = family, .version = NFNETLINK_V0, .res_id = htons(res_id)};
    uint8_t *hp = mb_reserve(b, NLMSG_HDRLEN);
    uint8_t *gp = mb_reserve(b, sizeof(g));
    if (hp && gp) {
        memcpy(hp, &h, sizeof(h));
        memcpy(gp, &g, sizeof(g));
    }
}

static void msg_end(msgbuf *b)
{
    if (b->overflow)
        return;
    uint32_t len = (uint32_t)(b->len - b->msg_start);
    memcpy(b->p + b->msg_start + offsetof(struct nlmsghdr, nlmsg_len), &len, sizeof(len));
}

static void attr_put(msgbuf *b, uint16_t type, const void *data, size_t len)
{
    uint8_t *a = mb_reserve(b, NLA_HDRLEN + len);
    if (!a)
        return;
    struct nlattr h = {.nla_len = (uint16_t)(NLA_HDRLEN + len), .nla_type = type};
    memcpy(a, &h, sizeof(h));
    if (len)
        memcpy(a + NLA_HDRLEN, data, len);
}

static void attr_be32(msgbuf *b, uint16_t type, uint32_t v)
{
    uint32_t be = htonl(v);
    attr_put(b, type, &be, sizeof(be));
}

static void attr_str(msgbuf *b, uint16_t type, const char *s)
{
    attr_put(b, type, s, strlen(s) + 1);
}

static void nest_begin(msgbuf *b, uint16_t type)
{
    if (b->depth >= (int)(sizeof(b->nest) / sizeof(b->nest[0]))) {
        b->overflow = 1;
        return;
    }
    b->nest[b->depth++] = b->len;
    attr_put(b, (uint16_t)(type | NLA_F_NESTED), NULL, 0);
}

static void nest_end(msgbuf *b)
{
    if (b->depth <= 0) {
        b->overflow = 1;
        return;
    }
    size_t start = b->nest[--b->depth];
    if (b->overflow)
        return;
    uint16_t len = (uint16_t)(b->len - start);
    memcpy(b->p + start + offsetof(struct nlattr, nla_len), &len, sizeof(len));
}

/* ---------------------------------------------------------------- nf_tables expressions */

static void expr_begin(msgbuf *b, const char *name)
{
    nest_begin(b, NFTA_LIST_ELEM);
    attr_str(b, NFTA_EXPR_NAME, name);
    nest_begin(b, NFTA_EXPR_DATA);
}

static void expr_end(msgbuf *b)
{
    nest_end(b); /* NFTA_EXPR_DATA */
    nest_end(b); /* NFTA_LIST_ELEM */
}

static void data_value(msgbuf *b, uint16_t type, const void *v, size_t len)
{
    nest_begin(b, type);
    attr_put(b, NFTA_DATA_VALUE, v, len);
    nest_end(b);
}

static void expr_payload(msgbuf *b, uint32_t base, uint32_t off, uint32_t len)
{
    expr_begin(b, "payload");
    attr_be32(b, NFTA_PAYLOAD_DREG, NFT_REG_1);
    attr_be32(b, NFTA_PAYLOAD_BASE, base);
    attr_be32(b, NFTA_PAYLOAD_OFFSET, off);
    attr_be32(b, NFTA_PAYLOAD_LEN, len);
    expr_end(b);
}

static void expr_cmp_eq(msgbuf *b, const void *v, size_t len)
{
    expr_begin(b, "cmp");
    attr_be32(b, NFTA_CMP_SREG, NFT_REG_1);
    attr_be32(b, NFTA_CMP_OP, NFT_CMP_EQ);
    data_value(b, NFTA_CMP_DATA, v, len);
    expr_end(b);
}

/* tcp, [ip daddr A,] tcp dport P, tcp flags & (syn|ack) == syn */
static void match_tcp_syn_to(msgbuf *b, const struct sockaddr_in *l, int with_daddr)
{
    const uint8_t tcp = IPPROTO_TCP, synack = 0x12, syn = 0x02, zero = 0;
    expr_payload(b, NFT_PAYLOAD_NETWORK_HEADER, 9, 1);
    expr_cmp_eq(b, &tcp, 1);
    if (with_daddr) {
        expr_payload(b, NFT_PAYLOAD_NETWORK_HEADER, 16, 4);
        expr_cmp_eq(b, &l->sin_addr.s_addr, 4);
    }
    expr_payload(b, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
    expr_cmp_eq(b, &l->sin_port, 2);
    expr_payload(b, NFT_PAYLOAD_TRANSPORT_HEADER, 13, 1);
    expr_begin(b, "bitwise");
    attr_be32(b, NFTA_BITWISE_SREG, NFT_REG_1);
    attr_be32(b, NFTA_BITWISE_DREG, NFT_REG_1);
    attr_be32(b, NFTA_BITWISE_LEN, 1);
    data_value(b, NFTA_BITWISE_MASK, &synack, 1);
    data_value(b, NFTA_BITWISE_XOR, &zero, 1);
    expr_end(b);
    expr_cmp_eq(b, &syn, 1);
}

static void expr_accept(msgbuf *b)
{
    expr_begin(b, "immediate");
    attr_be32(b, NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
    nest_begin(b, NFTA_IMMEDIATE_DATA);
    nest_begin(b, NFTA_DATA_VERDICT);
    attr_be32(b, NFTA_VERDICT_CODE, KNAT_NF_ACCEPT);
    nest_end(b);
    nest_end(b);
    expr_end(b);
}

static void expr_jump(msgbuf *b, const char *chain)
{
    expr_begin(b, "immediate");
    attr_be32(b, NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
    nest_begin(b, NFTA_IMMEDIATE_DATA);
    nest_begin(b, NFTA_DATA_VERDICT);
    attr_be32(b, NFTA_VERDICT_CODE, (uint32_t)NFT_JUMP);
    attr_str(b, NFTA_VERDICT_CHAIN, chain);
    nest_end(b);
    nest_end(b);
    expr_end(b);
}

static void expr_connlimit_over(msgbuf *b, uint32_t n)
{
    expr_begin(b, "connlimit");
    attr_be32(b, NFTA_CONNLIMIT_COUNT, n);
    attr_be32(b, NFTA_CONNLIMIT_FLAGS, NFT_CONNLIMIT_F_INV); /* "over" */
    expr_end(b);
}

static void expr_imm(msgbuf *b, uint32_t reg, const void *v, size_t len)
{
    expr_begin(b, "immediate");
    attr_be32(b, NFTA_IMMEDIATE_DREG, reg);
    data_value(b, NFTA_IMMEDIATE_DATA, v, len);
    expr_end(b);
}

static void expr_ct_mark_set(msgbuf *b, uint32_t mark)
{
    expr_imm(b, NFT_REG_1, &mark, sizeof(mark)); /* ct mark is host order */
    expr_begin(b, "ct");
    attr_be32(b, NFTA_CT_KEY, NFT_CT_MARK);
    attr_be32(b, NFTA_CT_SREG, NFT_REG_1);
    expr_end(b);
}

static void expr_ct_mark_is(msgbuf *b, uint32_t mark)
{
    expr_begin(b, "ct");
    attr_be32(b, NFTA_CT_KEY, NFT_CT_MARK);
    attr_be32(b, NFTA_CT_DREG, NFT_REG_1);
    expr_end(b);
    expr_cmp_eq(b, &mark, sizeof(mark));
}

static void expr_objref(msgbuf *b, uint32_t type, const char *obj)
{
    expr_begin(b, "objref");
    attr_be32(b, NFTA_OBJREF_IMM_TYPE, type);
    attr_str(b, NFTA_OBJREF_IMM_NAME, obj);
    expr_end(b);
}

static void expr_dnat(msgbuf *b, const struct sockaddr_in *t)
{
    expr_imm(b, NFT_REG_1, &t->sin_addr.s_addr, 4);
    expr_imm(b, NFT_REG_2, &t->sin_port, 2);
    expr_begin(b, "nat");
    attr_be32(b, NFTA_NAT_TYPE, NFT_NAT_DNAT);
    attr_be32(b, NFTA_NAT_FAMILY, KNAT_NFPROTO_IPV4);
    attr_be32(b, NFTA_NAT_REG_ADDR_MIN, NFT_REG_1);
    attr_be32(b, NFTA_NAT_REG_PROTO_MIN, NFT_REG_2);
    attr_be32(b, NFTA_NAT_FLAGS, KNAT_NAT_RANGE_PROTO_SPECIFIED);
    expr_end(b);
}

static void expr_masq(msgbuf *b)
{
    nest_begin(b, NFTA_LIST_ELEM);
    attr_str(b, NFTA_EXPR_NAME, "masq");
    nest_end(b);
}

/* ---------------------------------------------------------------- batches and answers */

typedef struct batch {
    msgbuf b;
    uint32_t begin_seq; /* BEGIN; messages begin_seq+1 .. begin_seq+n; END begin_seq+n+1 */
    int n;
    const char *subsys;   /* "nf_tables" or "conntrack", for messages */
    char what[LABEL_MAX]; /* the whole operation, for errors on BEGIN/END */
    char label[BATCH_MSGS_MAX][LABEL_MAX];
} batch;

static void batch_start(kernel_nat *k, batch *bt, const char *what)
{
    memset(bt, 0, sizeof(*bt));
    bt->b.p = k->tx;
    bt->b.cap = sizeof(k->tx);
    bt->subsys = "nf_tables";
    snprintf(bt->what, sizeof(bt->what), "%s", what);
    bt->begin_seq = ++k->seq;
    msg_begin(&bt->b, NFNL_MSG_BATCH_BEGIN, 0, bt->begin_seq, 0, NFNL_SUBSYS_NFTABLES);
    msg_end(&bt->b);
}

/* Starts the next message of the batch; label names it in errors. */
static void batch_msg(kernel_nat *k, batch *bt, uint16_t nft_msg, uint16_t flags, const char *label)
{
    if (bt->n >= BATCH_MSGS_MAX) {
        bt->b.overflow = 1;
        return;
    }
    snprintf(bt->label[bt->n], LABEL_MAX, "%s", label);
    bt->n++;
    msg_begin(&bt->b, (uint16_t)(NFNL_SUBSYS_NFTABLES << 8 | nft_msg),
              (uint16_t)(NLM_F_ACK | flags), ++k->seq, KNAT_NFPROTO_IPV4, 0);
}

static void batch_finish(kernel_nat *k, batch *bt)
{
    msg_begin(&bt->b, NFNL_MSG_BATCH_END, 0, ++k->seq, 0, NFNL_SUBSYS_NFTABLES);
    msg_end(&bt->b);
}

typedef struct answer {
    uint32_t lo, hi; /* sequence numbers this request may be answered with */
    int need;        /* acks that complete it (non-dump) */
    int dump;        /* complete on NLMSG_DONE */
    uint8_t acked[BATCH_MSGS_MAX + 2];
    int nacked, done;
    int err; /* first error (positive errno), 0 for none */
    uint32_t err_seq;
    kernel_nat_msg_cb on_data; /* CT / TABLE messages of this request */
    void *arg;
} answer;

static int answer_cb(void *arg, const kernel_nat_msg *m)
{
    answer *a = arg;
    if (m->seq - a->lo > a->hi - a->lo) /* unsigned: right across a wrap of the counter */
        return 0;                       /* a late answer to an earlier request */
    switch (m->kind) {
    case KNAT_MSG_ACK: {
        uint32_t i = m->seq - a->lo;
        if (i < sizeof(a->acked) && !a->acked[i]) {
            a->acked[i] = 1;
            a->nacked++;
        }
        if (m->error && !a->err) {
            a->err = m->error;
            a->err_seq = m->seq;
        }
        break;
    }
    case KNAT_MSG_DONE:
        if (m->error && !a->err) {
            a->err = m->error;
            a->err_seq = m->seq;
        }
        a->done = 1;
        break;
    case KNAT_MSG_CT:
    case KNAT_MSG_TABLE:
        if (a->on_data)
            return a->on_data(a->arg, m);
        break;
    default:
        break;
    }
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *errno_hint(int e)
{
    return e == EPERM ? " (needs CAP_NET_ADMIN)" : "";
}

/* Sends len bytes of k->tx and reads answers until a is complete. -1 with err (prefix
 * "subsys: what: ") for transport trouble; a kernel error is left in a->err. */
static int talk(kernel_nat *k, size_t len, answer *a, const char *subsys, const char *what,
                char *err, size_t errsz)
{
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    ssize_t s;
    do
        s = sendto(k->fd, k->tx, len, 0, (struct sockaddr *)&kernel, sizeof(kernel));
    while (s < 0 && errno == EINTR);
    if (s < 0 || (size_t)s != len) {
        int e = s < 0 ? errno : EMSGSIZE;
        snprintf(err, errsz, "%s: %s: send: %s%s", subsys, what, strerror(e), errno_hint(e));
        return -1;
    }
    int64_t deadline = now_ms() + ANSWER_MS;
    for (;;) {
        if (a->dump ? (a->done || a->err) : (a->nacked >= a->need))
            return 0;
        /* After an error, whatever else the kernel had to say is already queued. */
        int64_t left = a->err ? 0 : deadline - now_ms();
        if (left < 0)
            left = 0;
        struct pollfd p = {.fd = k->fd, .events = POLLIN};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errsz, "%s: %s: poll: %s", subsys, what, strerror(errno));
            return -1;
        }
        if (r == 0) {
            if (a->err)
                return 0;
            snprintf(err, errsz, "%s: %s: no answer from the kernel within %d ms", subsys, what,
                     ANSWER_MS);
            return -1;
        }
        ssize_t n = recv(k->fd, k->rx, sizeof(k->rx), MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0) {
            int e = errno;
            snprintf(err, errsz, "%s: %s: receive: %s%s", subsys, what, strerror(e),
                     e == ENOBUFS ? " (answers lost)" : "");
            return -1;
        }
        if ((size_t)n > sizeof(k->rx)) {
            snprintf(err, errsz, "%s: %s: answer of %zd bytes truncated to %zu", subsys, what, n,
                     sizeof(k->rx));
            return -1;
        }
        char perr[160];
        int pr = kernel_nat_parse(k->rx, (size_t)n, answer_cb, a, perr, sizeof(perr));
        if (pr < 0) {
            snprintf(err, errsz, "%s: %s: malformed answer: %s", subsys, what, perr);
            return -1;
        }
        if (pr > 0) {
            snprintf(err, errsz, "%s: %s: answer handler stopped", subsys, what);
            return -1;
        }
    }
}

/* Runs a batch. 0 when every message was applied; -1 with err naming the failing message
 * (then *kerr, if given, gets its errno, and the kernel applied nothing). */
static int batch_run(kernel_nat *k, batch *bt, int *kerr, char *err, size_t errsz)
{
    if (kerr)
        *kerr = 0;
    batch_finish(k, bt);
    if (bt->b.overflow) {
        snprintf(err, errsz, "%s: %s: request larger than %zu bytes", bt->subsys, bt->what,
                 bt->b.cap);
        return -1;
    }
    answer a = {.lo = bt->begin_seq, .hi = bt->begin_seq + (uint32_t)bt->n + 1, .need = bt->n};
    if (talk(k, bt->b.len, &a, bt->subsys, bt->what, err, errsz) < 0)
        return -1;
    if (!a.err)
        return 0;
    if (kerr)
        *kerr = a.err;
    uint32_t i = a.err_seq - bt->begin_seq;
    const char *label = (i >= 1 && i <= (uint32_t)bt->n) ? bt->label[i - 1] : bt->what;
    snprintf(err, errsz, "%s: %s: %s%s", bt->subsys, label, strerror(a.err), errno_hint(a.err));
    return -1;
}

/* ---------------------------------------------------------------- table and chains */

int kernel_nat_table_name_ok(const char *table, char *err, size_t errsz)
{
    if (!table || !table[0]) {
        snprintf(err, errsz, "nf_tables: table name is empty");
        return -1;
    }
    size_t n = strnlen(table, KNAT_TABLE_MAX + 1);
    if (n > KNAT_TABLE_MAX) {
        snprintf(err, errsz, "nf_tables: table name '%.32s...' is longer than %d characters", table,
                 KNAT_TABLE_MAX);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char c = table[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.')) {
            snprintf(err, errsz,
                     "nf_tables: table name '%.64s' has character 0x%02x at %zu (allowed: "
                     "letters, digits, '_', '-', '.')",
                     table, (unsigned char)c, i);
            return -1;
        }
    }
    return 0;
}

static void add_chain(kernel_nat *k, batch *bt, int i, uint32_t hook, int32_t prio)
{
    char label[LABEL_MAX];
    snprintf(label, sizeof(label), "create chain %s", chain_names[i]);
    batch_msg(k, bt, NFT_MSG_NEWCHAIN, NLM_F_CREATE, label);
    attr_str(&bt->b, NFTA_CHAIN_TABLE, k->table);
    attr_str(&bt->b, NFTA_CHAIN_NAME, chain_names[i]);
    if (i == CHAIN_LIMIT) { /* a regular chain: no hook */
        msg_end(&bt->b);
        return;
    }
    nest_begin(&bt->b, NFTA_CHAIN_HOOK);
    attr_be32(&bt->b, NFTA_HOOK_HOOKNUM, hook);
    attr_be32(&bt->b, NFTA_HOOK_PRIORITY, (uint32_t)prio);
    nest_end(&bt->b);
    attr_str(&bt->b, NFTA_CHAIN_TYPE, "nat");
    attr_be32(&bt->b, NFTA_CHAIN_POLICY, KNAT_NF_ACCEPT);
    msg_end(&bt->b);
}

static int create_table(kernel_nat *k, int replace_stale, int *kerr, char *err, size_t errsz)
{
    batch *bt = k->bt;
    char what[LABEL_MAX];
    snprintf(what, sizeof(what), "create table %.80s", k->table);
    batch_start(k, bt, what);
    if (replace_stale) {
        char label[LABEL_MAX];
        snprintf(label, sizeof(label), "delete stale table %.80s", k->table);
        batch_msg(k, bt, NFT_MSG_DELTABLE, 0, label);
        attr_str(&bt->b, NFTA_TABLE_NAME, k->table);
        msg_end(&bt->b);
    }
    batch_msg(k, bt, NFT_MSG_NEWTABLE, NLM_F_CREATE | NLM_F_EXCL, what);
    attr_str(&bt->b, NFTA_TABLE_NAME, k->table);
    attr_be32(&bt->b, NFTA_TABLE_FLAGS, NFT_TABLE_F_OWNER);
    msg_end(&bt->b);
    add_chain(k, bt, 0, KNAT_HOOK_LOCAL_OUT, -100);
    add_chain(k, bt, 1, KNAT_HOOK_PRE_ROUTING, -100);
    add_chain(k, bt, 2, KNAT_HOOK_POST_ROUTING, 100);
    add_chain(k, bt, CHAIN_LIMIT, 0, 0);
    return batch_run(k, bt, kerr, err, errsz);
}

typedef struct table_info {
    int found;
    uint32_t flags, owner;
    int has_owner;
} table_info;

static int on_table(void *arg, const kernel_nat_msg *m)
{
    table_info *ti = arg;
    if (m->kind == KNAT_MSG_TABLE) {
        ti->found = 1;
        ti->flags = m->table_flags;
        ti->has_owner = m->table_has_owner;
        ti->owner = m->table_owner;
    }
    return 0;
}

/* 1 found (ti filled), 0 absent, -1 err. */
static int lookup_table(kernel_nat *k, table_info *ti, char *err, size_t errsz)
{
    char what[LABEL_MAX];
    snprintf(what, sizeof(what), "look up table %.80s", k->table);
    msgbuf b = {.p = k->tx, .cap = sizeof(k->tx)};
    uint32_t seq = ++k->seq;
    msg_begin(&b, NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETTABLE, NLM_F_ACK, seq, KNAT_NFPROTO_IPV4,
              0);
    attr_str(&b, NFTA_TABLE_NAME, k->table);
    msg_end(&b);
    memset(ti, 0, sizeof(*ti));
    answer a = {.lo = seq, .hi = seq, .need = 1, .on_data = on_table, .arg = ti};
    if (talk(k, b.len, &a, "nf_tables", what, err, errsz) < 0)
        return -1;
    if (a.err == ENOENT)
        return 0;
    if (a.err) {
        snprintf(err, errsz, "nf_tables: %s: %s%s", what, strerror(a.err), errno_hint(a.err));
        return -1;
    }
    return ti->found;
}

/* The event socket hears every conntrack NEW/DESTROY of the namespace (health checks, the
 * proxied read port, everything). This classic BPF filter keeps only messages whose CTA_MARK
 * has our magic, so other traffic never wakes the router. Conntrack sends one event per
 * datagram; SKF_AD_NLATTR finds an attribute (flags masked) from offset A, type X. A
 * failure to attach costs only wakeups: drain filters by mark anyway. */
static void filter_events(int fd)
{
    struct sock_filter code[] = {
        /* A = first attribute: after nlmsghdr and nfgenmsg */
        BPF_STMT(BPF_LD | BPF_IMM, NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg))),
        BPF_STMT(BPF_LDX | BPF_IMM, CTA_MARK),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_AD_OFF + SKF_AD_NLATTR)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 4, 0), /* no mark: drop */
        BPF_STMT(BPF_MISC | BPF_TAX, 0),
        BPF_STMT(BPF_LD | BPF_W | BPF_IND, NLA_HDRLEN), /* the mark (loads are big-endian) */
        BPF_STMT(BPF_ALU | BPF_AND | BPF_K, KNAT_MARK_MASK_MAGIC),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, KNAT_MARK_MAGIC, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, 0),
        BPF_STMT(BPF_RET | BPF_K, 0xffffffffu),
    };
    struct sock_fprog prog = {.len = sizeof(code) / sizeof(code[0]), .filter = code};
    (void)setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog));
}

static int open_socket(int groups_new_destroy, uint32_t *portid, char *err, size_t errsz)
{
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | (groups_new_destroy ? SOCK_NONBLOCK : 0),
                    NETLINK_NETFILTER);
    if (fd < 0) {
        snprintf(err, errsz, "netlink: socket(NETLINK_NETFILTER): %s", strerror(errno));
        return -1;
    }
    int sz = SOCK_BUF;
    /* Best effort: a bigger queue makes ENOBUFS rarer (FORCE needs CAP_NET_ADMIN). */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
    socklen_t sl = sizeof(sa);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) < 0) {
        snprintf(err, errsz, "netlink: bind: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (portid)
        *portid = sa.nl_pid;
    if (groups_new_destroy) {
        filter_events(fd);
        static const int groups[3] = {NFNLGRP_CONNTRACK_NEW, NFNLGRP_CONNTRACK_DESTROY,
                                      NFNLGRP_CONNTRACK_UPDATE};
        static const char *const gname[3] = {"NEW", "DESTROY", "UPDATE"};
        for (int i = 0; i < 3; i++)
            if (setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &groups[i], sizeof(groups[i])) <
                0) {
                int e = errno;
                snprintf(err, errsz, "conntrack: subscribe to %s events: %s%s", gname[i],
                         strerror(e), errno_hint(e));
                close(fd);
                return -1;
            }
    }
    return fd;
}

/* nf_conntrack_acct is per network namespace; flows created after it is on carry counters. */
static int turn_on_acct(void)
{
    static const char path[] = "/proc/sys/net/netfilter/nf_conntrack_acct";
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t w = write(fd, "1\n", 2);
        close(fd);
        if (w == 2)
            return 1;
    }
    char v[4] = {0};
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t r = read(fd, v, sizeof(v) - 1);
    close(fd);
    return r > 0 && v[0] == '1';
}

int kernel_nat_forwarding(void)
{
    char v[4] = {0};
    int fd = open("/proc/sys/net/ipv4/ip_forward", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t r = read(fd, v, sizeof(v) - 1);
    close(fd);
    return r <= 0 ? -1 : v[0] == '1';
}

kernel_nat *kernel_nat_open(const char *table, char *err, size_t errsz)
{
    if (kernel_nat_table_name_ok(table, err, errsz) < 0)
        return NULL;
    kernel_nat *k = calloc(1, sizeof(*k));
    if (!k) {
        snprintf(err, errsz, "nf_tables: out of memory");
        return NULL;
    }
    k->ev_fd = -1;
    k->bt = calloc(1, sizeof(*k->bt));
    if (!k->bt) {
        free(k);
        snprintf(err, errsz, "nf_tables: out of memory");
        return NULL;
    }
    snprintf(k->table, sizeof(k->table), "%s", table);
    k->seq = (uint32_t)time(NULL);
    k->fd = open_socket(0, &k->portid, err, errsz);
    if (k->fd < 0) {
        free(k->bt);
        free(k);
        return NULL;
    }
    int kerr = 0;
    if (create_table(k, 0, &kerr, err, errsz) < 0) {
        /* EEXIST: the name is taken; EPERM: no capability, or the table is owned by another
         * socket (the kernel answers both alike). A lookup tells which. */
        if (kerr != EEXIST && kerr != EPERM)
            goto fail;
        table_info ti;
        char lerr[256];
        int found = lookup_table(k, &ti, lerr, sizeof(lerr));
        if (found < 0) {
            if (kerr != EPERM) /* else keep the create error, it names the operation */
                snprintf(err, errsz, "%s", lerr);
            goto fail;
        }
        if (!found && kerr == EPERM)
            goto fail;
        if (found && (ti.flags & NFT_TABLE_F_OWNER)) {
            snprintf(err, errsz,
                     "nf_tables: create table %.80s: it exists and belongs to a live process "
                     "(netlink port %u): another router with this table name?",
                     k->table, ti.owner);
            goto fail;
        }
        /* Left by a run that did not own it (or created between our two calls). */
        if (create_table(k, found, &kerr, err, errsz) < 0)
            goto fail;
    }
    k->acct = turn_on_acct();
    k->ev_fd = open_socket(1, NULL, err, errsz);
    if (k->ev_fd < 0)
        goto fail;
    return k;
fail:
    close(k->fd);
    free(k->bt);
    free(k);
    return NULL;
}

kernel_nat *kernel_nat_ct_open(char *err, size_t errsz)
{
    kernel_nat *k = calloc(1, sizeof(*k));
    if (!k) {
        snprintf(err, errsz, "conntrack: out of memory");
        return NULL;
    }
    k->ev_fd = -1;
    k->seq = (uint32_t)time(NULL);
    k->fd = open_socket(0, &k->portid, err, errsz);
    if (k->fd < 0) {
        free(k);
        return NULL;
    }
    return k;
}

int kernel_nat_bytes_known(const kernel_nat *k)
{
    return k && k->acct;
}

int kernel_nat_events_fd(const kernel_nat *k)
{
    return k ? k->ev_fd : -1;
}

void kernel_nat_close(kernel_nat *k)
{
    if (!k)
        return;
    if (!k->table[0]) { /* a conntrack-only handle (kernel_nat_ct_open): no table */
        close(k->fd);
        free(k);
        return;
    }
    batch *bt = k->bt;
    char what[LABEL_MAX], e[256];
    snprintf(what, sizeof(what), "delete table %.80s", k->table);
    batch_start(k, bt, what);
    batch_msg(k, bt, NFT_MSG_DELTABLE, 0, what);
    attr_str(&bt->b, NFTA_TABLE_NAME, k->table);
    msg_end(&bt->b);
    /* A failure changes nothing: closing the owning socket removes the table anyway. */
    (void)batch_run(k, bt, NULL, e, sizeof(e));
    close(k->fd);
    if (k->ev_fd >= 0)
        close(k->ev_fd);
    free(k->bt);
    free(k);
}

/* ---------------------------------------------------------------- rules */

static uint32_t mark_of(int origin, uint8_t slot)
{
    return KNAT_MARK_MAGIC | (uint32_t)origin << 8 | slot;
}

static void fmt_addr(const struct sockaddr_in *a, char *out, size_t n)
{
    char ip[INET_ADDRSTRLEN];
    if (!inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip)))
        snprintf(ip, sizeof(ip), "?");
    snprintf(out, n, "%s:%u", ip, (unsigned)ntohs(a->sin_port));
}

/* The jump to the limit chain and the DNAT rule of one chain (output or prerouting). In the
 * limit chain, "ct count over N accept" ends the hook's evaluation (accept is final: no
 * NAT, the connection reaches the router's listener); under the limit the chain returns
 * and the DNAT rule follows. */
static void add_dnat_rules(kernel_nat *k, batch *bt, int chain, const kernel_nat_target *t,
                           const char *timeout_obj)
{
    int with_daddr = t->listen.sin_addr.s_addr != htonl(INADDR_ANY);
    int origin = chain == 0 ? KNAT_ORIGIN_LOCAL : KNAT_ORIGIN_FWD;
    char label[LABEL_MAX], ta[32];
    if (t->max_connections) {
        snprintf(label, sizeof(label), "add rule %s (jump limit)", chain_names[chain]);
        batch_msg(k, bt, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, label);
        attr_str(&bt->b, NFTA_RULE_TABLE, k->table);
        attr_str(&bt->b, NFTA_RULE_CHAIN, chain_names[chain]);
        nest_begin(&bt->b, NFTA_RULE_EXPRESSIONS);
        match_tcp_syn_to(&bt->b, &t->listen, with_daddr);
        expr_jump(&bt->b, chain_names[CHAIN_LIMIT]);
        nest_end(&bt->b);
        msg_end(&bt->b);
    }
    fmt_addr(&t->target, ta, sizeof(ta));
    snprintf(label, sizeof(label), "add rule %s (dnat to %s)", chain_names[chain], ta);
    batch_msg(k, bt, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, label);
    attr_str(&bt->b, NFTA_RULE_TABLE, k->table);
    attr_str(&bt->b, NFTA_RULE_CHAIN, chain_names[chain]);
    nest_begin(&bt->b, NFTA_RULE_EXPRESSIONS);
    match_tcp_syn_to(&bt->b, &t->listen, with_daddr);
    if (timeout_obj[0])
        expr_objref(&bt->b, NFT_OBJECT_CT_TIMEOUT, timeout_obj);
    expr_ct_mark_set(&bt->b, mark_of(origin, t->slot));
    expr_dnat(&bt->b, &t->target);
    nest_end(&bt->b);
    msg_end(&bt->b);
}

static void add_limit_rule(kernel_nat *k, batch *bt, uint32_t n)
{
    char label[LABEL_MAX];
    snprintf(label, sizeof(label), "add rule limit (ct count over %u accept)", n);
    batch_msg(k, bt, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, label);
    attr_str(&bt->b, NFTA_RULE_TABLE, k->table);
    attr_str(&bt->b, NFTA_RULE_CHAIN, chain_names[CHAIN_LIMIT]);
    nest_begin(&bt->b, NFTA_RULE_EXPRESSIONS);
    expr_connlimit_over(&bt->b, n);
    expr_accept(&bt->b);
    nest_end(&bt->b);
    msg_end(&bt->b);
}

/* Creates (with its established timeout) or deletes a ct timeout object. */
static void timeout_obj_msg(kernel_nat *k, batch *bt, int create, const char *name,
                            uint32_t seconds)
{
    char label[LABEL_MAX];
    snprintf(label, sizeof(label), "%s ct timeout %s", create ? "create" : "delete", name);
    batch_msg(k, bt, create ? NFT_MSG_NEWOBJ : NFT_MSG_DELOBJ,
              create ? NLM_F_CREATE | NLM_F_EXCL : 0, label);
    attr_str(&bt->b, NFTA_OBJ_TABLE, k->table);
    attr_str(&bt->b, NFTA_OBJ_NAME, name);
    attr_be32(&bt->b, NFTA_OBJ_TYPE, NFT_OBJECT_CT_TIMEOUT);
    if (create) {
        uint16_t l3 = htons(AF_INET);
        uint8_t l4 = IPPROTO_TCP;
        nest_begin(&bt->b, NFTA_OBJ_DATA);
        attr_put(&bt->b, NFTA_CT_TIMEOUT_L3PROTO, &l3, sizeof(l3));
        attr_put(&bt->b, NFTA_CT_TIMEOUT_L4PROTO, &l4, sizeof(l4));
        nest_begin(&bt->b, NFTA_CT_TIMEOUT_DATA);
        attr_be32(&bt->b, CTA_TIMEOUT_TCP_ESTABLISHED, seconds);
        nest_end(&bt->b);
        nest_end(&bt->b);
    }
    msg_end(&bt->b);
}

static int is_loopback(const struct in_addr *a)
{
    return (ntohl(a->s_addr) >> 24) == 127;
}

/* Forwarded clients (prerouting) get no rule when the target is a loopback address: a
 * packet that came in on another device and is DNAT'ed to 127.x is a martian and dropped
 * (without route_localnet), so they would hang; without the rule they reach the router.
 * Local clients get a rule only for a listen address of their own (INADDR_ANY has none to
 * match), and not when it is a loopback address while the target is not: the DNAT'ed SYN
 * would leave with a 127.x source, which the kernel refuses to route off the loopback
 * device (without route_localnet), and the client would hang until its connect timeout.
 * Without the rule it reaches the router's listener instead. */
static int output_rule_works(const kernel_nat_target *t)
{
    if (t->listen.sin_addr.s_addr == htonl(INADDR_ANY))
        return 0;
    return !is_loopback(&t->listen.sin_addr) || is_loopback(&t->target.sin_addr);
}

#ifdef APPLIANCE_TEST_BUILD
int kernel_nat_test_fail_next_set;

static void test_failure(kernel_nat *k, batch *bt)
{
    if (!kernel_nat_test_fail_next_set)
        return;
    kernel_nat_test_fail_next_set = 0;
    batch_msg(k, bt, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, "add rule nochain (test)");
    attr_str(&bt->b, NFTA_RULE_TABLE, k->table);
    attr_str(&bt->b, NFTA_RULE_CHAIN, "nochain");
    nest_begin(&bt->b, NFTA_RULE_EXPRESSIONS);
    expr_accept(&bt->b);
    nest_end(&bt->b);
    msg_end(&bt->b);
}
#endif

int kernel_nat_set(kernel_nat *k, const kernel_nat_target *t, char *err, size_t errsz)
{
    batch *bt = k->bt;
    char what[LABEL_MAX], ta[32], new_obj[sizeof(k->timeout_obj)] = "";
    if (!bt) {
        snprintf(err, errsz, "nf_tables: set rules: a conntrack-only handle has no table");
        return -1;
    }
    if (t) {
        if (t->listen.sin_family != AF_INET || t->target.sin_family != AF_INET ||
            !t->listen.sin_port || !t->target.sin_port ||
            t->target.sin_addr.s_addr == htonl(INADDR_ANY)) {
            snprintf(err, errsz,
                     "nf_tables: set rules: listen and target must be IPv4 "
                     "address:port with a port, and the target a real address");
            return -1;
        }
        fmt_addr(&t->target, ta, sizeof(ta));
        snprintf(what, sizeof(what), "install dnat to %s in table %.60s", ta, k->table);
    } else {
        snprintf(what, sizeof(what), "remove the rules of table %.60s", k->table);
    }
    batch_start(k, bt, what);
    /* A new timeout object under a new name (the kernel cannot change one in place); the
     * old one is deleted at the end of the batch, after the rules that used it. */
    k->gen++;
    if (t && t->idle_timeout_s) {
        snprintf(new_obj, sizeof(new_obj), "idle_%u", k->gen);
        timeout_obj_msg(k, bt, 1, new_obj, t->idle_timeout_s);
    }

    for (int c = 0; c < 4; c++) {
        char label[LABEL_MAX];
        snprintf(label, sizeof(label), "flush chain %s", chain_names[c]);
        batch_msg(k, bt, NFT_MSG_DELRULE, 0, label);
        attr_str(&bt->b, NFTA_RULE_TABLE, k->table);
        attr_str(&bt->b, NFTA_RULE_CHAIN, chain_names[c]);
        msg_end(&bt->b);
    }
    if (t) {
        if (output_rule_works(t))
            add_dnat_rules(k, bt, 0, t, new_obj);
        if (!is_loopback(&t->target.sin_addr))
            add_dnat_rules(k, bt, 1, t, new_obj);
        if (t->max_connections)
            add_limit_rule(k, bt, t->max_connections);
        batch_msg(k, bt, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND,
                  "add rule postrouting (ct mark -> masquerade)");
        attr_str(&bt->b, NFTA_RULE_TABLE, k->table);
        attr_str(&bt->b, NFTA_RULE_CHAIN, chain_names[2]);
        nest_begin(&bt->b, NFTA_RULE_EXPRESSIONS);
        expr_ct_mark_is(&bt->b, mark_of(KNAT_ORIGIN_FWD, t->slot));
        expr_masq(&bt->b);
        nest_end(&bt->b);
        msg_end(&bt->b);
    }
    if (k->timeout_obj[0])
        timeout_obj_msg(k, bt, 0, k->timeout_obj, 0);
#ifdef APPLIANCE_TEST_BUILD
    test_failure(k, bt);
#endif
    if (batch_run(k, bt, NULL, err, errsz) < 0)
        return -1;
    snprintf(k->timeout_obj, sizeof(k->timeout_obj), "%s", new_obj);
    return 0;
}

/* ---------------------------------------------------------------- conntrack */

typedef struct dump_ctx {
    kernel_nat_flows *out;
    uint64_t count;
} dump_ctx;

static int on_dump_entry(void *arg, const kernel_nat_msg *m)
{
    dump_ctx *d = arg;
    if (m->kind != KNAT_MSG_CT || !m->has_mark ||
        (m->mark & KNAT_MARK_MASK_MAGIC) != KNAT_MARK_MAGIC)
        return 0;
    d->count++;
    if (!d->out)
        return 0;
    kernel_nat_flows *f = &d->out[m->mark & 0xff];
    if (m->tcp_state != TCP_CONNTRACK_TIME_WAIT && m->tcp_state != TCP_CONNTRACK_CLOSE)
        f->live++;
    f->bytes_in += m->bytes_orig;
    f->bytes_out += m->bytes_reply;
    return 0;
}

/* One ctnetlink request carrying a mark filter: a dump (IPCTNL_MSG_CT_GET) or a filtered
 * flush (IPCTNL_MSG_CT_DELETE without a tuple). */
static int ct_request(kernel_nat *k, uint16_t msg, uint32_t mark, uint32_t mask, dump_ctx *d,
                      const char *what, char *err, size_t errsz)
{
    msgbuf b = {.p = k->tx, .cap = sizeof(k->tx)};
    uint32_t seq = ++k->seq;
    int dump = msg == IPCTNL_MSG_CT_GET;
    msg_begin(&b, (uint16_t)(NFNL_SUBSYS_CTNETLINK << 8 | msg), dump ? NLM_F_DUMP : NLM_F_ACK, seq,
              AF_INET, 0);
    attr_be32(&b, CTA_MARK, mark);
    attr_be32(&b, CTA_MARK_MASK, mask);
    msg_end(&b);
    answer a = {.lo = seq, .hi = seq, .need = 1, .dump = dump, .on_data = on_dump_entry, .arg = d};
    if (talk(k, b.len, &a, "conntrack", what, err, errsz) < 0)
        return -1;
    if (a.err && !(a.err == ENOENT && !dump)) { /* a flush of nothing may say ENOENT */
        snprintf(err, errsz, "conntrack: %s: %s%s", what, strerror(a.err), errno_hint(a.err));
        return -1;
    }
    return 0;
}

int kernel_nat_end_flows(kernel_nat *k, uint8_t slot, char *err, size_t errsz)
{
    /* Mask out the origin byte: both origins of the slot. */
    uint32_t mark = KNAT_MARK_MAGIC | slot, mask = KNAT_MARK_MASK_MAGIC | 0xff;
    char what[LABEL_MAX];
    dump_ctx d = {0};
    snprintf(what, sizeof(what), "count the flows of slot %u", slot);
    if (ct_request(k, IPCTNL_MSG_CT_GET, mark, mask, &d, what, err, errsz) < 0)
        return -1;
    snprintf(what, sizeof(what), "delete the flows of slot %u (mark 0x%08x/0x%08x)", slot, mark,
             mask);
    if (ct_request(k, IPCTNL_MSG_CT_DELETE, mark, mask, NULL, what, err, errsz) < 0)
        return -1;
    return d.count > INT32_MAX ? INT32_MAX : (int)d.count;
}

int kernel_nat_end_all_flows(kernel_nat *k, char *err, size_t errsz)
{
    dump_ctx d = {0};
    if (ct_request(k, IPCTNL_MSG_CT_GET, KNAT_MARK_MAGIC, KNAT_MARK_MASK_MAGIC, &d,
                   "count the flows of every slot", err, errsz) < 0 ||
        ct_request(k, IPCTNL_MSG_CT_DELETE, KNAT_MARK_MAGIC, KNAT_MARK_MASK_MAGIC, NULL,
                   "delete the flows of every slot", err, errsz) < 0)
        return -1;
    return d.count > INT32_MAX ? INT32_MAX : (int)d.count;
}

int kernel_nat_flows_dump(kernel_nat *k, kernel_nat_flows out[256], char *err, size_t errsz)
{
    memset(out, 0, 256 * sizeof(out[0]));
    dump_ctx d = {.out = out};
    return ct_request(k, IPCTNL_MSG_CT_GET, KNAT_MARK_MAGIC, KNAT_MARK_MASK_MAGIC, &d,
                      "dump the flows", err, errsz);
}

typedef struct event_ctx {
    kernel_nat_event_cb cb;
    void *arg;
} event_ctx;

static int on_event(void *arg, const kernel_nat_msg *m)
{
    event_ctx *e = arg;
    if (m->kind == KNAT_MSG_CT && m->has_mark &&
        (m->mark & KNAT_MARK_MASK_MAGIC) == KNAT_MARK_MAGIC)
        e->cb(e->arg, (uint8_t)(m->mark & 0xff),
              m->ct_destroy  ? KNAT_EV_DESTROY
              : m->ct_update ? KNAT_EV_UPDATE
                             : KNAT_EV_NEW,
              m->bytes_orig, m->bytes_reply);
    return 0;
}

int kernel_nat_events_drain(kernel_nat *k, kernel_nat_event_cb cb, void *arg)
{
    int lost = 0;
    event_ctx e = {cb, arg};
    for (int i = 0; i < EVENT_READS; i++) {
        ssize_t n = recv(k->ev_fd, k->rx, sizeof(k->rx), MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                break;
            if (errno == ENOBUFS) {
                lost = 1;
                continue;
            }
            return -1;
        }
        if ((size_t)n > sizeof(k->rx)) {
            lost = 1; /* cannot happen with conntrack's small events; treat as lost */
            continue;
        }
        char perr[160];
        /* A malformed datagram loses its events, not the socket. */
        if (kernel_nat_parse(k->rx, (size_t)n, on_event, &e, perr, sizeof(perr)) < 0)
            lost = 1;
    }
    return lost;
}

/* ---------------------------------------------------------------- answer parsing */

typedef struct attr_it {
    const uint8_t *p;
    size_t left;
} attr_it;

/* 1 with the next attribute, 0 at the end, -1 malformed (err filled). */
static int attr_next(attr_it *it, uint16_t *type, const uint8_t **data, size_t *len, char *err,
                     size_t errsz)
{
    if (it->left == 0)
        return 0;
    if (it->left < NLA_HDRLEN) {
        snprintf(err, errsz, "%zu stray bytes after the last attribute", it->left);
        return -1;
    }
    struct nlattr h;
    memcpy(&h, it->p, sizeof(h));
    if (h.nla_len < NLA_HDRLEN || h.nla_len > it->left) {
        snprintf(err, errsz, "attribute type %u length %u outside its %zu-byte container",
                 (unsigned)(h.nla_type & NLA_TYPE_MASK), (unsigned)h.nla_len, it->left);
        return -1;
    }
    *type = h.nla_type & NLA_TYPE_MASK;
    *data = it->p + NLA_HDRLEN;
    *len = h.nla_len - NLA_HDRLEN;
    size_t step = NLA_ALIGN(h.nla_len);
    if (step > it->left)
        step = it->left; /* the last attribute's padding may be cut */
    it->p += step;
    it->left -= step;
    return 1;
}

static uint32_t rd_be32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return ntohl(v);
}

static uint64_t rd_be64(const uint8_t *p)
{
    return (uint64_t)rd_be32(p) << 32 | rd_be32(p + 4);
}

/* CTA_COUNTERS_ORIG/REPLY: the byte count. */
static int parse_counters(const uint8_t *p, size_t len, uint64_t *bytes, char *err, size_t errsz)
{
    attr_it it = {p, len};
    uint16_t t;
    const uint8_t *d;
    size_t dl;
    int r;
    while ((r = attr_next(&it, &t, &d, &dl, err, errsz)) > 0) {
        if (t == CTA_COUNTERS_BYTES && dl == 8)
            *bytes = rd_be64(d);
        else if (t == CTA_COUNTERS32_BYTES && dl == 4)
            *bytes = rd_be32(d);
    }
    return r;
}

/* CTA_PROTOINFO -> CTA_PROTOINFO_TCP -> CTA_PROTOINFO_TCP_STATE. */
static int parse_protoinfo(const uint8_t *p, size_t len, int *state, char *err, size_t errsz)
{
    attr_it it = {p, len};
    uint16_t t;
    const uint8_t *d;
    size_t dl;
    int r;
    while ((r = attr_next(&it, &t, &d, &dl, err, errsz)) > 0) {
        if (t != CTA_PROTOINFO_TCP)
            continue;
        attr_it in = {d, dl};
        uint16_t t2;
        const uint8_t *d2;
        size_t dl2;
        int r2;
        while ((r2 = attr_next(&in, &t2, &d2, &dl2, err, errsz)) > 0)
            if (t2 == CTA_PROTOINFO_TCP_STATE && dl2 >= 1)
                *state = d2[0];
        if (r2 < 0)
            return -1;
    }
    return r;
}

static int parse_ct(const uint8_t *p, size_t len, kernel_nat_msg *m, char *err, size_t errsz)
{
    attr_it it = {p, len};
    uint16_t t;
    const uint8_t *d;
    size_t dl;
    int r;
    m->tcp_state = -1;
    while ((r = attr_next(&it, &t, &d, &dl, err, errsz)) > 0) {
        switch (t) {
        case CTA_MARK:
            if (dl != 4) {
                snprintf(err, errsz, "CTA_MARK of %zu bytes", dl);
                return -1;
            }
            m->has_mark = 1;
            m->mark = rd_be32(d);
            break;
        case CTA_PROTOINFO:
            if (parse_protoinfo(d, dl, &m->tcp_state, err, errsz) < 0)
                return -1;
            break;
        case CTA_COUNTERS_ORIG:
            if (parse_counters(d, dl, &m->bytes_orig, err, errsz) < 0)
                return -1;
            break;
        case CTA_COUNTERS_REPLY:
            if (parse_counters(d, dl, &m->bytes_reply, err, errsz) < 0)
                return -1;
            break;
        default:
            break;
        }
    }
    return r;
}

static int parse_table(const uint8_t *p, size_t len, kernel_nat_msg *m, char *err, size_t errsz)
{
    attr_it it = {p, len};
    uint16_t t;
    const uint8_t *d;
    size_t dl;
    int r;
    while ((r = attr_next(&it, &t, &d, &dl, err, errsz)) > 0) {
        if (t == NFTA_TABLE_FLAGS && dl == 4)
            m->table_flags = rd_be32(d);
        else if (t == NFTA_TABLE_OWNER && dl == 4) {
            m->table_has_owner = 1;
            m->table_owner = rd_be32(d);
        }
    }
    return r;
}

int kernel_nat_parse(const void *buf, size_t len, kernel_nat_msg_cb cb, void *arg, char *err,
                     size_t errsz)
{
    const uint8_t *p = buf;
    size_t left = len;
    if (errsz)
        err[0] = '\0';
    while (left > 0) {
        struct nlmsghdr h;
        if (left < NLMSG_HDRLEN) {
            snprintf(err, errsz, "%zu stray bytes after the last message", left);
            return -1;
        }
        memcpy(&h, p, sizeof(h));
        if (h.nlmsg_len < NLMSG_HDRLEN || h.nlmsg_len > left) {
            snprintf(err, errsz, "message length %u outside the %zu bytes left", h.nlmsg_len, left);
            return -1;
        }
        const uint8_t *pl = p + NLMSG_HDRLEN;
        size_t plen = h.nlmsg_len - NLMSG_HDRLEN;
        kernel_nat_msg m;
        memset(&m, 0, sizeof(m));
        m.seq = h.nlmsg_seq;
        m.kind = KNAT_MSG_OTHER;
        m.tcp_state = -1;
        if (h.nlmsg_type == NLMSG_ERROR || h.nlmsg_type == NLMSG_DONE) {
            int32_t e = 0;
            if (plen >= sizeof(e))
                memcpy(&e, pl, sizeof(e));
            else if (h.nlmsg_type == NLMSG_ERROR) {
                snprintf(err, errsz, "error message of %zu bytes", plen);
                return -1;
            }
            if (e > 0 || e < -4095) {
                snprintf(err, errsz, "error code %d out of range", (int)e);
                return -1;
            }
            m.kind = h.nlmsg_type == NLMSG_ERROR ? KNAT_MSG_ACK : KNAT_MSG_DONE;
            m.error = -e;
        } else if (h.nlmsg_type >= NLMSG_MIN_TYPE) {
            unsigned subsys = h.nlmsg_type >> 8, msg = h.nlmsg_type & 0xff;
            int ct = subsys == NFNL_SUBSYS_CTNETLINK &&
                     (msg == IPCTNL_MSG_CT_NEW || msg == IPCTNL_MSG_CT_DELETE);
            int tab = subsys == NFNL_SUBSYS_NFTABLES && msg == NFT_MSG_NEWTABLE;
            if (ct || tab) {
                if (plen < sizeof(struct nfgenmsg)) {
                    snprintf(err, errsz, "netfilter message of %zu bytes has no header", plen);
                    return -1;
                }
                const uint8_t *ap = pl + NLMSG_ALIGN(sizeof(struct nfgenmsg));
                size_t alen = plen - NLMSG_ALIGN(sizeof(struct nfgenmsg));
                char aerr[128];
                int r;
                if (ct) {
                    m.kind = KNAT_MSG_CT;
                    m.ct_destroy = msg == IPCTNL_MSG_CT_DELETE;
                    m.ct_update = msg == IPCTNL_MSG_CT_NEW && !(h.nlmsg_flags & NLM_F_CREATE);
                    r = parse_ct(ap, alen, &m, aerr, sizeof(aerr));
                } else {
                    m.kind = KNAT_MSG_TABLE;
                    r = parse_table(ap, alen, &m, aerr, sizeof(aerr));
                }
                if (r < 0) {
                    snprintf(err, errsz, "%s message seq %u: %s", ct ? "conntrack" : "table",
                             h.nlmsg_seq, aerr);
                    return -1;
                }
            }
        }
        /* NOOP/OVERRUN and other subsystems' messages: valid, not ours. */
        if (m.kind != KNAT_MSG_OTHER) {
            int r = cb(arg, &m);
            if (r)
                return r;
        }
        size_t step = NLMSG_ALIGN(h.nlmsg_len);
        if (step > left)
            step = left;
        p += step;
        left -= step;
    }
    return 0;
}
