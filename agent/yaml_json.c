/* libyaml event stream -> jansson tree with PyYAML's YAML 1.1 scalar typing. */
#include "agent/yaml_json.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#define YAML_MAX_DEPTH 32

static int is_int_text(const char *s)
{
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (!*p)
        return 0;
    for (; *p; p++)
        if (!isdigit((unsigned char)*p) && *p != '_')
            return 0;
    return 1;
}

static int is_float_text(const char *s)
{
    char *end;
    if (!*s || isspace((unsigned char)*s))
        return 0;
    /* YAML 1.1 floats need a dot or exponent; "1" is an int, "1.0" a float. */
    if (!strpbrk(s, ".eE"))
        return 0;
    errno = 0;
    (void)strtod(s, &end);
    return *end == '\0' && errno == 0 &&
           (isdigit((unsigned char)s[0]) || s[0] == '-' || s[0] == '+' || s[0] == '.');
}

json_t *yaml_plain_scalar(const char *s)
{
    static const char *const trues[] = {"true", "yes", "on", "y"};
    static const char *const falses[] = {"false", "no", "off", "n"};
    if (!*s || strcmp(s, "~") == 0 || strcasecmp(s, "null") == 0)
        return json_null();
    for (size_t i = 0; i < 4; i++) {
        /* PyYAML resolves y/n as strings; only the long forms are booleans. */
        if (i == 3)
            break;
        if (strcasecmp(s, trues[i]) == 0)
            return json_true();
        if (strcasecmp(s, falses[i]) == 0)
            return json_false();
    }
    if (is_int_text(s)) {
        char buf[64];
        size_t j = 0;
        for (const char *p = s; *p && j < sizeof(buf) - 1; p++)
            if (*p != '_')
                buf[j++] = *p;
        buf[j] = '\0';
        errno = 0;
        char *end;
        long long v = strtoll(buf, &end, 10);
        if (errno == 0 && *end == '\0')
            return json_integer(v);
        return json_string(s);
    }
    if (is_float_text(s))
        return json_real(strtod(s, NULL));
    return json_string(s);
}

struct frame {
    json_t *node;
    char *pending_key; /* mapping: key waiting for its value */
};

static int attach(struct frame *stack, int depth, json_t *v, char *err, size_t errsz,
                  const yaml_mark_t *mark)
{
    if (depth < 0) {
        json_decref(v);
        return 0;
    }
    struct frame *f = &stack[depth];
    if (json_is_array(f->node))
        return json_array_append_new(f->node, v);
    if (!f->pending_key) {
        /* A value in key position: only scalars may be keys. */
        if (!json_is_string(v)) {
            const char *txt = NULL;
            char buf[64];
            if (json_is_integer(v)) {
                snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
                txt = buf;
            } else if (json_is_true(v) || json_is_false(v)) {
                txt = json_is_true(v) ? "true" : "false";
            } else if (json_is_null(v)) {
                txt = "null";
            } else if (json_is_real(v)) {
                snprintf(buf, sizeof(buf), "%g", json_real_value(v));
                txt = buf;
            }
            if (!txt) {
                snprintf(err, errsz, "line %zu column %zu: mapping key must be a scalar",
                         mark->line + 1, mark->column + 1);
                json_decref(v);
                return -1;
            }
            f->pending_key = strdup(txt);
        } else {
            f->pending_key = strdup(json_string_value(v));
        }
        json_decref(v);
        return f->pending_key ? 0 : -1;
    }
    int rc = json_object_set_new(f->node, f->pending_key, v);
    free(f->pending_key);
    f->pending_key = NULL;
    return rc;
}

json_t *yaml_to_json(const char *text, size_t len, char *err, size_t errsz)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    struct frame stack[YAML_MAX_DEPTH];
    int depth = -1;
    json_t *root = NULL;
    int done = 0, failed = 0;

    err[0] = '\0';
    if (!yaml_parser_initialize(&parser)) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    while (!done && !failed) {
        if (!yaml_parser_parse(&parser, &ev)) {
            snprintf(err, errsz, "line %zu column %zu: %s", parser.problem_mark.line + 1,
                     parser.problem_mark.column + 1,
                     parser.problem ? parser.problem : "YAML syntax error");
            failed = 1;
            break;
        }
        json_t *v = NULL;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
        case YAML_DOCUMENT_END_EVENT: /* first document only, like safe_load */
            done = 1;
            break;
        case YAML_ALIAS_EVENT:
            snprintf(err, errsz, "line %zu column %zu: YAML aliases are not supported",
                     ev.start_mark.line + 1, ev.start_mark.column + 1);
            failed = 1;
            break;
        case YAML_SCALAR_EVENT: {
            const char *s = (const char *)ev.data.scalar.value;
            if (ev.data.scalar.anchor) {
                snprintf(err, errsz, "line %zu column %zu: YAML anchors are not supported",
                         ev.start_mark.line + 1, ev.start_mark.column + 1);
                failed = 1;
                break;
            }
            if (ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !ev.data.scalar.tag)
                v = yaml_plain_scalar(s);
            else
                v = json_stringn(s, ev.data.scalar.length);
            if (!v) {
                snprintf(err, errsz, "line %zu: scalar is not valid UTF-8", ev.start_mark.line + 1);
                failed = 1;
                break;
            }
            if (depth < 0) {
                json_decref(root);
                root = v;
            } else if (attach(stack, depth, v, err, errsz, &ev.start_mark) != 0) {
                if (!err[0])
                    snprintf(err, errsz, "out of memory");
                failed = 1;
            }
            break;
        }
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (depth + 1 >= YAML_MAX_DEPTH) {
                snprintf(err, errsz, "line %zu: nesting deeper than %d levels",
                         ev.start_mark.line + 1, YAML_MAX_DEPTH);
                failed = 1;
                break;
            }
            if ((ev.type == YAML_SEQUENCE_START_EVENT && ev.data.sequence_start.anchor) ||
                (ev.type == YAML_MAPPING_START_EVENT && ev.data.mapping_start.anchor)) {
                snprintf(err, errsz, "line %zu column %zu: YAML anchors are not supported",
                         ev.start_mark.line + 1, ev.start_mark.column + 1);
                failed = 1;
                break;
            }
            v = ev.type == YAML_SEQUENCE_START_EVENT ? json_array() : json_object();
            depth++;
            stack[depth].node = v;
            stack[depth].pending_key = NULL;
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT: {
            if (depth < 0) { /* libyaml never sends an unbalanced end; be safe anyway */
                failed = 1;
                break;
            }
            json_t *node = stack[depth].node;
            free(stack[depth].pending_key);
            stack[depth].pending_key = NULL;
            depth--;
            if (depth < 0) {
                json_decref(root);
                root = node;
            } else if (attach(stack, depth, node, err, errsz, &ev.start_mark) != 0) {
                if (!err[0])
                    snprintf(err, errsz, "out of memory");
                failed = 1;
            }
            break;
        }
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    for (; depth >= 0; depth--) {
        free(stack[depth].pending_key);
        json_decref(stack[depth].node);
    }
    yaml_parser_delete(&parser);
    if (failed) {
        json_decref(root);
        return NULL;
    }
    if (!root)
        root = json_null();
    return root;
}
