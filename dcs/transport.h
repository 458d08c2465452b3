/* Peer transport of appliance-dcs (port 2380): our own framed binary protocol over TCP.
 *
 * Every member dials every other member and SENDS only on the connection it dialed; it
 * RECEIVES on the connections it accepted. So each direction has one ordered stream
 * (a forwarded-proposal answer sent before the append carrying that entry arrives first).
 *
 * Handshake (dialer -> acceptor, then the acceptor answers with its own hello):
 *   u64 magic "PGADCSP\0" | u32 version (1) | u32 0 | u64 cluster id | u64 sender id |
 *   u64 receiver id                                                     (40 bytes)
 * The acceptor checks version, cluster id (derived from --initial-cluster-token and the
 * members), that the receiver is itself and that the sender is a known member; on a
 * mismatch it answers "PGADCSNO <reason>\n" and closes, and the dialer logs the reason and
 * retries with backoff. So a member started with another cluster token is refused.
 *
 * Frames after the handshake, little-endian:
 *   u32 magic "PGAF" | u8 kind | u8 0 | u16 0 | u32 body length | u32 CRC-32C of body | body
 * kind 1: a Raft message (body = raft_msg_encode frame); kinds 2..: server messages
 * (forwarded proposals and their answers). A bad magic/length/CRC closes the connection.
 *
 * Bounded: per peer at most max_queue_bytes of unsent output (further frames are dropped,
 * which Raft tolerates: it retransmits); frames up to TRANSPORT_MAX_BODY. Reconnect with
 * exponential backoff 50 ms .. 2 s. */
#ifndef APPLIANCE_DCS_TRANSPORT_H
#define APPLIANCE_DCS_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "evloop.h"

#define TRANSPORT_VERSION   1
#define TRANSPORT_HELLO_LEN 40
#define TRANSPORT_FRAME_HDR 16
#define TRANSPORT_MAX_BODY  ((64u << 20) + 4096u)
#define TRANSPORT_MAX_PEERS 9

enum transport_kind {
    TRANSPORT_RAFT = 1,
    TRANSPORT_FWD_REQ = 2,
    TRANSPORT_FWD_RESP = 3,
    TRANSPORT_INFO = 4,
    TRANSPORT_REFUSED = 100 /* local only: a peer refused our hello; body = its reason */
};

typedef struct transport transport;

/* A complete, CRC-checked frame from member `from`; body valid during the call only. */
typedef void (*transport_recv_cb)(void *arg, uint64_t from, int kind, const uint8_t *body,
                                  size_t len);

typedef struct transport_config {
    uint64_t cluster_id, self_id;
    size_t npeers;
    uint64_t peer_ids[TRANSPORT_MAX_PEERS];
    char peer_host[TRANSPORT_MAX_PEERS][256];
    char peer_port[TRANSPORT_MAX_PEERS][8];
    size_t max_queue_bytes; /* per peer; 0 = 128 MiB */
    /* "" or the address to dial from (this member's advertised peer host), so the peers
     * (and firewall rules) see this member's address, not the kernel's choice; when it
     * cannot be bound, the dial goes out unbound */
    char local_host[256];
} transport_config;

transport *transport_new(evloop *loop, const transport_config *cfg, transport_recv_cb cb,
                         void *arg);
/* Listens on host:port for peers. 0 or -1 (errno). */
int transport_listen(transport *t, const char *host, const char *port);
/* Queues one frame to member `to` (dialing it if needed). 0, or -1 when the peer is
 * unknown, not connected yet, or its queue is full (the frame is dropped). */
int transport_send(transport *t, uint64_t to, int kind, const void *body, size_t len);
/* Frames are corked: queued frames leave at transport_flush() or at the end of the loop
 * turn that queued them (a 0 ms timer), so one loop turn costs one send per peer. */
void transport_flush(transport *t);
/* Same with the body in two pieces (header + payload), to avoid a copy. */
int transport_send2(transport *t, uint64_t to, int kind, const void *a, size_t alen, const void *b,
                    size_t blen);
/* 1 when the outgoing connection to `to` has completed its handshake. */
int transport_connected(const transport *t, uint64_t to);
/* Encodes/checks the hello (exposed for unit tests). */
void transport_hello_encode(uint8_t out[TRANSPORT_HELLO_LEN], uint64_t cluster_id, uint64_t from,
                            uint64_t to);
/* 0, or -1 with a reason: bad magic/version, other cluster, not for me, unknown sender. */
int transport_hello_check(const transport_config *cfg, const uint8_t in[TRANSPORT_HELLO_LEN],
                          int expect_from, uint64_t *from, char *why, size_t whylen);
/* Membership changes: start dialing a new member / stop talking to a removed one (its slot
 * is reused; a removed member's hello is refused). */
int transport_add_peer(transport *t, uint64_t id, const char *host, const char *port);
void transport_remove_peer(transport *t, uint64_t id);
/* A joining member (--initial-cluster-state existing, empty data dir) asks a running member
 * at host:port, over the peer port, for its own ID, the cluster ID and the members, naming
 * its advertised peer URL (my_host, my_port). Blocking, with a timeout (before the event
 * loop runs). Returns 0 and fills the answer, -1 with err (refused: the reason given). */
typedef struct transport_join_info {
    uint64_t cluster_id, self_id, answered_by;
    size_t n;
    uint64_t ids[TRANSPORT_MAX_PEERS];
    char host[TRANSPORT_MAX_PEERS][256];
    char port[TRANSPORT_MAX_PEERS][8];
} transport_join_info;
int transport_join_query(const char *host, const char *port, const char *my_host,
                         const char *my_port, int timeout_ms, transport_join_info *out, char *err,
                         size_t errlen);

/* Frame codec (exposed for the fuzzer and tests). transport_frame_parse looks at the
 * `have` bytes at p: 0 = incomplete, 1 = one whole valid frame of TRANSPORT_FRAME_HDR +
 * *len bytes (kind in *kind), -1 = invalid (why says what; the connection is closed). */
void transport_frame_header(uint8_t hdr[TRANSPORT_FRAME_HDR], int kind, uint32_t len, uint32_t crc);
int transport_frame_parse(const uint8_t *p, size_t have, int *kind, uint32_t *len, char *why,
                          size_t whylen);
void transport_free(transport *t);

#endif
