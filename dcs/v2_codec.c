/* etcd v2 keys request parsing and response rendering. */
#include "dcs/v2_codec.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *v2_error_message(int code)
{
    switch (code) {
    case 100:
        return "Key not found";
    case 101:
        return "Compare failed";
    case 102:
        return "Not a file";
    case 104:
        return "Not a directory";
    case 105:
        return "Key already exists";
    case 107:
        return "Root is read only";
    case 108:
        return "Directory not empty";
    case 200:
        return "Value is Required in POST form";
    case 201:
        return "PrevValue is Required in POST form";
    case 202:
        return "The given TTL in POST form is not a number";
    case 203:
        return "The given index in POST form is not a number";
    case 209:
        return "Invalid field";
    case 210:
        return "Invalid POST form";
    case 211:
        return "Value provided on refresh";
    case 212:
        return "A TTL must be provided on refresh";
    case 300:
        return "Raft Internal Error";
    case 301:
        return "During Leader Election";
    case 400:
        return "watcher is cleared due to etcd recovery";
    case 401:
        return "The event in requested index is outdated and cleared";
    default:
        return "Unknown error";
    }
}

/* ---- form fields ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes application/x-www-form-urlencoded text into the arena; -1 if malformed. */
static int form_decode(mvcc_arena *a, const char *s, size_t n, char **out, size_t *outn)
{
    char *d = mvcc_arena_alloc(a, n + 1);
    if (!d)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            d[o++] = ' ';
        } else if (s[i] == '%') {
            if (i + 2 >= n)
                return -1;
            int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
            if (h < 0 || l < 0)
                return -1;
            d[o++] = (char)(h * 16 + l);
            i += 2;
        } else {
            d[o++] = s[i];
        }
    }
    d[o] = 0;
    *out = d;
    *outn = o;
    return 0;
}

/* First value of field `name` in body (preferred) or query. 1 found, 0 absent, -1 bad. */
static int form_get(mvcc_arena *a, const char *body, size_t blen, const char *query,
                    const char *name, char **val, size_t *vlen)
{
    const char *srcs[2] = {body, query};
    size_t lens[2] = {body ? blen : 0, query ? strlen(query) : 0};
    size_t nl = strlen(name);
    for (int s = 0; s < 2; s++) {
        const char *p = srcs[s];
        size_t n = lens[s];
        size_t i = 0;
        while (p && i < n) {
            size_t j = i;
            while (j < n && p[j] != '&' && p[j] != ';')
                j++;
            const char *eq = memchr(p + i, '=', j - i);
            size_t klen = eq ? (size_t)(eq - (p + i)) : j - i;
            char *k;
            size_t kn;
            if (form_decode(a, p + i, klen, &k, &kn))
                return -1;
            if (kn == nl && memcmp(k, name, nl) == 0) {
                if (!eq) {
                    *val = "";
                    *vlen = 0;
                    return 1;
                }
                return form_decode(a, eq + 1, (size_t)(p + j - (eq + 1)), val, vlen) ? -1 : 1;
            }
            i = j + 1;
        }
    }
    return 0;
}

/* strconv.ParseBool */
static int parse_bool(const char *s, bool *out)
{
    static const char *const t[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const f[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (int i = 0; i < 6; i++) {
        if (strcmp(s, t[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcmp(s, f[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

static int parse_u64(const char *s, uint64_t *out)
{
    if (!*s || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno)
        return -1;
    *out = v;
    return 0;
}

static int req_err(v2_result *err, int code, const char *cause)
{
    memset(err, 0, sizeof(*err));
    err->err = code;
    err->cause = cause;
    err->http_status = 400;
    err->index = 0; /* etcd's request errors carry index 0 */
    return -1;
}

static int get_bool_field(mvcc_arena *a, const char *body, size_t blen, const char *query,
                          const char *name, bool *out, const char *cause, v2_result *err)
{
    char *v;
    size_t vl;
    int rc = form_get(a, body, blen, query, name, &v, &vl);
    *out = false;
    if (rc < 0)
        return req_err(err, 210, "invalid form");
    if (rc == 1 && parse_bool(v, out))
        return req_err(err, 209, cause);
    return 0;
}

int v2_parse_request(const char *method, const char *path, const char *query, const char *body,
                     size_t body_len, int64_t time_ms, mvcc_arena *a, v2_request *out,
                     v2_result *err)
{
    memset(out, 0, sizeof(*out));
    out->prev_exist = -1;
    out->time_ms = time_ms;
    if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)
        out->method = V2_GET;
    else if (strcmp(method, "PUT") == 0)
        out->method = V2_PUT;
    else if (strcmp(method, "POST") == 0)
        out->method = V2_POST;
    else if (strcmp(method, "DELETE") == 0)
        out->method = V2_DELETE;
    else {
        req_err(err, 0, "");
        err->http_status = 405;
        return -1;
    }
    if (strncmp(path, "/v2/keys", 8) != 0)
        return req_err(err, 209, "path");
    out->key = path + 8;
    out->key_len = strlen(out->key); /* a %00 in the path ends the key here, never inside */
    /* a form body counts only for PUT/POST, as Go's ParseForm */
    if (out->method != V2_PUT && out->method != V2_POST) {
        body = NULL;
        body_len = 0;
    }
    char *v;
    size_t vl;
    int rc;
    if ((rc = form_get(a, body, body_len, query, "prevIndex", &v, &vl)) < 0)
        return req_err(err, 210, "invalid form");
    if (rc == 1 && parse_u64(v, &out->prev_index))
        return req_err(err, 203, "invalid value for \"prevIndex\"");
    if ((rc = form_get(a, body, body_len, query, "waitIndex", &v, &vl)) < 0)
        return req_err(err, 210, "invalid form");
    if (rc == 1 && parse_u64(v, &out->wait_index))
        return req_err(err, 203, "invalid value for \"waitIndex\"");
    bool quorum, stream;
    if (get_bool_field(a, body, body_len, query, "recursive", &out->recursive,
                       "invalid value for \"recursive\"", err) ||
        get_bool_field(a, body, body_len, query, "sorted", &out->sorted,
                       "invalid value for \"sorted\"", err) ||
        get_bool_field(a, body, body_len, query, "wait", &out->wait, "invalid value for \"wait\"",
                       err) ||
        get_bool_field(a, body, body_len, query, "dir", &out->dir, "invalid value for \"dir\"",
                       err) ||
        get_bool_field(a, body, body_len, query, "quorum", &quorum, "invalid value for \"quorum\"",
                       err) ||
        get_bool_field(a, body, body_len, query, "stream", &stream, "invalid value for \"stream\"",
                       err))
        return -1;
    if (out->wait && out->method != V2_GET)
        return req_err(err, 209, "\"wait\" can only be used with GET requests");
    if ((rc = form_get(a, body, body_len, query, "prevValue", &v, &vl)) < 0)
        return req_err(err, 210, "invalid form");
    if (rc == 1) {
        if (vl == 0)
            return req_err(err, 201, "\"prevValue\" cannot be empty");
        out->prev_value = v;
        out->prev_value_len = vl;
        out->has_prev_value = true;
    }
    if ((rc = form_get(a, body, body_len, query, "ttl", &v, &vl)) < 0)
        return req_err(err, 210, "invalid form");
    if (rc == 1 && vl > 0) {
        uint64_t ttl;
        if (parse_u64(v, &ttl) || ttl > (uint64_t)V2_MAX_TTL)
            return req_err(err, 202, "invalid value for \"ttl\"");
        out->ttl = (int64_t)ttl;
        out->has_ttl = true;
    }
    if ((rc = form_get(a, body, body_len, query, "prevExist", &v, &vl)) < 0)
        return req_err(err, 210, "invalid form");
    if (rc == 1) {
        bool pe;
        if (parse_bool(v, &pe))
            return req_err(err, 209, "invalid value for prevExist");
        out->prev_exist = pe;
    }
    int has_value = form_get(a, body, body_len, query, "value", &v, &vl);
    if (has_value < 0)
        return req_err(err, 210, "invalid form");
    if (has_value == 1) {
        out->value = v;
        out->value_len = vl;
    }
    if ((rc = form_get(a, body, body_len, query, "refresh", &v, &vl)) < 0)
        return req_err(err, 210, "invalid form");
    if (rc == 1) {
        bool r;
        if (parse_bool(v, &r))
            return req_err(err, 209, "invalid value for refresh");
        out->refresh = r;
        if (r && has_value == 1 && out->value_len)
            return req_err(err, 211, "A value was provided on a refresh");
        if (r && !out->has_ttl)
            return req_err(err, 212, "No TTL value set");
    }
    return 0;
}

/* ---- rendering ---- */

void v2_format_time(int64_t unix_ms, char out[40])
{
    time_t secs = (time_t)(unix_ms >= 0 ? unix_ms / 1000 : (unix_ms - 999) / 1000);
    int ms = (int)(unix_ms - (int64_t)secs * 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    if (ms) {
        char frac[8];
        snprintf(frac, sizeof(frac), ".%03d", ms);
        size_t fl = strlen(frac);
        while (fl > 1 && frac[fl - 1] == '0')
            frac[--fl] = 0;
        memcpy(out + n, frac, fl + 1);
        n += fl;
    }
    out[n++] = 'Z';
    out[n] = 0;
}

static void node(jw *w, const v2_node_out *n)
{
    jw_obj(w);
    if (n->key && *n->key && strcmp(n->key, "/") != 0) {
        jw_key(w, "key");
        jw_cstr(w, n->key);
    }
    if (n->dir) {
        jw_key(w, "dir");
        jw_bool(w, true);
    }
    if (n->value) {
        jw_key(w, "value");
        jw_str(w, n->value, n->value_len);
    }
    if (n->nnodes) {
        jw_key(w, "nodes");
        jw_arr(w);
        for (size_t i = 0; i < n->nnodes; i++)
            node(w, &n->nodes[i]);
        jw_arr_end(w);
    }
    if (n->expiration_ms) {
        char t[40];
        v2_format_time(n->expiration_ms, t);
        jw_key(w, "expiration");
        jw_cstr(w, t);
        if (n->ttl) {
            jw_key(w, "ttl");
            jw_i64(w, n->ttl);
        }
    }
    if (n->modified_index) {
        jw_key(w, "modifiedIndex");
        jw_u64(w, n->modified_index);
    }
    if (n->created_index) {
        jw_key(w, "createdIndex");
        jw_u64(w, n->created_index);
    }
    jw_obj_end(w);
}

void v2_render_result(jw *w, const v2_result *r)
{
    jw_obj(w);
    if (r->err) {
        jw_key(w, "errorCode");
        jw_i64(w, r->err);
        jw_key(w, "message");
        jw_cstr(w, v2_error_message(r->err));
        if (r->cause && *r->cause) {
            jw_key(w, "cause");
            jw_cstr(w, r->cause);
        }
        jw_key(w, "index");
        jw_u64(w, r->index);
    } else {
        jw_key(w, "action");
        jw_cstr(w, r->action ? r->action : "");
        if (r->node) {
            jw_key(w, "node");
            node(w, r->node);
        }
        if (r->prev_node) {
            jw_key(w, "prevNode");
            node(w, r->prev_node);
        }
    }
    jw_obj_end(w);
}
