/* AVL tree with recursive insert/delete (depth is bounded by 1.44 log2 n, so recursion is
 * shallow: under 64 frames for any count that fits in memory). */
#include "dcs/mvcc_tree.h"

#include <stdlib.h>
#include <string.h>

struct mvcc_tree_node {
    mvcc_tree_node *l, *r;
    const uint8_t *key;
    size_t n;
    void *item;
    int h;
};

int mvcc_key_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    size_t m = an < bn ? an : bn;
    int c = m ? memcmp(a, b, m) : 0;
    if (c)
        return c;
    return an < bn ? -1 : an > bn ? 1 : 0;
}

void mvcc_tree_init(mvcc_tree *t)
{
    t->root = NULL;
    t->count = 0;
}

static void free_nodes(mvcc_tree_node *x)
{
    while (x) {
        free_nodes(x->l);
        mvcc_tree_node *r = x->r;
        free(x);
        x = r;
    }
}

void mvcc_tree_clear(mvcc_tree *t)
{
    free_nodes(t->root);
    t->root = NULL;
    t->count = 0;
}

static int height(const mvcc_tree_node *x)
{
    return x ? x->h : 0;
}

static void fix(mvcc_tree_node *x)
{
    int a = height(x->l), b = height(x->r);
    x->h = (a > b ? a : b) + 1;
}

static mvcc_tree_node *rot_right(mvcc_tree_node *x)
{
    mvcc_tree_node *y = x->l;
    x->l = y->r;
    y->r = x;
    fix(x);
    fix(y);
    return y;
}

static mvcc_tree_node *rot_left(mvcc_tree_node *x)
{
    mvcc_tree_node *y = x->r;
    x->r = y->l;
    y->l = x;
    fix(x);
    fix(y);
    return y;
}

static mvcc_tree_node *balance(mvcc_tree_node *x)
{
    fix(x);
    int bf = height(x->l) - height(x->r);
    if (bf > 1) {
        if (height(x->l->l) < height(x->l->r))
            x->l = rot_left(x->l);
        return rot_right(x);
    }
    if (bf < -1) {
        if (height(x->r->r) < height(x->r->l))
            x->r = rot_right(x->r);
        return rot_left(x);
    }
    return x;
}

void *mvcc_tree_find(const mvcc_tree *t, const uint8_t *key, size_t n)
{
    const mvcc_tree_node *x = t->root;
    while (x) {
        int c = mvcc_key_cmp(key, n, x->key, x->n);
        if (c == 0)
            return x->item;
        x = c < 0 ? x->l : x->r;
    }
    return NULL;
}

static mvcc_tree_node *ins(mvcc_tree_node *x, mvcc_tree_node *nw, int *res)
{
    if (!x)
        return nw;
    int c = mvcc_key_cmp(nw->key, nw->n, x->key, x->n);
    if (c == 0) {
        *res = 1;
        return x;
    }
    if (c < 0)
        x->l = ins(x->l, nw, res);
    else
        x->r = ins(x->r, nw, res);
    return balance(x);
}

int mvcc_tree_insert(mvcc_tree *t, const uint8_t *key, size_t n, void *item)
{
    mvcc_tree_node *nw = calloc(1, sizeof(*nw));
    if (!nw)
        return -1;
    nw->key = key;
    nw->n = n;
    nw->item = item;
    nw->h = 1;
    int res = 0;
    t->root = ins(t->root, nw, &res);
    if (res)
        free(nw);
    else
        t->count++;
    return res;
}

static mvcc_tree_node *take_min(mvcc_tree_node *x, mvcc_tree_node **min)
{
    if (!x->l) {
        *min = x;
        return x->r;
    }
    x->l = take_min(x->l, min);
    return balance(x);
}

static mvcc_tree_node *del(mvcc_tree_node *x, const uint8_t *key, size_t n, void **item)
{
    if (!x)
        return NULL;
    int c = mvcc_key_cmp(key, n, x->key, x->n);
    if (c < 0) {
        x->l = del(x->l, key, n, item);
    } else if (c > 0) {
        x->r = del(x->r, key, n, item);
    } else {
        *item = x->item;
        mvcc_tree_node *l = x->l, *r = x->r;
        free(x);
        if (!r)
            return l;
        mvcc_tree_node *m = NULL;
        r = take_min(r, &m);
        m->l = l;
        m->r = r;
        return balance(m);
    }
    return balance(x);
}

void *mvcc_tree_remove(mvcc_tree *t, const uint8_t *key, size_t n)
{
    void *item = NULL;
    t->root = del(t->root, key, n, &item);
    if (item)
        t->count--;
    return item;
}

void *mvcc_tree_seek(const mvcc_tree *t, const uint8_t *key, size_t n, int strict,
                     const uint8_t **found_key, size_t *found_n)
{
    const mvcc_tree_node *x = t->root, *best = NULL;
    while (x) {
        int c = mvcc_key_cmp(x->key, x->n, key, n);
        if (c > 0 || (c == 0 && !strict)) {
            best = x;
            x = x->l;
        } else {
            x = x->r;
        }
    }
    if (!best)
        return NULL;
    if (found_key)
        *found_key = best->key;
    if (found_n)
        *found_n = best->n;
    return best->item;
}
