/* Shared between lib/etcd_parse.c and lib/etcd_client.c only. */
#ifndef APPLIANCE_ETCD_PARSE_INTERNAL_H
#define APPLIANCE_ETCD_PARSE_INTERNAL_H

#include <jansson.h>
#include <stdint.h>

#include "etcd_client.h"

/* int64 given as JSON string or number; 0 when absent. */
int64_t etcd_get_i64(const json_t *o, const char *key);
/* KeyValue JSON -> kv with decoded key/value (malloc'd). */
int etcd_parse_kv(const json_t *o, etcd_kv *kv);

#endif
