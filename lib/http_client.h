/* Asynchronous HTTP client on lib/evloop, built on libcurl's multi interface (socket
 * callbacks registered with the loop; no threads, no blocking). Used by the agent (etcd v3
 * JSON, other agents' REST API), the router (health checks, DCS watch) and appliancectl.
 *
 * Every request has a timeout; bodies kept in memory are bounded. The done callback runs
 * exactly once per request unless the request was cancelled first. A request handle is
 * valid until its done callback starts or it is cancelled. Starting requests, cancelling
 * and http_client_free are allowed from inside done and on_data callbacks. Proxy
 * environment variables are ignored; "Expect: 100-continue" is never sent. Free the
 * client before its loop. */
#ifndef APPLIANCE_HTTP_CLIENT_H
#define APPLIANCE_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "evloop.h"

typedef struct http_client http_client;
typedef struct http_client_req http_client_req;

typedef struct http_client_result {
    int status;        /* HTTP status; 0 on transport failure or timeout */
    const char *error; /* transport error text when status == 0, else NULL */
    const char *body;  /* NUL-terminated (empty when streamed) */
    size_t body_len;
    double total_seconds;
    /* Header lines of the final response, "Name: value\r\n" each (no status line), ""
     * when none; at most 16 KiB are kept. Read them with http_client_result_header. */
    const char *headers;
    size_t headers_len;
} http_client_result;

typedef void (*http_client_done_cb)(const http_client_result *res, void *arg);
/* Streaming body data (e.g. an etcd watch). Return 0 to continue, -1 to abort. */
typedef int (*http_client_data_cb)(const char *data, size_t len, void *arg);

typedef struct http_client_opts {
    const char *method;         /* "GET" when NULL */
    const char *const *headers; /* NULL-terminated "Name: value" list, or NULL */
    const void *body;
    size_t body_len;
    uint32_t timeout_ms;         /* whole request; 0 = none (streams only) */
    uint32_t connect_timeout_ms; /* default 1000 */
    size_t max_body_bytes;       /* buffered body bound; default 4 MiB */
    http_client_data_cb on_data; /* stream instead of buffering */
} http_client_opts;

http_client *http_client_new(evloop *loop);
/* Cancels outstanding requests (their done callbacks do not run). */
void http_client_free(http_client *c);

/* Starts a request; NULL only on allocation/setup failure. */
http_client_req *http_client_request(http_client *c, const char *url, const http_client_opts *opts,
                                     http_client_done_cb done, void *arg);
/* Value of response header `name` (case-insensitive, first occurrence, surrounding
 * whitespace trimmed) into out. Returns its length, -1 when absent, -2 when it does not
 * fit. Valid inside the done callback. */
int http_client_result_header(const http_client_result *res, const char *name, char *out,
                              size_t outsz);

/* Aborts a pending request; its done callback does not run. */
void http_client_cancel(http_client *c, http_client_req *req);

#endif
