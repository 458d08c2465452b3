/* The v3 gateway logic between HTTP and the state machine, without I/O or Raft, so the
 * server only wires it: a parsed request is either a write (turned into a store command to
 * propose; its applied result rendered by v3_render_result) or a read served from the
 * local store (v3_execute_read: range, lease timetolive/leases, and keepalive, which etcd
 * handles on the leader without a Raft entry). */
#ifndef APPLIANCE_DCS_V3_GATEWAY_H
#define APPLIANCE_DCS_V3_GATEWAY_H

#include "dcs/store_cmd.h"
#include "dcs/v3_request.h"
#include "dcs/v3_response.h"

/* 1 and *cmd filled when the request is a write; 0 when it is a read (or a watch). */
int v3_request_command(const v3_request *req, store_cmd *cmd);
/* Renders the applied result of req's command; *status = HTTP status. */
void v3_render_result(const v3_request *req, const store_result *res, const v3_header *h, jw *w,
                      int *status);
/* Serves a read request; *status = HTTP status. h->revision is filled from the store. */
void v3_execute_read(dcs_store *st, const v3_request *req, v3_header *h, int64_t now_ms,
                     mvcc_arena *a, jw *w, int *status);

#endif
