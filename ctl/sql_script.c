/* psql-compatible statement splitting for `appliancectl provision` (see sql_script.h). */
#include "ctl/sql_script.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void seterr(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errsz, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
}

static int ident_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c >= 0x80;
}

static int space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

void sql_script_free(sql_script *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->stmts[i].text);
    free(s->stmts);
    s->stmts = NULL;
    s->n = 0;
}

static int emit(sql_script *s, size_t *cap, const char *from, size_t len, int line, int gexec,
                char *err, size_t errsz)
{
    while (len && space(from[len - 1]))
        len--;
    if (s->n >= SQL_SCRIPT_MAX_STMTS) {
        seterr(err, errsz, "line %d: more than %d statements", line, SQL_SCRIPT_MAX_STMTS);
        return -1;
    }
    if (s->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        sql_stmt *ns = realloc(s->stmts, nc * sizeof(*ns));
        if (!ns) {
            seterr(err, errsz, "out of memory");
            return -1;
        }
        s->stmts = ns;
        *cap = nc;
    }
    char *t = malloc(len + 1);
    if (!t) {
        seterr(err, errsz, "out of memory");
        return -1;
    }
    memcpy(t, from, len);
    t[len] = '\0';
    s->stmts[s->n++] = (sql_stmt){.text = t, .line = line, .gexec = gexec};
    return 0;
}

/* Skips a quoted run starting at text[i] (the opening quote); returns the index after the
 * closing quote, or (size_t)-1 when unterminated. `backslash`: E'' strings escape with \. */
static size_t skip_quoted(const char *text, size_t len, size_t i, char q, int backslash, int *line)
{
    for (i++; i < len; i++) {
        if (text[i] == '\n')
            (*line)++;
        else if (backslash && text[i] == '\\' && i + 1 < len) {
            if (text[i + 1] == '\n')
                (*line)++;
            i++;
        } else if (text[i] == q) {
            if (i + 1 < len && text[i + 1] == q) { /* '' or "" inside */
                i++;
                continue;
            }
            return i + 1;
        }
    }
    return (size_t)-1;
}

int sql_script_parse(const char *text, size_t len, sql_script *out, char *err, size_t errsz)
{
    memset(out, 0, sizeof(*out));
    size_t cap = 0, i = 0;
    int line = 1, start_line = 0;
    const size_t none = (size_t)-1;
    size_t start = none;
    while (i < len) {
        char c = text[i];
        if (c == '\n') {
            line++;
            i++;
            continue;
        }
        if (space(c)) {
            i++;
            continue;
        }
        if (c == '-' && i + 1 < len && text[i + 1] == '-') {
            while (i < len && text[i] != '\n')
                i++;
            continue;
        }
        if (c == '/' && i + 1 < len && text[i + 1] == '*') { /* nested, as in PostgreSQL */
            int depth = 0, at = line;
            while (i < len) {
                if (text[i] == '/' && i + 1 < len && text[i + 1] == '*') {
                    depth++;
                    i += 2;
                } else if (text[i] == '*' && i + 1 < len && text[i + 1] == '/') {
                    i += 2;
                    if (--depth == 0)
                        break;
                } else {
                    if (text[i] == '\n')
                        line++;
                    i++;
                }
            }
            if (depth) {
                seterr(err, errsz, "line %d: unterminated /* comment", at);
                goto fail;
            }
            continue;
        }
        if (c == ';') {
            if (start != none &&
                emit(out, &cap, text + start, i - start, start_line, 0, err, errsz) != 0)
                goto fail;
            start = none;
            i++;
            continue;
        }
        if (c == '\\') {
            size_t j = i + 1;
            while (j < len && ident_char((unsigned char)text[j]))
                j++;
            char name[32];
            size_t nl = j - i - 1;
            snprintf(name, sizeof(name), "%.*s", (int)(nl < 31 ? nl : 31), text + i + 1);
            if (strcmp(name, "gexec") != 0 && strcmp(name, "g") != 0) {
                seterr(err, errsz,
                       "line %d: psql meta-command \\%s is not supported (only \\g and \\gexec)",
                       line, name);
                goto fail;
            }
            while (j < len && text[j] != '\n' && space(text[j]))
                j++;
            if (j < len && text[j] != '\n') {
                seterr(err, errsz, "line %d: \\%s takes no arguments here", line, name);
                goto fail;
            }
            if (start == none) {
                seterr(err, errsz, "line %d: \\%s without a query before it", line, name);
                goto fail;
            }
            if (emit(out, &cap, text + start, i - start, start_line, name[1] != '\0', err, errsz) !=
                0)
                goto fail;
            start = none;
            i = j;
            continue;
        }
        if (start == none) {
            start = i;
            start_line = line;
        }
        int at = line;
        if (c == '\'' || c == '"') {
            int e = c == '\'' && i > start && (text[i - 1] == 'E' || text[i - 1] == 'e') &&
                    (i - 1 == start || !ident_char((unsigned char)text[i - 2]));
            i = skip_quoted(text, len, i, c, e, &line);
            if (i == none) {
                seterr(err, errsz, "line %d: unterminated %s", at,
                       c == '"' ? "quoted identifier" : "quoted string");
                goto fail;
            }
            continue;
        }
        if (c == '$' && (i == 0 || !ident_char((unsigned char)text[i - 1]))) {
            size_t j = i + 1;
            while (j < len && ident_char((unsigned char)text[j]) &&
                   !(j == i + 1 && text[j] >= '0' && text[j] <= '9'))
                j++;
            if (j < len && text[j] == '$') {
                size_t tl = j - i + 1; /* "$tag$" */
                size_t k = j + 1;
                while (k + tl <= len && memcmp(text + k, text + i, tl) != 0) {
                    if (text[k] == '\n')
                        line++;
                    k++;
                }
                if (k + tl > len) {
                    seterr(err, errsz, "line %d: unterminated dollar-quoted string %.*s", at,
                           (int)tl, text + i);
                    goto fail;
                }
                i = k + tl;
                continue;
            }
        }
        i++;
    }
    if (start != none && emit(out, &cap, text + start, len - start, start_line, 0, err, errsz))
        goto fail;
    return 0;
fail:
    sql_script_free(out);
    return -1;
}
