/* Ordered map from byte strings (memcmp order, shorter prefix first) to items: an AVL tree,
 * so every lookup, insert, delete and "next key" is O(log n) worst case with no randomness
 * (a skip list would need a random source, and every member must stay deterministic).
 * The tree does not own the key bytes: they must live as long as the entry (usually the
 * item holds them). */
#ifndef APPLIANCE_DCS_MVCC_TREE_H
#define APPLIANCE_DCS_MVCC_TREE_H

#include <stddef.h>
#include <stdint.h>

typedef struct mvcc_tree_node mvcc_tree_node;
typedef struct mvcc_tree {
    mvcc_tree_node *root;
    size_t count;
} mvcc_tree;

int mvcc_key_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn);

void mvcc_tree_init(mvcc_tree *t);
/* Frees the nodes (not the items). */
void mvcc_tree_clear(mvcc_tree *t);
void *mvcc_tree_find(const mvcc_tree *t, const uint8_t *key, size_t n);
/* Inserts item under key; returns 0, 1 if the key exists (nothing changed), -1 on ENOMEM. */
int mvcc_tree_insert(mvcc_tree *t, const uint8_t *key, size_t n, void *item);
/* Removes key; returns the item or NULL. */
void *mvcc_tree_remove(mvcc_tree *t, const uint8_t *key, size_t n);
/* Smallest entry with key >= (or > when strict) the given key; NULL if none. The found
 * entry's key is returned through found_key and found_n when those are non-NULL. */
void *mvcc_tree_seek(const mvcc_tree *t, const uint8_t *key, size_t n, int strict,
                     const uint8_t **found_key, size_t *found_n);

#endif
