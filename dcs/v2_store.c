/* etcd v2 store semantics (etcd server/etcdserver/api/v2store, as of 3.4): set, create,
 * update, compareAndSwap, delete, compareAndDelete, in-order create (POST), expire, get,
 * and the 1000-event history behind wait/waitIndex. */
#include "dcs/v2_store.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcs/mvcc_tree.h"
#include "dcs/store_cmd_buf.h"

typedef struct v2_node v2_node;
struct v2_node {
    char *key;        /* full clean path, "/" for the root */
    const char *name; /* last component, points into key */
    size_t name_len;
    bool dir;
    char *value;
    size_t value_len;
    uint64_t created, modified;
    int64_t expire_ms;
    uint8_t *exp_key; /* key in the expiry index: 8-byte BE time + path */
    size_t exp_key_len;
    v2_node *parent;
    mvcc_tree children; /* name -> v2_node */
};

/* A history entry: a flat copy of the event nodes (events never list children). */
typedef struct v2_flat {
    char *key;
    char *value; /* NULL: dir, or no value member (delete/expire) */
    size_t value_len;
    bool dir, present;
    uint64_t created, modified;
    int64_t expire_ms, ttl;
} v2_flat;

typedef struct v2_event {
    uint64_t index;
    int action; /* index into action_names */
    v2_flat node, prev;
} v2_event;

struct v2_store {
    v2_node *root;
    uint64_t index;
    size_t bytes, quota; /* accounted node bytes; mutations past quota fail (300) */
    mvcc_tree expiry;
    v2_event hist[V2_HISTORY];
    size_t hist_start, hist_n;
    v2_event_hook hook;
    void *hook_arg;
};

enum { A_GET, A_SET, A_CREATE, A_UPDATE, A_CAS, A_DELETE, A_CAD, A_EXPIRE };
static const char *const action_names[] = {
    "get", "set", "create", "update", "compareAndSwap", "delete", "compareAndDelete", "expire"};

/* ---- nodes ---- */

static v2_node *node_new(const char *key, size_t key_len, bool dir, uint64_t index, v2_node *parent)
{
    v2_node *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->key = malloc(key_len + 1);
    if (!n->key) {
        free(n);
        return NULL;
    }
    memcpy(n->key, key, key_len);
    n->key[key_len] = 0;
    const char *slash = strrchr(n->key, '/');
    n->name = slash ? slash + 1 : n->key;
    n->name_len = strlen(n->name);
    n->dir = dir;
    n->created = n->modified = index;
    n->parent = parent;
    mvcc_tree_init(&n->children);
    return n;
}

static void expiry_unset(v2_store *s, v2_node *n)
{
    if (n->exp_key) {
        mvcc_tree_remove(&s->expiry, n->exp_key, n->exp_key_len);
        free(n->exp_key);
        n->exp_key = NULL;
    }
    n->expire_ms = 0;
}

static int expiry_set(v2_store *s, v2_node *n, int64_t when)
{
    expiry_unset(s, n);
    if (!when)
        return 0;
    size_t kl = strlen(n->key);
    n->exp_key = malloc(8 + kl);
    if (!n->exp_key)
        return -1;
    uint64_t u = (uint64_t)when ^ 0x8000000000000000ULL;
    for (int i = 7; i >= 0; i--) {
        n->exp_key[i] = (uint8_t)u;
        u >>= 8;
    }
    memcpy(n->exp_key + 8, n->key, kl);
    n->exp_key_len = 8 + kl;
    n->expire_ms = when;
    if (mvcc_tree_insert(&s->expiry, n->exp_key, n->exp_key_len, n) != 0) {
        free(n->exp_key);
        n->exp_key = NULL;
        n->expire_ms = 0;
        return -1;
    }
    return 0;
}

/* Bytes a node costs against the quota (same on every member). */
static size_t node_cost(const v2_node *n)
{
    return strlen(n->key) + n->value_len + 128;
}

static void node_free(v2_store *s, v2_node *n)
{
    v2_node *c;
    while ((c = mvcc_tree_seek(&n->children, (const uint8_t *)"", 0, 0, NULL, NULL))) {
        mvcc_tree_remove(&n->children, (const uint8_t *)c->name, c->name_len);
        node_free(s, c);
    }
    expiry_unset(s, n);
    s->bytes -= s->bytes >= node_cost(n) ? node_cost(n) : s->bytes;
    free(n->value);
    free(n->key);
    free(n);
}

static void node_unlink(v2_node *n)
{
    if (n->parent)
        mvcc_tree_remove(&n->parent->children, (const uint8_t *)n->name, n->name_len);
}

static int64_t ttl_of(int64_t expire_ms, int64_t now_ms)
{
    if (!expire_ms)
        return 0;
    int64_t left = expire_ms - now_ms;
    if (left <= 0)
        return 0;
    return (left + 999) / 1000; /* etcd rounds a partial second up */
}

/* ---- history ---- */

static void flat_free(v2_flat *f)
{
    free(f->key);
    free(f->value);
    memset(f, 0, sizeof(*f));
}

static void hist_free(v2_store *s)
{
    for (size_t i = 0; i < s->hist_n; i++) {
        v2_event *e = &s->hist[(s->hist_start + i) % V2_HISTORY];
        flat_free(&e->node);
        flat_free(&e->prev);
    }
    s->hist_n = 0;
}

/* ---- store ---- */

v2_store *v2_store_new(void)
{
    v2_store *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->root = node_new("/", 1, true, 0, NULL);
    if (!s->root) {
        free(s);
        return NULL;
    }
    mvcc_tree_init(&s->expiry);
    return s;
}

void v2_store_free(v2_store *s)
{
    if (!s)
        return;
    node_free(s, s->root);
    mvcc_tree_clear(&s->expiry);
    hist_free(s);
    free(s);
}

uint64_t v2_store_index(const v2_store *s)
{
    return s->index;
}

void v2_store_set_quota(v2_store *s, size_t bytes)
{
    s->quota = bytes;
}

size_t v2_store_bytes(const v2_store *s)
{
    return s->bytes;
}

void v2_store_set_hook(v2_store *s, v2_event_hook hook, void *arg)
{
    s->hook = hook;
    s->hook_arg = arg;
}

int64_t v2_store_next_expiry(const v2_store *s)
{
    v2_node *n = mvcc_tree_seek(&s->expiry, (const uint8_t *)"", 0, 0, NULL, NULL);
    return n ? n->expire_ms : 0;
}

/* Go's path.Clean("/" + key) into an arena string. */
static char *clean_path(mvcc_arena *a, const char *key, size_t n)
{
    char *out = mvcc_arena_alloc(a, n + 2);
    if (!out)
        return NULL;
    size_t o = 0;
    out[o++] = '/';
    size_t i = 0;
    while (i < n) {
        while (i < n && key[i] == '/')
            i++;
        size_t st = i;
        while (i < n && key[i] != '/')
            i++;
        size_t len = i - st;
        if (len == 0 || (len == 1 && key[st] == '.'))
            continue;
        if (len == 2 && key[st] == '.' && key[st + 1] == '.') {
            if (o > 1) {
                o--;
                while (o > 1 && out[o - 1] != '/')
                    o--;
                if (o > 1)
                    o--;
            }
            continue;
        }
        if (o > 1)
            out[o++] = '/';
        memcpy(out + o, key + st, len);
        o += len;
    }
    out[o] = 0;
    return out;
}

/* Finds path; when missing, *missing_len (if given) is the length of the first path
 * prefix that does not exist (etcd names that prefix as the error cause). */
static v2_node *lookup_ex(v2_store *s, const char *path, size_t *missing_len)
{
    if (strcmp(path, "/") == 0)
        return s->root;
    v2_node *n = s->root;
    const char *p = path + 1;
    while (n && *p) {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        n = n->dir ? mvcc_tree_find(&n->children, (const uint8_t *)p, len) : NULL;
        p += len;
        if (!n && missing_len)
            *missing_len = (size_t)(p - path);
        if (*p == '/')
            p++;
    }
    return n;
}

static v2_node *lookup(v2_store *s, const char *path)
{
    return lookup_ex(s, path, NULL);
}

static int not_found(v2_store *s, v2_result *res, const char *path, mvcc_arena *a);

static const char *fmt(mvcc_arena *a, const char *f, ...) __attribute__((format(printf, 2, 3)));
static const char *fmt(mvcc_arena *a, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(NULL, 0, f, ap);
    va_end(ap);
    if (n < 0)
        return "";
    char *out = mvcc_arena_alloc(a, (size_t)n + 1);
    if (!out)
        return "";
    va_start(ap, f);
    vsnprintf(out, (size_t)n + 1, f, ap);
    va_end(ap);
    return out;
}

static int fail(v2_store *s, v2_result *res, int code, const char *cause)
{
    res->err = code;
    res->cause = cause;
    res->index = s->index;
    switch (code) {
    case V2_ERR_KEY_NOT_FOUND:
        res->http_status = 404;
        break;
    case V2_ERR_TEST_FAILED:
    case V2_ERR_NODE_EXIST:
        res->http_status = 412;
        break;
    case V2_ERR_RAFT_INTERNAL:
        res->http_status = 500;
        break;
    case V2_ERR_NOT_FILE:
    case V2_ERR_DIR_NOT_EMPTY:
        res->http_status = 403; /* etcd v2error errorStatus: everything else is 400 */
        break;
    default:
        res->http_status = 400;
    }
    return 0;
}

static int not_found(v2_store *s, v2_result *res, const char *path, mvcc_arena *a)
{
    size_t ml = strlen(path);
    lookup_ex(s, path, &ml);
    return fail(s, res, V2_ERR_KEY_NOT_FOUND, mvcc_arena_dup(a, path, ml));
}

static v2_node_out *out_node(mvcc_arena *a, const v2_node *n, int64_t now_ms)
{
    v2_node_out *o = mvcc_arena_alloc(a, sizeof(*o));
    if (!o)
        return NULL;
    o->key = n->key;
    o->dir = n->dir;
    if (!n->dir) {
        o->value = n->value ? n->value : "";
        o->value_len = n->value_len;
    }
    o->created_index = n->created;
    o->modified_index = n->modified;
    o->expiration_ms = n->expire_ms;
    o->ttl = ttl_of(n->expire_ms, now_ms);
    return o;
}

/* Copies the node into the arena (strings too: the event may outlive the node). */
static v2_node_out *out_copy(mvcc_arena *a, const v2_node *n, int64_t now_ms)
{
    v2_node_out *o = out_node(a, n, now_ms);
    if (!o)
        return NULL;
    o->key = mvcc_arena_dup(a, n->key, strlen(n->key));
    if (o->value)
        o->value = mvcc_arena_dup(a, o->value, o->value_len);
    return o;
}

static bool hidden(const v2_node *n)
{
    return n->name_len > 0 && n->name[0] == '_';
}

static int list_children(mvcc_arena *a, const v2_node *n, v2_node_out *o, bool recursive,
                         int64_t now_ms, int depth)
{
    size_t cnt = 0;
    for (v2_node *c = mvcc_tree_seek(&n->children, (const uint8_t *)"", 0, 0, NULL, NULL); c;
         c = mvcc_tree_seek(&n->children, (const uint8_t *)c->name, c->name_len, 1, NULL, NULL))
        if (!hidden(c))
            cnt++;
    if (!cnt)
        return 0;
    o->nodes = mvcc_arena_alloc(a, cnt * sizeof(*o->nodes));
    if (!o->nodes)
        return -1;
    size_t i = 0;
    for (v2_node *c = mvcc_tree_seek(&n->children, (const uint8_t *)"", 0, 0, NULL, NULL); c;
         c = mvcc_tree_seek(&n->children, (const uint8_t *)c->name, c->name_len, 1, NULL, NULL)) {
        if (hidden(c))
            continue;
        v2_node_out *co = out_node(a, c, now_ms);
        if (!co)
            return -1;
        o->nodes[i++] = *co;
        if (recursive && c->dir && depth < 64 &&
            list_children(a, c, &o->nodes[i - 1], true, now_ms, depth + 1))
            return -1;
    }
    o->nnodes = i;
    return 0;
}

static int flat_from(v2_flat *f, const v2_node_out *o)
{
    memset(f, 0, sizeof(*f));
    if (!o)
        return 0;
    f->present = true;
    f->key = strdup(o->key);
    if (!f->key)
        return -1;
    if (o->value) {
        f->value = malloc(o->value_len + 1);
        if (!f->value)
            return -1;
        memcpy(f->value, o->value, o->value_len);
        f->value[o->value_len] = 0;
        f->value_len = o->value_len;
    }
    f->dir = o->dir;
    f->created = o->created_index;
    f->modified = o->modified_index;
    f->expire_ms = o->expiration_ms;
    f->ttl = o->ttl;
    return 0;
}

static v2_node_out *flat_out(mvcc_arena *a, const v2_flat *f)
{
    if (!f->present)
        return NULL;
    v2_node_out *o = mvcc_arena_alloc(a, sizeof(*o));
    if (!o)
        return NULL;
    o->key = f->key;
    o->value = f->value;
    o->value_len = f->value_len;
    o->dir = f->dir;
    o->created_index = f->created;
    o->modified_index = f->modified;
    o->expiration_ms = f->expire_ms;
    o->ttl = f->ttl;
    return o;
}

/* Records the event of res (index = s->index) and tells the hook. */
static int record(v2_store *s, int action, v2_result *res, bool notify)
{
    v2_event *e;
    if (s->hist_n == V2_HISTORY) {
        e = &s->hist[s->hist_start];
        flat_free(&e->node);
        flat_free(&e->prev);
        s->hist_start = (s->hist_start + 1) % V2_HISTORY;
        s->hist_n--;
    }
    e = &s->hist[(s->hist_start + s->hist_n) % V2_HISTORY];
    e->index = s->index;
    e->action = action;
    if (flat_from(&e->node, res->node) || flat_from(&e->prev, res->prev_node)) {
        flat_free(&e->node);
        flat_free(&e->prev);
        return -1;
    }
    s->hist_n++;
    if (notify && s->hook)
        s->hook(s->hook_arg, res);
    return 0;
}

static void ok(v2_store *s, v2_result *res, int action, int status)
{
    res->err = 0;
    res->action = action_names[action];
    res->http_status = status;
    res->index = s->index;
}

/* Walks to (creating) the parent directory of path; NULL with res filled on error. */
static v2_node *make_parents(v2_store *s, const char *path, uint64_t index, v2_result *res,
                             mvcc_arena *a)
{
    v2_node *n = s->root;
    const char *p = path + 1;
    for (;;) {
        const char *e = strchr(p, '/');
        if (!e)
            return n;
        size_t len = (size_t)(e - p);
        v2_node *c = mvcc_tree_find(&n->children, (const uint8_t *)p, len);
        if (!c) {
            c = node_new(path, (size_t)(e - path), true, index, n);
            if (c)
                s->bytes += node_cost(c);
            if (!c || mvcc_tree_insert(&n->children, (const uint8_t *)c->name, c->name_len, c)) {
                if (c)
                    node_free(s, c);
                return NULL;
            }
        } else if (!c->dir) {
            fail(s, res, V2_ERR_NOT_DIR, mvcc_arena_dup(a, path, (size_t)(e - path)));
            return NULL;
        }
        n = c;
        p = e + 1;
    }
}

static int64_t expire_time(const v2_request *q)
{
    /* etcd: ttl given -> now + ttl (ttl 0 expires at the next expiry pass); none ->
     * permanent. */
    return q->has_ttl ? q->time_ms + q->ttl * 1000 : 0;
}

static int do_create(v2_store *s, const v2_request *q, const char *path, bool unique, bool replace,
                     int action, mvcc_arena *a, v2_result *res)
{
    uint64_t next = s->index + 1;
    if (unique) {
        const char *np = fmt(a, "%s/%020" PRIu64, strcmp(path, "/") ? path : "", next);
        path = np;
    }
    if (strcmp(path, "/") == 0)
        return fail(s, res, V2_ERR_ROOT_RONLY, "/");
    /* bounded memory: worst case every path component becomes a new directory */
    if (s->quota && s->bytes + 2 * strlen(path) + q->value_len + 1024 > s->quota)
        return fail(s, res, V2_ERR_RAFT_INTERNAL, "v2 store quota exceeded");
    v2_node *existing = lookup(s, path);
    v2_node_out *prev = NULL;
    if (existing) {
        if (!replace)
            return fail(s, res, V2_ERR_NODE_EXIST, path);
        if (existing->dir)
            return fail(s, res, V2_ERR_NOT_FILE, path);
        prev = out_copy(a, existing, q->time_ms);
        if (!prev)
            return -1;
    }
    res->err = 0;
    v2_node *parent = make_parents(s, path, next, res, a);
    if (!parent)
        return res->err ? 0 : -1;
    if (existing) {
        node_unlink(existing);
        node_free(s, existing);
    }
    v2_node *n = node_new(path, strlen(path), q->dir, next, parent);
    if (!n)
        return -1;
    s->bytes += node_cost(n) + (q->dir ? 0 : q->value_len);
    if (!q->dir && q->value_len) {
        n->value = malloc(q->value_len);
        if (!n->value) {
            node_free(s, n);
            return -1;
        }
        memcpy(n->value, q->value, q->value_len);
        n->value_len = q->value_len;
    }
    if (mvcc_tree_insert(&parent->children, (const uint8_t *)n->name, n->name_len, n) ||
        expiry_set(s, n, expire_time(q))) {
        node_unlink(n);
        node_free(s, n);
        return -1;
    }
    s->index = next;
    res->node = out_copy(a, n, q->time_ms);
    res->prev_node = prev;
    /* etcd answers 201 for a created node (create, or set without a previous node) */
    ok(s, res, action, action == A_CREATE || (action == A_SET && !prev) ? 201 : 200);
    return record(s, action, res, true);
}

static const char *cmp_cause(mvcc_arena *a, const v2_request *q, const v2_node *n, bool vbad,
                             bool ibad)
{
    const char *pv = mvcc_arena_dup(a, q->prev_value ? q->prev_value : "", q->prev_value_len);
    const char *nv = mvcc_arena_dup(a, n->value ? n->value : "", n->value_len);
    if (ibad && !vbad)
        return fmt(a, "[%" PRIu64 " != %" PRIu64 "]", q->prev_index, n->modified);
    if (vbad && !ibad)
        return fmt(a, "[%s != %s]", pv, nv);
    return fmt(a, "[%s != %s] [%" PRIu64 " != %" PRIu64 "]", pv, nv, q->prev_index, n->modified);
}

/* prevValue/prevIndex of compare-and-swap/-delete against node n: true if they hold;
 * otherwise res carries etcd's error (not a file, or test failed naming both sides). */
static bool compare_holds(v2_store *s, const v2_request *q, const v2_node *n, const char *path,
                          mvcc_arena *a, v2_result *res)
{
    if (n->dir) {
        fail(s, res, V2_ERR_NOT_FILE, path);
        return false;
    }
    bool vbad = q->has_prev_value && q->prev_value_len &&
                (q->prev_value_len != n->value_len ||
                 (n->value_len && memcmp(q->prev_value, n->value, n->value_len) != 0));
    bool ibad = q->prev_index && q->prev_index != n->modified;
    if (vbad || ibad) {
        fail(s, res, V2_ERR_TEST_FAILED, cmp_cause(a, q, n, vbad, ibad));
        return false;
    }
    return true;
}

static int do_update(v2_store *s, const v2_request *q, const char *path, bool cas, mvcc_arena *a,
                     v2_result *res)
{
    if (strcmp(path, "/") == 0)
        return fail(s, res, V2_ERR_ROOT_RONLY, "/");
    v2_node *n = lookup(s, path);
    if (!n)
        return not_found(s, res, path, a);
    if (cas) {
        if (!compare_holds(s, q, n, path, a, res))
            return 0; /* like fail(): the error is in res */
    } else if (n->dir && q->value_len) {
        return fail(s, res, V2_ERR_NOT_FILE, path);
    }
    if (s->quota && q->value_len > n->value_len &&
        s->bytes + (q->value_len - n->value_len) > s->quota)
        return fail(s, res, V2_ERR_RAFT_INTERNAL, "v2 store quota exceeded");
    v2_node_out *prev = out_copy(a, n, q->time_ms);
    if (!prev)
        return -1;
    uint64_t next = s->index + 1;
    if (!n->dir && !q->refresh) {
        char *v = NULL;
        if (q->value_len) {
            v = malloc(q->value_len);
            if (!v)
                return -1;
            memcpy(v, q->value, q->value_len);
        }
        free(n->value);
        s->bytes = s->bytes - n->value_len + q->value_len;
        n->value = v;
        n->value_len = q->value_len;
    }
    if (expiry_set(s, n, expire_time(q)))
        return -1;
    /* etcd's node.Write refuses directories silently: a dir keeps its modifiedIndex, while
     * the event still reports the new index */
    if (!n->dir)
        n->modified = next;
    s->index = next;
    res->node = out_copy(a, n, q->time_ms);
    if (res->node)
        res->node->modified_index = next;
    res->prev_node = prev;
    ok(s, res, cas ? A_CAS : A_UPDATE, 200);
    /* a refresh only moves the TTL: recorded, but watchers are not woken (etcd) */
    return record(s, cas ? A_CAS : A_UPDATE, res, !q->refresh);
}

static int remove_node(v2_store *s, v2_node *n, int action, int64_t now_ms, mvcc_arena *a,
                       v2_result *res)
{
    uint64_t next = s->index + 1;
    v2_node_out *prev = out_copy(a, n, now_ms);
    v2_node_out *node = mvcc_arena_alloc(a, sizeof(*node));
    if (!prev || !node)
        return -1;
    node->key = prev->key;
    node->dir = n->dir;
    node->created_index = n->created;
    node->modified_index = next;
    node_unlink(n);
    node_free(s, n);
    s->index = next;
    res->node = node;
    res->prev_node = prev;
    ok(s, res, action, 200);
    return record(s, action, res, true);
}

static int do_delete(v2_store *s, const v2_request *q, const char *path, mvcc_arena *a,
                     v2_result *res)
{
    if (strcmp(path, "/") == 0)
        return fail(s, res, V2_ERR_ROOT_RONLY, "/");
    v2_node *n = lookup(s, path);
    if (!n)
        return not_found(s, res, path, a);
    bool cad = q->prev_index || (q->has_prev_value && q->prev_value_len);
    if (cad) {
        if (!compare_holds(s, q, n, path, a, res))
            return 0; /* like fail(): the error is in res */
        return remove_node(s, n, A_CAD, q->time_ms, a, res);
    }
    bool dir = q->dir || q->recursive;
    if (n->dir) {
        if (!dir)
            return fail(s, res, V2_ERR_NOT_FILE, path);
        if (n->children.count && !q->recursive)
            return fail(s, res, V2_ERR_DIR_NOT_EMPTY, path);
    }
    return remove_node(s, n, A_DELETE, q->time_ms, a, res);
}

static int do_expire(v2_store *s, int64_t now_ms, mvcc_arena *a, v2_result *res)
{
    /* Every node whose time passed goes, each with its own index and "expire" event;
     * res describes the last one (the server only needs the events via the hook). */
    int rc = 0;
    ok(s, res, A_EXPIRE, 200);
    for (;;) {
        v2_node *n = mvcc_tree_seek(&s->expiry, (const uint8_t *)"", 0, 0, NULL, NULL);
        if (!n || n->expire_ms > now_ms)
            break;
        v2_result one;
        memset(&one, 0, sizeof(one));
        if (remove_node(s, n, A_EXPIRE, now_ms, a, &one))
            rc = -1;
        *res = one;
    }
    res->index = s->index;
    return rc;
}

int v2_store_apply(v2_store *s, const v2_request *q, mvcc_arena *a, v2_result *res)
{
    memset(res, 0, sizeof(*res));
    if (q->method == V2_EXPIRE)
        return do_expire(s, q->time_ms, a, res);
    char *path = clean_path(a, q->key ? q->key : "", q->key_len);
    if (!path)
        return -1;
    switch (q->method) {
    case V2_PUT:
        if (q->prev_exist == 1) {
            if (q->prev_index == 0 && !(q->has_prev_value && q->prev_value_len))
                return do_update(s, q, path, false, a, res);
            return do_update(s, q, path, true, a, res);
        }
        if (q->prev_exist == 0)
            return do_create(s, q, path, false, false, A_CREATE, a, res);
        if (q->prev_index || (q->has_prev_value && q->prev_value_len))
            return do_update(s, q, path, true, a, res);
        if (q->refresh)
            return do_update(s, q, path, false, a, res);
        return do_create(s, q, path, false, true, A_SET, a, res);
    case V2_POST:
        return do_create(s, q, path, true, false, A_CREATE, a, res);
    case V2_DELETE:
        return do_delete(s, q, path, a, res);
    default:
        return fail(s, res, V2_ERR_INVALID_FIELD, "method");
    }
}

bool v2_event_matches(const v2_result *ev, const char *key, bool recursive)
{
    if (!ev->node || !ev->node->key)
        return false;
    const char *ek = ev->node->key;
    size_t kl = strlen(key), el = strlen(ek);
    if (strcmp(ek, key) == 0)
        return true;
    if (recursive && (kl == 1 || (el > kl && strncmp(ek, key, kl) == 0 && ek[kl] == '/')))
        return true;
    /* removing a directory also ends watches on keys below it */
    bool removal =
        ev->action && (strcmp(ev->action, "delete") == 0 || strcmp(ev->action, "expire") == 0 ||
                       strcmp(ev->action, "compareAndDelete") == 0);
    return removal && ev->node->dir && kl > el && strncmp(key, ek, el) == 0 &&
           (el == 1 || key[el] == '/');
}

int v2_store_get(v2_store *s, const v2_request *q, int64_t now_ms, mvcc_arena *a, v2_result *res)
{
    memset(res, 0, sizeof(*res));
    char *path = clean_path(a, q->key ? q->key : "", q->key_len);
    if (!path)
        return -1;
    if (q->wait) {
        uint64_t since = q->wait_index ? q->wait_index : s->index + 1;
        uint64_t start = s->hist_n ? s->hist[s->hist_start].index : s->index + 1;
        res->index = s->index;
        if (s->hist_n && since < start)
            return fail(s, res, V2_ERR_EVENT_INDEX_CLEARED,
                        fmt(a, "the requested history has been cleared [%" PRIu64 "/%" PRIu64 "]",
                            start, since));
        for (size_t i = 0; i < s->hist_n; i++) {
            const v2_event *e = &s->hist[(s->hist_start + i) % V2_HISTORY];
            if (e->index < since)
                continue;
            v2_result ev = {0};
            ev.action = action_names[e->action];
            ev.node = flat_out(a, &e->node);
            ev.prev_node = flat_out(a, &e->prev);
            if (!ev.node)
                return -1;
            if (v2_event_matches(&ev, path, q->recursive)) {
                *res = ev;
                res->http_status = 200;
                res->index = s->index;
                return 0;
            }
        }
        res->pending = true;
        res->http_status = 200;
        return 0;
    }
    v2_node *n = lookup(s, path);
    if (!n)
        return not_found(s, res, path, a);
    v2_node_out *o = out_node(a, n, now_ms);
    if (!o)
        return -1;
    if (n == s->root)
        o->key = NULL; /* etcd renders the root without a key */
    if (n->dir && list_children(a, n, o, q->recursive, now_ms, 0))
        return -1;
    res->node = o;
    ok(s, res, A_GET, 200);
    return 0;
}

/* ---- snapshot ---- */

static void save_node(const v2_node *n, cmd_writer *w)
{
    cw_bytes(w, n->key, strlen(n->key));
    cw_u8(w, n->dir);
    cw_bytes(w, n->value, n->value_len);
    cw_uvar(w, n->created);
    cw_uvar(w, n->modified);
    cw_svar(w, n->expire_ms);
    cw_uvar(w, n->children.count);
    for (v2_node *c = mvcc_tree_seek(&n->children, (const uint8_t *)"", 0, 0, NULL, NULL); c;
         c = mvcc_tree_seek(&n->children, (const uint8_t *)c->name, c->name_len, 1, NULL, NULL))
        save_node(c, w);
}

static void save_flat(const v2_flat *f, cmd_writer *w)
{
    cw_u8(w, (uint8_t)(f->present | (f->dir << 1) | ((f->value != NULL) << 2)));
    if (!f->present)
        return;
    cw_bytes(w, f->key, strlen(f->key));
    cw_bytes(w, f->value, f->value_len);
    cw_uvar(w, f->created);
    cw_uvar(w, f->modified);
    cw_svar(w, f->expire_ms);
    cw_svar(w, f->ttl);
}

void v2_store_save(const v2_store *s, cmd_writer *w)
{
    cw_uvar(w, s->index);
    save_node(s->root, w);
    cw_uvar(w, s->hist_n);
    for (size_t i = 0; i < s->hist_n; i++) {
        const v2_event *e = &s->hist[(s->hist_start + i) % V2_HISTORY];
        cw_uvar(w, e->index);
        cw_u8(w, (uint8_t)e->action);
        save_flat(&e->node, w);
        save_flat(&e->prev, w);
    }
}

static bool valid_key(const uint8_t *k, size_t n)
{
    if (n == 0 || k[0] != '/' || memchr(k, 0, n))
        return false;
    return n == 1 || k[n - 1] != '/';
}

static v2_node *load_node(v2_store *s, cmd_reader *r, v2_node *parent, int depth)
{
    const uint8_t *key, *val;
    size_t kn, vn;
    cr_bytes(r, &key, &kn);
    uint8_t dir = cr_u8(r);
    cr_bytes(r, &val, &vn);
    uint64_t created = cr_uvar(r), modified = cr_uvar(r);
    int64_t exp = cr_svar(r);
    uint64_t nchild = cr_uvar(r);
    if (r->err || depth > 256 || !valid_key(key, kn) || dir > 1 || (dir && vn) ||
        nchild > cr_left(r) / 7 || (!dir && nchild) || modified > s->index || created > modified ||
        exp < 0)
        return NULL;
    v2_node *n = node_new((const char *)key, kn, dir, created, parent);
    if (!n)
        return NULL;
    n->modified = modified;
    s->bytes += node_cost(n) + vn;
    /* a child's key must be its parent's key plus one component */
    if (parent) {
        size_t pl = strlen(parent->key);
        size_t base = pl == 1 ? 1 : pl + 1;
        if (kn <= base || memcmp(key, parent->key, pl) != 0 || (pl > 1 && key[pl] != '/') ||
            memchr(key + base, '/', kn - base) ||
            mvcc_tree_insert(&parent->children, (const uint8_t *)n->name, n->name_len, n)) {
            node_free(s, n);
            return NULL;
        }
    } else if (kn != 1) {
        node_free(s, n);
        return NULL;
    }
    if (vn) {
        n->value = malloc(vn);
        if (!n->value)
            goto bad;
        memcpy(n->value, val, vn);
        n->value_len = vn;
    }
    if (exp && expiry_set(s, n, exp))
        goto bad;
    for (uint64_t i = 0; i < nchild; i++)
        if (!load_node(s, r, n, depth + 1))
            goto bad;
    return n;
bad:
    if (parent) {
        node_unlink(n);
    }
    node_free(s, n);
    return NULL;
}

static int load_flat(cmd_reader *r, v2_flat *f)
{
    memset(f, 0, sizeof(*f));
    uint8_t b = cr_u8(r);
    if (r->err || b > 7)
        return -1;
    if (!(b & 1))
        return b ? -1 : 0;
    const uint8_t *key, *val;
    size_t kn, vn;
    cr_bytes(r, &key, &kn);
    cr_bytes(r, &val, &vn);
    f->created = cr_uvar(r);
    f->modified = cr_uvar(r);
    f->expire_ms = cr_svar(r);
    f->ttl = cr_svar(r);
    if (r->err || !valid_key(key, kn) || ((b & 2) && vn))
        return -1;
    f->present = true;
    f->dir = b & 2;
    f->key = strndup((const char *)key, kn);
    if (!f->key)
        return -1;
    if (b & 4) {
        f->value = malloc(vn + 1);
        if (!f->value)
            return -1;
        if (vn)
            memcpy(f->value, val, vn);
        f->value[vn] = 0;
        f->value_len = vn;
    }
    return 0;
}

v2_store *v2_store_load(cmd_reader *r)
{
    v2_store *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    mvcc_tree_init(&s->expiry);
    s->index = cr_uvar(r);
    s->root = load_node(s, r, NULL, 0);
    if (!s->root) {
        free(s);
        return NULL;
    }
    uint64_t nh = cr_uvar(r);
    if (r->err || nh > V2_HISTORY)
        goto bad;
    uint64_t last = 0;
    for (uint64_t i = 0; i < nh; i++) {
        v2_event *e = &s->hist[i];
        e->index = cr_uvar(r);
        uint8_t act = cr_u8(r);
        int rc1 = load_flat(r, &e->node);
        s->hist_n = (size_t)i + 1; /* so hist_free releases this entry on failure */
        int rc2 = rc1 ? -1 : load_flat(r, &e->prev);
        if (r->err || rc1 || rc2 || act < A_SET || act > A_EXPIRE || !e->node.present ||
            e->index <= last || e->index > s->index)
            goto bad;
        e->action = act;
        last = e->index;
    }
    return s;
bad:
    v2_store_free(s);
    return NULL;
}
