/* The appliance-dcs peer transport over real loopback sockets (127.0.80.51/52, in this
 * suite's address range): handshake and delivery of frames (kind, body, 2 MiB), refusal of
 * another cluster ID with a reason, a corrupted frame closing the connection, the
 * bounded queue towards a peer that stops reading, and corking (frames of one loop turn
 * leave together, at transport_flush or at the end of the turn, in order). Waits poll
 * conditions with deadlines. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "dcs/crc32c.h"
#include "dcs/transport.h"
#include "evloop.h"

#define A_ID 0xA1
#define B_ID 0xB2

typedef struct rx {
    int n;
    uint64_t from;
    int kind;
    size_t len;
    int body_ok;
} rx;

static void on_rx(void *arg, uint64_t from, int kind, const uint8_t *body, size_t len)
{
    rx *r = arg;
    r->n++;
    r->from = from;
    r->kind = kind;
    r->len = len;
    r->body_ok = 1;
    for (size_t i = 0; i < len; i++)
        if (body[i] != (uint8_t)(i * 7))
            r->body_ok = 0;
}

static transport_config cfg_for(uint64_t self, uint64_t peer, const char *peer_host,
                                uint64_t cluster)
{
    transport_config c;
    memset(&c, 0, sizeof(c));
    c.cluster_id = cluster;
    c.self_id = self;
    c.npeers = 1;
    c.peer_ids[0] = peer;
    strcpy(c.peer_host[0], peer_host);
    strcpy(c.peer_port[0], "2380");
    return c;
}

/* runs the loop until *flag becomes non-zero or ms pass */
static int run_until(evloop *l, const int *flag, int ms)
{
    uint64_t end = evloop_update_now(l) + (uint64_t)ms;
    while (!*flag && evloop_update_now(l) < end)
        evloop_run_once(l, 10);
    return *flag;
}

TEST(handshake_and_frames)
{
    evloop *l = evloop_new();
    rx ra = {0}, rb = {0};
    transport_config ca = cfg_for(A_ID, B_ID, "127.0.80.52", 42);
    transport_config cb = cfg_for(B_ID, A_ID, "127.0.80.51", 42);
    transport *a = transport_new(l, &ca, on_rx, &ra);
    transport *b = transport_new(l, &cb, on_rx, &rb);
    CHECK_EQ_INT(transport_listen(a, "127.0.80.51", "2380"), 0);
    CHECK_EQ_INT(transport_listen(b, "127.0.80.52", "2380"), 0);
    int both = 0;
    uint64_t end = evloop_update_now(l) + 5000;
    while (!both && evloop_update_now(l) < end) {
        evloop_run_once(l, 10);
        both = transport_connected(a, B_ID) && transport_connected(b, A_ID);
    }
    CHECK(both);
    size_t big = 2u << 20;
    uint8_t *buf = malloc(big);
    for (size_t i = 0; i < big; i++)
        buf[i] = (uint8_t)(i * 7);
    CHECK_EQ_INT(transport_send(a, B_ID, TRANSPORT_RAFT, buf, 100), 0);
    CHECK(run_until(l, &rb.n, 2000));
    CHECK(rb.from == A_ID && rb.kind == TRANSPORT_RAFT && rb.len == 100 && rb.body_ok);
    CHECK_EQ_INT(transport_send2(b, A_ID, TRANSPORT_FWD_REQ, buf, 10, buf + 10, big - 10), 0);
    CHECK(run_until(l, &ra.n, 5000));
    CHECK(ra.from == B_ID && ra.kind == TRANSPORT_FWD_REQ && ra.len == big && ra.body_ok);
    CHECK_EQ_INT(transport_send(a, 0x99, TRANSPORT_RAFT, buf, 1), -1); /* unknown peer */
    free(buf);
    transport_free(a);
    transport_free(b);
    evloop_free(l);
}

TEST(other_cluster_is_refused_with_a_reason)
{
    evloop *l = evloop_new();
    rx rb = {0};
    transport_config cb = cfg_for(B_ID, A_ID, "127.0.80.51", 42);
    transport *b = transport_new(l, &cb, on_rx, &rb);
    CHECK_EQ_INT(transport_listen(b, "127.0.80.52", "2380"), 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(2380)};
    inet_pton(AF_INET, "127.0.80.52", &sa.sin_addr);
    CHECK_EQ_INT(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    uint8_t hello[TRANSPORT_HELLO_LEN];
    transport_hello_encode(hello, 43, A_ID, B_ID); /* wrong cluster */
    CHECK_EQ_INT(write(fd, hello, sizeof(hello)), (int)sizeof(hello));
    char got[512] = {0};
    size_t n = 0;
    int closed = 0;
    uint64_t end = evloop_update_now(l) + 3000;
    while (!closed && evloop_update_now(l) < end) {
        evloop_run_once(l, 10);
        ssize_t k = recv(fd, got + n, sizeof(got) - 1 - n, MSG_DONTWAIT);
        if (k == 0)
            closed = 1;
        else if (k > 0)
            n += (size_t)k;
    }
    CHECK(closed);
    CHECK(strncmp(got, "PGADCSNO", 8) == 0 && strstr(got, "cluster ID mismatch") != NULL);
    close(fd);
    CHECK_EQ_INT(rb.n, 0);
    transport_free(b);
    evloop_free(l);
}

static int raw_peer(evloop *l, uint8_t reply[TRANSPORT_HELLO_LEN])
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(2380)};
    inet_pton(AF_INET, "127.0.80.52", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        return -1;
    uint8_t hello[TRANSPORT_HELLO_LEN];
    transport_hello_encode(hello, 42, A_ID, B_ID);
    if (write(fd, hello, sizeof(hello)) != (ssize_t)sizeof(hello))
        return -1;
    size_t n = 0;
    uint64_t end = evloop_update_now(l) + 3000;
    while (n < TRANSPORT_HELLO_LEN && evloop_update_now(l) < end) {
        evloop_run_once(l, 10);
        ssize_t k = recv(fd, reply + n, TRANSPORT_HELLO_LEN - n, MSG_DONTWAIT);
        if (k > 0)
            n += (size_t)k;
    }
    return n == TRANSPORT_HELLO_LEN ? fd : -1;
}

TEST(corrupt_frame_closes_the_connection)
{
    evloop *l = evloop_new();
    rx rb = {0};
    transport_config cb = cfg_for(B_ID, A_ID, "127.0.80.51", 42);
    transport *b = transport_new(l, &cb, on_rx, &rb);
    CHECK_EQ_INT(transport_listen(b, "127.0.80.52", "2380"), 0);
    uint8_t reply[TRANSPORT_HELLO_LEN];
    int fd = raw_peer(l, reply);
    CHECK(fd >= 0);
    /* a good frame is delivered ... */
    uint8_t f[TRANSPORT_FRAME_HDR + 4] = {'P', 'G', 'A', 'F', TRANSPORT_RAFT, 0, 0, 0, 4, 0, 0, 0};
    uint32_t crc = crc32c(f + TRANSPORT_FRAME_HDR, 4);
    memcpy(f + 12, &crc, 4); /* little-endian host */
    CHECK_EQ_INT(write(fd, f, sizeof(f)), (int)sizeof(f));
    CHECK(run_until(l, &rb.n, 2000));
    /* ... a corrupted one closes the connection */
    f[TRANSPORT_FRAME_HDR] ^= 1;
    CHECK_EQ_INT(write(fd, f, sizeof(f)), (int)sizeof(f));
    int closed = 0;
    uint64_t end = evloop_update_now(l) + 3000;
    while (!closed && evloop_update_now(l) < end) {
        evloop_run_once(l, 10);
        char tmp[16];
        closed = recv(fd, tmp, sizeof(tmp), MSG_DONTWAIT) == 0;
    }
    CHECK(closed);
    CHECK_EQ_INT(rb.n, 1);
    close(fd);
    transport_free(b);
    evloop_free(l);
}

TEST(queue_towards_a_stalled_peer_is_bounded)
{
    evloop *l = evloop_new();
    /* a fake peer B that completes the handshake and then never reads */
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(2380)};
    inet_pton(AF_INET, "127.0.80.52", &sa.sin_addr);
    CHECK_EQ_INT(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    CHECK_EQ_INT(listen(lfd, 4), 0);
    rx ra = {0};
    transport_config ca = cfg_for(A_ID, B_ID, "127.0.80.52", 42);
    ca.max_queue_bytes = 1u << 20;
    transport *a = transport_new(l, &ca, on_rx, &ra);
    int cfd = -1;
    uint64_t end = evloop_update_now(l) + 3000;
    while (cfd < 0 && evloop_update_now(l) < end) {
        evloop_run_once(l, 10);
        cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
    }
    CHECK(cfd >= 0);
    uint8_t hello[TRANSPORT_HELLO_LEN];
    size_t n = 0;
    while (n < sizeof(hello) && evloop_update_now(l) < end) {
        evloop_run_once(l, 10);
        ssize_t k = recv(cfd, hello + n, sizeof(hello) - n, 0);
        if (k > 0)
            n += (size_t)k;
    }
    transport_hello_encode(hello, 42, B_ID, A_ID);
    CHECK_EQ_INT(write(cfd, hello, sizeof(hello)), (int)sizeof(hello));
    int up = 0;
    while (!up && evloop_update_now(l) < end) {
        evloop_run_once(l, 10);
        up = transport_connected(a, B_ID);
    }
    CHECK(up);
    static uint8_t chunk[256 * 1024];
    int sent = 0, refused = 0;
    for (int i = 0; i < 200 && !refused; i++) {
        if (transport_send(a, B_ID, TRANSPORT_RAFT, chunk, sizeof(chunk)) == 0)
            sent++;
        else
            refused = 1;
        evloop_run_once(l, 0);
    }
    /* kernel buffers take some, then our queue fills at 1 MiB: far less than 50 MiB */
    CHECK(refused);
    CHECK(sent < 100);
    close(cfd);
    close(lfd);
    transport_free(a);
    evloop_free(l);
}

/* A fake peer B (raw socket on 127.0.80.52:2380) that completed the handshake with a;
 * returns its connected socket or -1. */
static int fake_peer_up(evloop *l, transport *a, int lfd)
{
    int cfd = -1;
    uint64_t end = evloop_update_now(l) + 3000;
    while (cfd < 0 && evloop_update_now(l) < end) {
        evloop_run_once(l, 10);
        cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
    }
    if (cfd < 0)
        return -1;
    uint8_t hello[TRANSPORT_HELLO_LEN];
    size_t n = 0;
    while (n < sizeof(hello) && evloop_update_now(l) < end) {
        evloop_run_once(l, 10);
        ssize_t k = recv(cfd, hello + n, sizeof(hello) - n, 0);
        if (k > 0)
            n += (size_t)k;
    }
    transport_hello_encode(hello, 42, B_ID, A_ID);
    if (write(cfd, hello, sizeof(hello)) != (ssize_t)sizeof(hello))
        return -1;
    while (!transport_connected(a, B_ID) && evloop_update_now(l) < end)
        evloop_run_once(l, 10);
    return transport_connected(a, B_ID) ? cfd : -1;
}

/* reads until `want` bytes arrived on fd (or 2 s pass); returns the count */
static size_t read_bytes(evloop *l, int fd, uint8_t *out, size_t want)
{
    size_t got = 0;
    uint64_t end = evloop_update_now(l) + 2000;
    while (got < want && evloop_update_now(l) < end) {
        ssize_t k = recv(fd, out + got, want - got, 0);
        if (k > 0)
            got += (size_t)k;
        else
            evloop_run_once(l, 5);
    }
    return got;
}

TEST(frames_of_one_turn_are_corked)
{
    evloop *l = evloop_new();
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(2380)};
    inet_pton(AF_INET, "127.0.80.52", &sa.sin_addr);
    CHECK_EQ_INT(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    CHECK_EQ_INT(listen(lfd, 4), 0);
    rx ra = {0};
    transport_config ca = cfg_for(A_ID, B_ID, "127.0.80.52", 42);
    transport *a = transport_new(l, &ca, on_rx, &ra);
    int cfd = fake_peer_up(l, a, lfd);
    CHECK(cfd >= 0);
    /* 50 frames queued without a loop turn: nothing is on the wire yet */
    enum { N = 50, BODY = 20, FRAME = TRANSPORT_FRAME_HDR + BODY };
    uint8_t body[BODY];
    for (int i = 0; i < N; i++) {
        memset(body, i, sizeof(body));
        CHECK_EQ_INT(transport_send(a, B_ID, TRANSPORT_RAFT, body, sizeof(body)), 0);
    }
    uint8_t got[N * FRAME];
    CHECK(recv(cfd, got, sizeof(got), MSG_DONTWAIT) < 0 && errno == EAGAIN);
    /* an explicit flush sends them all, in order, each frame intact */
    transport_flush(a);
    CHECK_EQ_INT((int)read_bytes(l, cfd, got, sizeof(got)), N * FRAME);
    int in_order = 1;
    for (int i = 0; i < N; i++) {
        int kind;
        uint32_t len;
        char why[64];
        const uint8_t *f = got + (size_t)i * FRAME;
        if (transport_frame_parse(f, FRAME, &kind, &len, why, sizeof(why)) != 1 ||
            kind != TRANSPORT_RAFT || len != BODY || f[TRANSPORT_FRAME_HDR] != i ||
            f[FRAME - 1] != i)
            in_order = 0;
    }
    CHECK(in_order);
    /* without a flush, the end of the loop turn sends them */
    CHECK_EQ_INT(transport_send(a, B_ID, TRANSPORT_FWD_REQ, body, sizeof(body)), 0);
    CHECK(recv(cfd, got, sizeof(got), MSG_DONTWAIT) < 0 && errno == EAGAIN);
    evloop_run_once(l, 0);
    CHECK_EQ_INT((int)read_bytes(l, cfd, got, FRAME), FRAME);
    close(cfd);
    close(lfd);
    transport_free(a);
    evloop_free(l);
}

int main(void)
{
    RUN(handshake_and_frames);
    RUN(other_cluster_is_refused_with_a_reason);
    RUN(corrupt_frame_closes_the_connection);
    RUN(queue_towards_a_stalled_peer_is_bounded);
    RUN(frames_of_one_turn_are_corked);
    return check_done();
}
