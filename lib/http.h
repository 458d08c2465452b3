/* HTTP/1.1 for the daemons: a strict, bounded, incremental request parser (pure, fuzzed)
 * and a server on lib/evloop. Used by the DCS gateway (2379), the agent's REST API (8008)
 * and the router's stats page (8404).
 *
 * Contract:
 * - One response per request, in order. A handler may answer at once or later (after a
 *   Raft commit, a DCS read...); the connection reads no further request until the
 *   current one is answered. http_conn_on_close() tells a deferred answerer that the
 *   client is gone (the conn pointer is invalid after that callback).
 * - HEAD: the server sends status line and headers (with the Content-Length the body
 *   would have) and drops the body, so handlers treat HEAD like GET.
 * - Limits (header bytes, body bytes, header/idle timeouts, connection count) are
 *   enforced before the handler sees anything; violations answer 400/408/413/431/501/505
 *   and close. A slow or garbage client cannot stall the loop or other clients. */
#ifndef APPLIANCE_HTTP_H
#define APPLIANCE_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "evloop.h"

#define HTTP_MAX_HEADERS 64
/* Room for the percent-decoded path (with its NUL); a longer path is answered 414. The
 * decoded path needs storage of its own because target must stay raw and the query follows
 * the path in the buffer. */
#define HTTP_MAX_PATH 2048

typedef struct http_header {
    const char *name; /* as received; compare case-insensitively */
    const char *value;
} http_header;

typedef struct http_request {
    const char *method; /* "GET", "POST", ... as received (methods are case-sensitive) */
    const char *target; /* raw request-target, e.g. "/v2/keys/a?recursive=true" */
    const char *path;   /* percent-decoded path, without the query */
    const char *query;  /* raw query after '?', "" when none */
    int version_minor;  /* HTTP/1.0 -> 0, HTTP/1.1 -> 1 */
    http_header headers[HTTP_MAX_HEADERS];
    size_t nheaders;
    const char *body; /* de-chunked if chunked; NUL-terminated; body_len excludes the NUL */
    size_t body_len;
    int keep_alive;
    char path_buf[HTTP_MAX_PATH]; /* storage behind `path`; use `path` */
} http_request;

typedef struct http_limits {
    size_t max_header_bytes;    /* request line + headers; default 8192 */
    size_t max_body_bytes;      /* default 1 MiB */
    uint32_t header_timeout_ms; /* whole request must arrive within; default 10000 */
    uint32_t idle_timeout_ms;   /* keep-alive idle; default 60000 */
    uint32_t max_connections;   /* further accepts are closed at once; default 1024 */
    size_t max_output_bytes;    /* queued response bytes per conn (slow readers); 4 MiB */
} http_limits;

/* Fills the defaults above. */
void http_limits_default(http_limits *lim);

/* ---- parser (pure; no I/O) ---- */
enum http_parse_result { HTTP_PARSE_DONE, HTTP_PARSE_MORE, HTTP_PARSE_ERROR };

/* Parses one request from buf[0..len). The parser writes NUL terminators into buf, so the
 * strings in *req point into buf. DONE: *consumed = bytes of this request (pipelined data
 * may follow). MORE: call again with more data (same buf prefix). ERROR: *error_status is
 * the HTTP status to answer (400, 413, 431, 501, 505, and 414 for a decoded path longer
 * than HTTP_MAX_PATH - 1).
 * The parser only writes into buf when it returns DONE (a MORE leaves buf untouched), and
 * the verdict on a prefix never changes when more bytes follow: the first non-MORE answer
 * on a growing buffer equals the answer on the whole input.
 * Strictness: lines end in CRLF; at most one Host (a missing one is tolerated, as Patroni
 * did); Transfer-Encoding must be exactly "chunked" (else 501; twice, with Content-Length,
 * or in HTTP/1.0: 400); a chunked body may use at most 2 * max_body_bytes + 64 KiB on the
 * wire (else 413). */
enum http_parse_result http_parse_request(char *buf, size_t len, const http_limits *lim,
                                          http_request *req, size_t *consumed, int *error_status);

/* Same, and on ERROR *reason (if not NULL) names what was wrong, e.g. "whitespace between
 * header field name and colon" (a static string; never echoes request bytes). */
enum http_parse_result http_parse_request_ex(char *buf, size_t len, const http_limits *lim,
                                             http_request *req, size_t *consumed, int *error_status,
                                             const char **reason);

/* Resume point for one request arriving in pieces: zero it when a new request starts
 * and pass it to every call on that request's growing buffer. A chunked body is then
 * scanned once overall instead of from its start on every call (which is quadratic for a
 * slow upload of small chunks). Results are identical with or without it. */
typedef struct http_parse_resume {
    size_t head_end, chunk_pos, chunk_total;
} http_parse_resume;
enum http_parse_result http_parse_request_r(char *buf, size_t len, const http_limits *lim,
                                            http_request *req, size_t *consumed, int *error_status,
                                            const char **reason, http_parse_resume *resume);

/* Case-insensitive header lookup; NULL when absent. */
const char *http_request_header(const http_request *req, const char *name);
/* Percent-decodes query parameter `name` into out. Returns its length, -1 when absent,
 * -2 when it does not fit or is malformed. A parameter without '=' decodes as "". */
int http_query_param(const http_request *req, const char *name, char *out, size_t outsz);
/* Same for an application/x-www-form-urlencoded string such as a POST/PUT body ("a=1&b=2",
 * '+' is a space), e.g. etcd v2's "value=...&ttl=...". data[0..len) need not end in NUL. */
int http_form_param(const char *data, size_t len, const char *name, char *out, size_t outsz);

/* Reason phrase for a status code ("OK", "Service Unavailable", ...). */
const char *http_status_reason(int status);

/* ---- server ---- */
typedef struct http_server http_server;
typedef struct http_conn http_conn;
typedef void (*http_handler)(http_conn *conn, const http_request *req, void *arg);

http_server *http_server_new(evloop *loop, const http_limits *lim, http_handler handler, void *arg);
/* Binds and listens (SO_REUSEADDR). host: numeric IPv4/IPv6 or a name; port: "8008".
 * May be called several times for several addresses. 0, or -1 with errno. */
int http_server_listen(http_server *srv, const char *host, const char *port);
/* Serves an already connected, non-blocking stream socket (socketpair, inherited socket)
 * as if accepted; the server owns fd from now on (closed on failure too). 0, or -1 with
 * errno (EMFILE when max_connections is reached). */
int http_server_adopt(http_server *srv, int fd, const char *peer);
/* Port of the most recently bound listener (useful after listening on port "0"); -1 if none. */
int http_server_bound_port(const http_server *srv);
/* Closes listeners and every connection (on_close callbacks run). Not from a handler. */
void http_server_free(http_server *srv);

/* Answer with a complete body. extra_headers: NULL or "Name: value\r\n" lines; the
 * server owns framing, so Content-Length/Transfer-Encoding there (or malformed lines, or a
 * status outside 200..599) are answered 500 and logged; "Connection: close" there closes
 * the connection after this answer. The request passed to the handler, and its strings,
 * stay valid until the answer is complete (http_respond or http_stream_end); the next
 * pipelined request is only read after that. After the connection is closed (on_close has
 * run, or a stream write returned -1) the conn pointer must not be used again. A client
 * that closes its sending side while its request is unanswered counts as gone. */
void http_respond(http_conn *c, int status, const char *content_type, const void *body, size_t len);
void http_respond_ex(http_conn *c, int status, const char *extra_headers, const char *content_type,
                     const void *body, size_t len);

/* Streaming (chunked) answer, e.g. an etcd watch. write returns -1 when the client is
 * gone or its unread output exceeds max_output_bytes (the stream is then closed). */
int http_stream_begin(http_conn *c, int status, const char *content_type);
int http_stream_write(http_conn *c, const void *data, size_t len);
void http_stream_end(http_conn *c);

void http_conn_on_close(http_conn *c, void (*cb)(http_conn *c, void *arg), void *arg);
/* "127.0.0.1:41234", for logs. */
const char *http_conn_peer(const http_conn *c);

#endif
