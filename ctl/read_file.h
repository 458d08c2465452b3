/* appliancectl's one way to read a whole input file (the provisioning SQL, an edit-config
 * YAML): bounded, NUL-terminated, "-" for standard input, and a message naming the file on
 * stderr when it cannot be had. */
#ifndef CTL_READ_FILE_H
#define CTL_READ_FILE_H

#include <stddef.h>

/* Returns malloc'ed text (length in *len), or NULL after printing "WHO: ..." to stderr
 * (cannot open, read error, out of memory, or larger than max bytes). */
char *ctl_read_file(const char *who, const char *path, size_t max, size_t *len);

#endif
