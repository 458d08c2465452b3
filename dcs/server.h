/* appliance-dcs: one etcd-compatible member (see issue 4). Wires the Raft core
 * (dcs/raft.h), WAL and snapshots, the replicated store (dcs/store_cmd.h), the v3/v2
 * gateways and the peer transport onto ONE event loop. */
#ifndef APPLIANCE_DCS_SERVER_H
#define APPLIANCE_DCS_SERVER_H

#include "dcs/flags.h"
#include "evloop.h"

typedef struct dcs_server dcs_server;

/* Recovers the data directory (WAL + snapshot), listens on the client and peer URLs.
 * NULL with err on failure. */
dcs_server *dcs_server_new(evloop *loop, const dcs_flags *f, char *err, size_t errlen);
/* SIGTERM: a leader first hands leadership to a caught-up peer (bounded wait), then the
 * loop is stopped. */
void dcs_server_shutdown(dcs_server *s);
void dcs_server_free(dcs_server *s);

#endif
