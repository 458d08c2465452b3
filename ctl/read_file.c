/* Bounded whole-file reads for appliancectl (see read_file.h). */
#include "ctl/read_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *ctl_read_file(const char *who, const char *path, size_t max, size_t *len)
{
    int is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: cannot read %s: %s\n", who, path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    int bad = ferror(f);
    if (!is_stdin)
        fclose(f);
    if (!buf || bad || n > max) {
        fprintf(stderr, "%s: %s: ", who, path);
        if (!buf)
            fprintf(stderr, "out of memory\n");
        else if (bad)
            fprintf(stderr, "read error\n");
        else
            fprintf(stderr, "larger than %zu MiB\n", max >> 20);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}
