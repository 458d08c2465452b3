/* Shared between the gRPC front files: grpc_front.c (listeners, sniffing, connections),
 * grpc_service.c (KV, Lease, Maintenance, Cluster) and grpc_watch.c (Watch). */
#ifndef APPLIANCE_DCS_GRPC_INTERNAL_H
#define APPLIANCE_DCS_GRPC_INTERNAL_H

#include "dcs/grpc_call.h"
#include "dcs/grpc_front.h"
#include "dcs/server_internal.h"

#define GRPC_MAX_LISTENERS 8
#define GRPC_MAX_SNIFFING  1024 /* connections not yet classified (as lib/http's limit) */
#define GRPC_MAX_CONNS     1024 /* HTTP/2 connections */
#define GRPC_SNIFF_MS      10000

typedef struct gwatch gwatch;
typedef struct sniff sniff;
typedef struct gconn gconn;

struct grpc_front {
    dcs_server *s;
    int lfd[GRPC_MAX_LISTENERS];
    size_t nlisten;
    sniff *sniffing;
    size_t nsniffing;
    gconn *conns;
    size_t nconns;
    gwatch *watches;
    grpc_service svc;
    grpc_ctx ctx;
    h2_limits lim;
    bool freeing;
};

/* grpc_service.c */
void grpc_service_init(grpc_service *svc);
/* p answers call through the gRPC sink (takes a call reference). */
void grpc_preq_attach(preq *p, grpc_call *call);
/* grpc_cluster.c: MemberAdd/Remove/Update/Promote; the applied answer's message. */
void grpc_member_change(dcs_server *s, grpc_call *call, const uint8_t *msg, size_t len);
void grpc_member_answer(preq *p, const store_result *res, pb_buf *b);
/* grpc_watch.c */
void grpc_watch_message(grpc_front *g, grpc_call *call, const uint8_t *msg, size_t len);
void grpc_watch_gone(grpc_front *g, grpc_call *call);
void grpc_watch_reset_all(grpc_front *g);

#endif
