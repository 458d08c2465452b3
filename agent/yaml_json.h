/* YAML document -> jansson tree, typed the way Patroni's loader (PyYAML safe_load, YAML 1.1)
 * types plain scalars: true/false/yes/no/on/off -> bool, integers -> int, floats -> real,
 * null/~/empty -> null; quoted scalars always stay strings ('on' stays "on", which is why
 * Patroni's config key carries "hot_standby":"on"). Anchors/aliases are rejected (a node
 * config has no use for them and they enable billion-laughs inputs). */
#ifndef AGENT_YAML_JSON_H
#define AGENT_YAML_JSON_H

#include <jansson.h>
#include <stddef.h>

/* Returns a new reference, or NULL with a message naming line/column in err. */
json_t *yaml_to_json(const char *text, size_t len, char *err, size_t errsz);
/* Types one plain scalar as YAML 1.1 would (used for env overrides too). */
json_t *yaml_plain_scalar(const char *s);

#endif
