/* In-kernel splicing of proxied TCP sessions with a BPF sockhash (data_path.splice: sockmap).
 *
 * Once a session's two sockets are paired, every segment received on one of them is handed
 * by a small sk_skb stream-verdict program straight to the other socket's send path, so
 * steady-state traffic never wakes the router. User space still sees EOF, errors and
 * whatever arrives while the pair is being set up or torn down (the program passes a
 * segment to its own socket when the peer is not in the map). */
#ifndef APPLIANCE_ROUTER_SOCKMAP_H
#define APPLIANCE_ROUTER_SOCKMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct sockmap {
    int map_fd;  /* BPF_MAP_TYPE_SOCKHASH: key = socket cookie, value = the peer socket */
    int prog_fd; /* the sk_skb verdict program, attached to map_fd */
} sockmap;

/* Creates the map (room for max_pairs sessions), loads and attaches the program.
 * Returns 0, or -1 with a reason in err (e.g. "bpf(BPF_PROG_LOAD): Operation not
 * permitted"); sm is then left closed (fds -1). */
int sockmap_open(sockmap *sm, uint32_t max_pairs, char *err, size_t errsz);

void sockmap_close(sockmap *sm);

/* Pairs two connected TCP sockets: from now on bytes received on a go out of b and back.
 * Returns 0, or -1 with errno (the sockets then stay with user space). */
int sockmap_pair(const sockmap *sm, int a, int b);

/* Bytes queued on a socket before it was paired are not seen by the verdict program (it
 * runs on arrival), and recv() no longer returns them either; they would wait for the next
 * arrival, which a request/response protocol never sends. Setting SO_RCVLOWAT runs the
 * socket's data-ready hook, which hands the queue to the program, in order. Returns 0 or -1.
 * (There is deliberately no "unpair": taking a live socket out of the map drops segments
 * queued for it in the kernel; closing it is the way out.) */
int sockmap_kick(int fd);

/* Bytes a socket has received from its peer (TCP_INFO tcpi_bytes_received), and bytes
 * written to it that the kernel accepted for sending (sent - retransmitted + not yet
 * sent). Return -1 on error. */
int64_t sockmap_bytes_received(int fd);
int64_t sockmap_bytes_written(int fd);

/* Milliseconds since the socket last received data (TCP_INFO tcpi_last_data_recv), or
 * UINT32_MAX on error. */
uint32_t sockmap_ms_since_recv(int fd);

#endif
