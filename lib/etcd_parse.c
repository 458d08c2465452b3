/* Pure parts of the etcd v3 JSON client (no I/O): response parsing per contracts §2.1,
 * the watch stream splitter, prefix range ends. Separate so tests and the fuzzer link them
 * without the HTTP client. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "etcd_client.h"
#include "etcd_parse_internal.h"

int64_t etcd_get_i64(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    if (json_is_string(v)) {
        /* uint64 IDs above INT64_MAX would wrap; etcd lease IDs are positive int64. */
        return (int64_t)strtoull(json_string_value(v), NULL, 10);
    }
    return 0;
}

/* Decodes base64 field into a new NUL-terminated buffer. */
static char *unb64(const json_t *o, const char *key, size_t *len)
{
    json_t *v = json_object_get(o, key);
    const char *s = json_is_string(v) ? json_string_value(v) : "";
    size_t sl = strlen(s);
    char *out = malloc(sl / 4 * 3 + 4);
    if (!out)
        return NULL;
    long n = base64_decode(s, sl, out);
    if (n < 0) {
        free(out);
        return NULL;
    }
    out[n] = '\0';
    *len = (size_t)n;
    return out;
}

int etcd_parse_kv(const json_t *o, etcd_kv *kv)
{
    memset(kv, 0, sizeof(*kv));
    kv->key = unb64(o, "key", &kv->key_len);
    kv->value = unb64(o, "value", &kv->value_len);
    if (!kv->key || !kv->value) {
        free(kv->key);
        free(kv->value);
        kv->key = kv->value = NULL;
        return -1;
    }
    kv->create_revision = etcd_get_i64(o, "create_revision");
    kv->mod_revision = etcd_get_i64(o, "mod_revision");
    kv->version = etcd_get_i64(o, "version");
    kv->lease = etcd_get_i64(o, "lease");
    return 0;
}

void etcd_result_clear(etcd_result *res)
{
    etcd_kv *kvs = (etcd_kv *)res->kvs;
    for (size_t i = 0; i < res->nkvs; i++) {
        free(kvs[i].key);
        free(kvs[i].value);
    }
    free(kvs);
    res->kvs = NULL;
    res->nkvs = 0;
}

int etcd_parse_response(const char *body, size_t len, int http_status, etcd_result *res,
                        char *errbuf, size_t errsz)
{
    memset(res, 0, sizeof(*res));
    json_error_t jerr;
    /* Keepalive answers {"result":{...}} and may carry more objects: take the first. */
    json_t *root = json_loadb(body, len, JSON_DISABLE_EOF_CHECK, &jerr);
    if (!json_is_object(root)) {
        snprintf(errbuf, errsz, "HTTP %d, unparsable etcd response: %.100s", http_status,
                 jerr.text);
        json_decref(root);
        res->error = errbuf;
        return -1;
    }
    json_t *o = root;
    json_t *result = json_object_get(root, "result");
    if (json_is_object(result))
        o = result;
    json_t *error = json_object_get(root, "error");
    if (http_status >= 400 || error) {
        const char *msg = NULL;
        json_t *m = json_object_get(root, "message");
        if (json_is_string(m))
            msg = json_string_value(m);
        else if (json_is_string(error))
            msg = json_string_value(error);
        else if (json_is_object(error) && json_is_string(json_object_get(error, "message")))
            msg = json_string_value(json_object_get(error, "message"));
        res->grpc_code = (int)etcd_get_i64(root, "code");
        if (!res->grpc_code && json_is_object(error))
            res->grpc_code = (int)etcd_get_i64(error, "grpc_code");
        snprintf(errbuf, errsz, "HTTP %d: %.200s", http_status, msg ? msg : "etcd error");
        res->error = errbuf;
        json_decref(root);
        return -1;
    }
    json_t *header = json_object_get(o, "header");
    res->revision = etcd_get_i64(header, "revision");
    res->succeeded = json_is_true(json_object_get(o, "succeeded"));
    res->lease_id = etcd_get_i64(o, "ID");
    res->ttl = etcd_get_i64(o, "TTL");
    json_t *responses = json_object_get(o, "responses");
    size_t i;
    json_t *r;
    json_array_foreach(responses, i, r)
    {
        json_t *nested = json_object_get(r, "response_txn");
        if (json_is_object(nested) && json_is_true(json_object_get(nested, "succeeded")))
            res->succeeded = 1;
    }
    json_t *kvs = json_object_get(o, "kvs");
    if (json_is_array(kvs) && json_array_size(kvs) > 0) {
        etcd_kv *arr = calloc(json_array_size(kvs), sizeof(etcd_kv));
        if (!arr) {
            json_decref(root);
            snprintf(errbuf, errsz, "out of memory");
            res->error = errbuf;
            return -1;
        }
        json_t *kv;
        json_array_foreach(kvs, i, kv)
        {
            if (etcd_parse_kv(kv, &arr[res->nkvs]) == 0)
                res->nkvs++;
        }
        res->kvs = arr;
    }
    res->ok = 1;
    json_decref(root);
    return 0;
}

void etcd_prefix_end(const char *prefix, size_t len, char *out)
{
    memcpy(out, prefix, len);
    /* etcd: increment the last byte that is not 0xff, dropping what follows. */
    for (size_t i = len; i-- > 0;) {
        if ((unsigned char)out[i] != 0xff) {
            out[i] = (char)((unsigned char)out[i] + 1);
            return;
        }
        out[i] = '\0';
    }
}

void etcd_splitter_init(etcd_json_splitter *s, size_t max_object)
{
    memset(s, 0, sizeof(*s));
    s->max = max_object;
}

void etcd_splitter_free(etcd_json_splitter *s)
{
    free(s->buf);
    s->buf = NULL;
}

int etcd_splitter_feed(etcd_json_splitter *s, const char *data, size_t len,
                       int (*cb)(const char *obj, size_t len, void *arg), void *arg)
{
    for (size_t i = 0; i < len; i++) {
        char ch = data[i];
        if (s->depth == 0 && s->len == 0) {
            if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t')
                continue;
            if (ch != '{')
                return -1;
        }
        if (s->len + 1 >= s->cap) {
            if (s->len + 1 >= s->max)
                return -1;
            size_t ncap = s->cap ? s->cap * 2 : 4096;
            if (ncap > s->max)
                ncap = s->max;
            char *nb = realloc(s->buf, ncap);
            if (!nb)
                return -1;
            s->buf = nb;
            s->cap = ncap;
        }
        s->buf[s->len++] = ch;
        if (s->in_str) {
            if (s->esc)
                s->esc = 0;
            else if (ch == '\\')
                s->esc = 1;
            else if (ch == '"')
                s->in_str = 0;
            continue;
        }
        if (ch == '"') {
            s->in_str = 1;
        } else if (ch == '{' || ch == '[') {
            s->depth++;
        } else if (ch == '}' || ch == ']') {
            if (--s->depth < 0)
                return -1;
            if (s->depth == 0) {
                s->buf[s->len] = '\0';
                size_t l = s->len;
                s->len = 0;
                if (cb(s->buf, l, arg) != 0)
                    return -1;
            }
        }
    }
    return 0;
}
