/* Splits a psql-style SQL file into statements, the way psql would send them: `;` ends a
 * statement outside quotes, dollar quotes, quoted identifiers and comments; the psql
 * meta-commands \g and \gexec end one too (\gexec: each value of the result is then run as
 * a statement). Other meta-commands (\c, \set, \i...) are refused with the line named, as
 * is an unterminated quote or comment: a provisioning file is run by a program, and a
 * silent difference from psql would surface as a half-provisioned cluster. */
#ifndef CTL_SQL_SCRIPT_H
#define CTL_SQL_SCRIPT_H

#include <stddef.h>

typedef struct sql_stmt {
    char *text; /* NUL-terminated, without the terminator (malloc'ed) */
    int line;   /* 1-based line of its first significant character */
    int gexec;  /* ended by \gexec */
} sql_stmt;

typedef struct sql_script {
    sql_stmt *stmts;
    size_t n;
} sql_script;

/* Returns 0 with *out filled (free with sql_script_free), or -1 with err saying
 * "line N: ..." . Bounded: at most SQL_SCRIPT_MAX_STMTS statements. */
#define SQL_SCRIPT_MAX_STMTS 10000
int sql_script_parse(const char *text, size_t len, sql_script *out, char *err, size_t errsz);
void sql_script_free(sql_script *s);

#endif
