/* A small JSON writer producing exactly what etcd's Go gateway prints: compact, fields in
 * the order written, strings escaped like Go's encoding/json (HTML characters as \u003c
 * etc., invalid UTF-8 as \ufffd), int64 as quoted decimal when asked. Bounded: past max
 * bytes it stops and sets err. */
#ifndef APPLIANCE_DCS_V3_JSONW_H
#define APPLIANCE_DCS_V3_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JW_MAX_DEPTH 128 /* nested txn responses: 3 levels per txn level, 16 txn levels */

typedef struct jw {
    char *p;
    size_t len, cap, max;
    bool err;
    int depth;
    bool first[JW_MAX_DEPTH];
    bool after_key;
} jw;

void jw_init(jw *w, size_t max);
void jw_free(jw *w);
/* Takes the NUL-terminated output (caller frees); NULL if err. */
char *jw_take(jw *w, size_t *len);
void jw_raw(jw *w, const char *s, size_t n);
void jw_obj(jw *w);
void jw_obj_end(jw *w);
void jw_arr(jw *w);
void jw_arr_end(jw *w);
void jw_key(jw *w, const char *name);
void jw_str(jw *w, const char *s, size_t n);
void jw_cstr(jw *w, const char *s);
void jw_b64(jw *w, const void *p, size_t n);
void jw_i64_quoted(jw *w, int64_t v);
void jw_u64_quoted(jw *w, uint64_t v);
void jw_i64(jw *w, int64_t v);
void jw_u64(jw *w, uint64_t v);
void jw_bool(jw *w, bool v);

#endif
