/* Synchronous wrapper around lib/http_client for a command-line tool. */
#include "ctl/rest_call.h"

#include <stdlib.h>
#include <string.h>

#include "evloop.h"
#include "http_client.h"

typedef struct call_state {
    evloop *loop;
    ctl_response *out;
    int done;
} call_state;

static void on_done(const http_client_result *res, void *arg)
{
    call_state *st = arg;
    st->out->status = res->status;
    const char *text = res->status ? res->body : (res->error ? res->error : "request failed");
    st->out->body = strdup(text ? text : "");
    st->done = 1;
    evloop_stop(st->loop);
}

int ctl_call(const char *method, const char *url, const char *body, const char *auth,
             unsigned timeout_ms, ctl_response *out)
{
    memset(out, 0, sizeof(*out));
    evloop *loop = evloop_new();
    http_client *c = loop ? http_client_new(loop) : NULL;
    if (!c) {
        out->body = strdup("out of memory");
        if (loop)
            evloop_free(loop);
        return -1;
    }
    const char *hdrs[] = {"Content-Type: application/json", auth && auth[0] ? auth : NULL, NULL};
    http_client_opts o = {.method = method,
                          .headers = hdrs,
                          .body = body,
                          .body_len = body ? strlen(body) : 0,
                          .timeout_ms = timeout_ms,
                          .connect_timeout_ms = 2000};
    call_state st = {.loop = loop, .out = out};
    if (!http_client_request(c, url, &o, on_done, &st)) {
        out->body = strdup("cannot start the request");
    } else {
        while (!st.done)
            if (evloop_run(loop) != 0)
                break;
    }
    http_client_free(c);
    evloop_free(loop);
    return out->status ? 0 : -1;
}
