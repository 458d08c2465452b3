/* JSON tree -> YAML text through libyaml's emitter (it owns quoting and escaping). */
#include "ctl/yaml_print.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "agent/yaml_json.h"

#define MAX_DEPTH 32

typedef struct out_buf {
    char *p;
    size_t len, cap;
    int failed;
} out_buf;

static int write_out(void *data, unsigned char *buffer, size_t size)
{
    out_buf *o = data;
    if (o->len + size + 1 > o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 1024;
        while (cap < o->len + size + 1)
            cap *= 2;
        char *np = realloc(o->p, cap);
        if (!np) {
            o->failed = 1;
            return 0;
        }
        o->p = np;
        o->cap = cap;
    }
    memcpy(o->p + o->len, buffer, size);
    o->len += size;
    o->p[o->len] = '\0';
    return 1;
}

static int emit(yaml_emitter_t *em, yaml_event_t *ev)
{
    return yaml_emitter_emit(em, ev) ? 0 : -1;
}

/* A scalar written plain when the loader would read it back as `want` (a string stays a
 * string only if its plain reading is that same string), else single-quoted like
 * PyYAML (libyaml falls back to double quotes for what single quotes cannot hold). */
static int emit_scalar(yaml_emitter_t *em, const char *text, int plain_ok)
{
    yaml_event_t ev;
    if (!yaml_scalar_event_initialize(
            &ev, NULL, NULL, (yaml_char_t *)text, (int)strlen(text), plain_ok, !plain_ok,
            plain_ok ? YAML_ANY_SCALAR_STYLE : YAML_SINGLE_QUOTED_SCALAR_STYLE))
        return -1;
    return emit(em, &ev);
}

static int emit_string(yaml_emitter_t *em, const char *s)
{
    json_t *back = yaml_plain_scalar(s);
    int plain_ok = json_is_string(back) && strcmp(json_string_value(back), s) == 0;
    json_decref(back);
    return emit_scalar(em, s, plain_ok);
}

static int cmp_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int emit_node(yaml_emitter_t *em, const json_t *j, int depth)
{
    yaml_event_t ev;
    char num[64];
    if (depth > MAX_DEPTH)
        return -1;
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        size_t n = json_object_size(j), i = 0;
        const char **keys = malloc((n ? n : 1) * sizeof(*keys));
        if (!keys)
            return -1;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)j, k, v) keys[i++] = k;
        qsort(keys, n, sizeof(*keys), cmp_keys); /* PyYAML's safe_dump sorts keys too */
        int rc = yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE)
                     ? emit(em, &ev)
                     : -1;
        for (i = 0; rc == 0 && i < n; i++)
            rc = emit_string(em, keys[i]) || emit_node(em, json_object_get(j, keys[i]), depth + 1)
                     ? -1
                     : 0;
        free(keys);
        if (rc == 0)
            rc = yaml_mapping_end_event_initialize(&ev) ? emit(em, &ev) : -1;
        return rc;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *v;
        if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE) ||
            emit(em, &ev) != 0)
            return -1;
        json_array_foreach(j, i, v) if (emit_node(em, v, depth + 1) != 0) return -1;
        return yaml_sequence_end_event_initialize(&ev) ? emit(em, &ev) : -1;
    }
    case JSON_STRING:
        return emit_string(em, json_string_value(j));
    case JSON_INTEGER:
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        return emit_scalar(em, num, 1);
    case JSON_REAL: {
        /* shortest text that reads back as the same double, always with a '.' or exponent
         * (YAML 1.1: "1" would read back as an integer) */
        double d = json_real_value(j);
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(num, sizeof(num), "%.*g", prec, d);
            if (strtod(num, NULL) == d)
                break;
        }
        if (!strpbrk(num, ".eEn")) /* "n": nan/inf are left as they are */
            strncat(num, ".0", sizeof(num) - strlen(num) - 1);
        return emit_scalar(em, num, 1);
    }
    case JSON_TRUE:
        return emit_scalar(em, "true", 1);
    case JSON_FALSE:
        return emit_scalar(em, "false", 1);
    case JSON_NULL:
        return emit_scalar(em, "null", 1);
    }
    return -1;
}

char *ctl_json_to_yaml(const json_t *j)
{
    yaml_emitter_t em;
    yaml_event_t ev;
    out_buf o = {0};
    if (!yaml_emitter_initialize(&em))
        return NULL;
    yaml_emitter_set_output(&em, write_out, &o);
    yaml_emitter_set_unicode(&em, 1);
    yaml_emitter_set_width(&em, -1); /* no folding of long strings */
    int rc = yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) ? emit(&em, &ev) : -1;
    if (rc == 0)
        rc = yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) ? emit(&em, &ev) : -1;
    if (rc == 0)
        rc = emit_node(&em, j, 0);
    if (rc == 0)
        rc = yaml_document_end_event_initialize(&ev, 1) ? emit(&em, &ev) : -1;
    if (rc == 0)
        rc = yaml_stream_end_event_initialize(&ev) ? emit(&em, &ev) : -1;
    if (rc == 0 && !yaml_emitter_flush(&em))
        rc = -1;
    yaml_emitter_delete(&em);
    if (rc != 0 || o.failed || !o.p) {
        free(o.p);
        return NULL;
    }
    return o.p;
}
