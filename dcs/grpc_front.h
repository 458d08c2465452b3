/* etcd's gRPC API on the client port, beside the v3 JSON gateway and v2 API (issue #4):
 * etcdctl (ETCDCTL_API=3) and clientv3 programs talk gRPC over cleartext HTTP/2 with
 * prior knowledge. The front owns the client listeners: each accepted connection is
 * sniffed (peeked, nothing consumed) for the HTTP/2 client preface; a match becomes an
 * h2_conn carrying gRPC calls, anything else is handed to the HTTP/1.1 server untouched.
 *
 * Services (KV, Lease, Watch, Maintenance Status/Alarm, Cluster MemberList) reuse the
 * JSON gateway's request structures and the server's proposal / ReadIndex / keepalive
 * forwarding machinery (preq with a sink), so both APIs behave identically. */
#ifndef APPLIANCE_DCS_GRPC_FRONT_H
#define APPLIANCE_DCS_GRPC_FRONT_H

struct dcs_server;
typedef struct grpc_front grpc_front;

grpc_front *grpc_front_new(struct dcs_server *s);
/* Listens on host:port (both protocols). 0, or -1 with errno. */
int grpc_front_listen(grpc_front *g, const char *host, const char *port);
/* The store was replaced (snapshot install): watch calls end with UNAVAILABLE (clients
 * re-watch from their last revision, as after a member restart). */
void grpc_front_store_reset(grpc_front *g);
/* Closes listeners, sniffing sockets and every gRPC connection. NULL is fine. */
void grpc_front_free(grpc_front *g);

#endif
