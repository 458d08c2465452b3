/* etcd v2 keys API codec: an HTTP request (method, /v2/keys path, query, form body) to a
 * v2_request, validated as etcd's v2http parseKeyRequest does (errors 2xx with etcd's
 * causes), and a v2_result to etcd's JSON ({"action","node","prevNode"} or
 * {"errorCode","message","cause","index"}). */
#ifndef APPLIANCE_DCS_V2_CODEC_H
#define APPLIANCE_DCS_V2_CODEC_H

#include "dcs/v2_store.h"
#include "dcs/v3_jsonw.h"

/* path: the request path (percent-decoded), starting with "/v2/keys". query: raw query
 * string; body: raw form body (PUT/POST, application/x-www-form-urlencoded; its fields
 * win over the query's, as Go's FormValue). On a request error returns -1 with err filled
 * (err->http_status, err->err, err->cause). time_ms: this member's wall clock, used for
 * the TTL of mutations (the leader's value travels in the command). */
int v2_parse_request(const char *method, const char *path, const char *query, const char *body,
                     size_t body_len, int64_t time_ms, mvcc_arena *a, v2_request *out,
                     v2_result *err);
/* etcd's message for an error code ("Key not found", ...). */
const char *v2_error_message(int code);
/* Renders the event or the error of res. */
void v2_render_result(jw *w, const v2_result *res);
/* RFC 3339 with fractional seconds trimmed, UTC ("2026-01-02T03:04:05.5Z"). */
void v2_format_time(int64_t unix_ms, char out[40]);

#endif
