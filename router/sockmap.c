/* BPF sockhash splicing via the raw bpf(2) syscall.
 *
 * No libbpf: the release build is static musl, and the program is 14 instructions (15 slots),
 * written out below. The ABI constants and attribute layouts are the kernel's stable UAPI (copied
 * here because musl's sysroot carries no <linux/bpf.h>).
 *
 * Pairing: the map is keyed by socket cookie (SO_COOKIE). For a session with client socket
 * C and server socket S we store S under C's cookie and C under S's cookie, so the verdict
 * program of a segment received on a socket looks up "my cookie" and finds its peer. A
 * verdict-only program (no stream parser) is enough since Linux 5.13: each skb is judged
 * as it arrives, without strparser's message framing. */
#include "router/sockmap.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

/* <linux/bpf.h> values */
enum {
    BPF_MAP_CREATE_ = 0,
    BPF_MAP_UPDATE_ELEM_ = 2,
    BPF_MAP_DELETE_ELEM_ = 3,
    BPF_PROG_LOAD_ = 5,
    BPF_PROG_ATTACH_ = 8,
    MAP_TYPE_SOCKHASH = 18,
    PROG_TYPE_SK_SKB = 14,
    ATTACH_SK_SKB_STREAM_VERDICT = 5,
    FUNC_GET_SOCKET_COOKIE = 46,
    FUNC_SK_REDIRECT_HASH = 72,
    PSEUDO_MAP_FD = 1,
    SK_PASS = 1,
    BPF_ANY_ = 0,
};

struct bpf_insn_ {
    uint8_t code;
    uint8_t regs; /* dst_reg in the low nibble, src_reg in the high one */
    int16_t off;
    int32_t imm;
};

#define INSN(c, dst, src, o, i)                                                                    \
    {                                                                                              \
        .code = (c), .regs = (uint8_t)((dst) | ((src) << 4)), .off = (o), .imm = (i)               \
    }

/* The bpf_attr union is 120+ bytes; each command reads its own prefix, the rest must be 0. */
union attr {
    struct {
        uint32_t map_type, key_size, value_size, max_entries, map_flags;
    } map;
    struct {
        uint32_t map_fd, pad;
        uint64_t key, value, flags;
    } elem;
    struct {
        uint32_t prog_type, insn_cnt;
        uint64_t insns, license;
        uint32_t log_level, log_size;
        uint64_t log_buf;
    } load;
    struct {
        uint32_t target_fd, attach_bpf_fd, attach_type, attach_flags;
    } attach;
    uint8_t raw[128];
};

static int sys_bpf(int cmd, union attr *a)
{
    return (int)syscall(SYS_bpf, cmd, a, sizeof(*a));
}

int sockmap_open(sockmap *sm, uint32_t max_pairs, char *err, size_t errsz)
{
    sm->map_fd = sm->prog_fd = -1;
    union attr a;
    memset(&a, 0, sizeof(a));
    a.map.map_type = MAP_TYPE_SOCKHASH;
    a.map.key_size = sizeof(uint64_t);
    a.map.value_size = sizeof(uint32_t);
    a.map.max_entries = max_pairs ? 2 * max_pairs : 2;
    int mfd = sys_bpf(BPF_MAP_CREATE_, &a);
    if (mfd < 0) {
        snprintf(err, errsz, "bpf(BPF_MAP_CREATE sockhash): %s", strerror(errno));
        return -1;
    }
    /* r1 = the skb on entry; r10 = frame pointer; helpers return in r0. */
    struct bpf_insn_ prog[] = {
        /* r6 = r1: keep the skb, calls clobber r1-r5 */
        INSN(0xbf, 6, 1, 0, 0),
        /* r2 = skb->len (offset 0 of struct __sk_buff) */
        INSN(0x61, 2, 1, 0, 0),
        /* if r2 == 0 goto "r0 = SK_PASS" (9 slots on): a FIN-only segment carries nothing
         * to move, and the kernel's sender treats a 0-byte send to the peer as a broken
         * pipe (it sets EPIPE on the peer socket and stops sending) */
        INSN(0x15, 2, 0, 9, 0),
        /* r0 = bpf_get_socket_cookie(skb): the cookie of the socket this segment arrived on */
        INSN(0x85, 0, 0, 0, FUNC_GET_SOCKET_COOKIE),
        /* *(u64 *)(r10 - 8) = r0: the lookup key lives on the stack */
        INSN(0x7b, 10, 0, -8, 0),
        /* r1 = r6: the skb again */
        INSN(0xbf, 1, 6, 0, 0),
        /* r2 = &map (ld_imm64, two slots; the loader swaps the fd for the map pointer) */
        INSN(0x18, 2, PSEUDO_MAP_FD, 0, mfd),
        INSN(0x00, 0, 0, 0, 0),
        /* r3 = r10; r3 += -8: pointer to the key */
        INSN(0xbf, 3, 10, 0, 0),
        INSN(0x07, 3, 0, 0, -8),
        /* r4 = 0: flags, i.e. into the peer's send path (egress), not its receive queue */
        INSN(0xb7, 4, 0, 0, 0),
        /* bpf_sk_redirect_hash(skb, map, &key, 0): marks the skb for the peer socket */
        INSN(0x85, 0, 0, 0, FUNC_SK_REDIRECT_HASH),
        /* r0 = SK_PASS whatever the helper said: with a redirect marked the skb goes to the
         * peer; with no peer in the map (pairing or teardown) it stays on this socket for
         * user space to read, instead of being dropped */
        INSN(0xb7, 0, 0, 0, SK_PASS),
        /* return r0 */
        INSN(0x95, 0, 0, 0, 0),
    };
    static const char license[] = "GPL"; /* the redirect helpers are GPL-only */
    char log[1024] = "";
    memset(&a, 0, sizeof(a));
    a.load.prog_type = PROG_TYPE_SK_SKB;
    a.load.insn_cnt = (uint32_t)(sizeof(prog) / sizeof(prog[0]));
    a.load.insns = (uint64_t)(uintptr_t)prog;
    a.load.license = (uint64_t)(uintptr_t)license;
    a.load.log_level = 1;
    a.load.log_size = sizeof(log);
    a.load.log_buf = (uint64_t)(uintptr_t)log;
    int pfd = sys_bpf(BPF_PROG_LOAD_, &a);
    if (pfd < 0) {
        int e = errno;
        for (char *c = log; *c; c++) /* the verifier's log, on the one log line */
            if (*c == '\n')
                *c = ' ';
        snprintf(err, errsz, "bpf(BPF_PROG_LOAD sk_skb): %s%s%.200s", strerror(e),
                 log[0] ? ": " : "", log);
        close(mfd);
        return -1;
    }
    memset(&a, 0, sizeof(a));
    a.attach.target_fd = (uint32_t)mfd;
    a.attach.attach_bpf_fd = (uint32_t)pfd;
    a.attach.attach_type = ATTACH_SK_SKB_STREAM_VERDICT;
    if (sys_bpf(BPF_PROG_ATTACH_, &a) < 0) {
        snprintf(err, errsz, "bpf(BPF_PROG_ATTACH stream verdict): %s", strerror(errno));
        close(pfd);
        close(mfd);
        return -1;
    }
    sm->map_fd = mfd;
    sm->prog_fd = pfd;
    return 0;
}

void sockmap_close(sockmap *sm)
{
    if (sm->prog_fd >= 0)
        close(sm->prog_fd);
    if (sm->map_fd >= 0)
        close(sm->map_fd);
    sm->map_fd = sm->prog_fd = -1;
}

static int cookie(int fd, uint64_t *c)
{
    socklen_t len = sizeof(*c);
    return getsockopt(fd, SOL_SOCKET, SO_COOKIE, c, &len);
}

static int put(const sockmap *sm, uint64_t key, int fd)
{
    union attr a;
    uint32_t v = (uint32_t)fd;
    memset(&a, 0, sizeof(a));
    a.elem.map_fd = (uint32_t)sm->map_fd;
    a.elem.key = (uint64_t)(uintptr_t)&key;
    a.elem.value = (uint64_t)(uintptr_t)&v;
    a.elem.flags = BPF_ANY_;
    return sys_bpf(BPF_MAP_UPDATE_ELEM_, &a);
}

static void del(const sockmap *sm, uint64_t key)
{
    union attr a;
    memset(&a, 0, sizeof(a));
    a.elem.map_fd = (uint32_t)sm->map_fd;
    a.elem.key = (uint64_t)(uintptr_t)&key;
    (void)sys_bpf(BPF_MAP_DELETE_ELEM_, &a); /* ENOENT when already gone: fine */
}

int sockmap_pair(const sockmap *sm, int a, int b)
{
    uint64_t ca, cb;
    if (cookie(a, &ca) < 0 || cookie(b, &cb) < 0)
        return -1;
    if (put(sm, ca, b) < 0)
        return -1;
    if (put(sm, cb, a) < 0) {
        int e = errno;
        del(sm, ca);
        errno = e;
        return -1;
    }
    return 0;
}

int sockmap_kick(int fd)
{
    int one = 1;
    return setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one));
}

/* struct tcp_info as the kernel lays it out, up to tcpi_bytes_retrans (glibc's and musl's
 * headers stop at different fields). */
struct tcp_info_k {
    uint8_t state, ca_state, retransmits, probes, backoff, options, wscale, flags;
    uint32_t rto, ato, snd_mss, rcv_mss, unacked, sacked, lost, retrans, fackets;
    uint32_t last_data_sent, last_ack_sent, last_data_recv, last_ack_recv;
    uint32_t pmtu, rcv_ssthresh, rtt, rttvar, snd_ssthresh, snd_cwnd, advmss, reordering;
    uint32_t rcv_rtt, rcv_space, total_retrans;
    uint64_t pacing_rate, max_pacing_rate, bytes_acked, bytes_received;
    uint32_t segs_out, segs_in, notsent_bytes, min_rtt, data_segs_in, data_segs_out;
    uint64_t delivery_rate, busy_time, rwnd_limited, sndbuf_limited;
    uint32_t delivered, delivered_ce;
    uint64_t bytes_sent, bytes_retrans;
};

static int info(int fd, struct tcp_info_k *ti)
{
    memset(ti, 0, sizeof(*ti));
    socklen_t len = sizeof(*ti);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, ti, &len) < 0)
        return -1;
    /* Older kernels return a shorter struct: the fields we need would read as 0. */
    return len == sizeof(*ti) ? 0 : (errno = ENOPROTOOPT, -1);
}

int64_t sockmap_bytes_received(int fd)
{
    struct tcp_info_k ti;
    return info(fd, &ti) < 0 ? -1 : (int64_t)ti.bytes_received;
}

int64_t sockmap_bytes_written(int fd)
{
    struct tcp_info_k ti;
    if (info(fd, &ti) < 0)
        return -1;
    return (int64_t)(ti.bytes_sent - ti.bytes_retrans) + (int64_t)ti.notsent_bytes;
}

uint32_t sockmap_ms_since_recv(int fd)
{
    struct tcp_info_k ti;
    return info(fd, &ti) < 0 ? UINT32_MAX : ti.last_data_recv;
}
