/* JSON tree -> YAML text, for `appliancectl show-config` (Patroni's show-config prints the
 * config key as YAML). Keys sorted, block style, and typed so that reading the text back
 * with Patroni's loader (PyYAML safe_load; our agent/yaml_json.c) gives the same tree: a
 * string that would read back as something else ("on", "10", "null", "") is single-quoted,
 * as PyYAML does (the output of Patroni's show-config, byte for byte). */
#ifndef CTL_YAML_PRINT_H
#define CTL_YAML_PRINT_H

#include <jansson.h>

/* Returns malloc'ed NUL-terminated text, or NULL (out of memory, nesting deeper than 32, or
 * a string that is not valid UTF-8). */
char *ctl_json_to_yaml(const json_t *j);

#endif
