/* Fuzzes appliance-init's untrusted inputs: a services-file line (spec_parse_line, its
 * quoting and key=value validation) and children's output through the log multiplexer
 * (line joining, 16 KiB splits, JSON escaping of arbitrary bytes, drop accounting).
 * First byte picks the target; the rest is the input. */
#include "supervisor/logmux.h"
#include "supervisor/spec.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int devnull = -1;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (devnull < 0)
        devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    uint8_t mode = data[0];
    data++;
    size--;
    if (mode % 2 == 0) {
        char line[SPEC_LINE_MAX + 16];
        size_t n = size < sizeof(line) - 1 ? size : sizeof(line) - 1;
        memcpy(line, data, n);
        line[n] = '\0';
        struct svc_spec s;
        spec_init(&s);
        char err[512];
        int r = spec_parse_line(line, &s, err, sizeof(err));
        if (r == 1 && !s.argv[0])
            abort(); /* a parsed service always has a command */
        spec_free(&s);
        return 0;
    }
    struct logmux *mux = logmux_new(devnull, mode & 2 ? LOGMUX_JSON : LOGMUX_TEXT, "c", "r");
    if (!mux)
        return 0;
    struct log_source *src = logmux_source_new(mux, "child\"x", 1, "stdout");
    /* Feed in pieces whose sizes come from the input, like pipe reads would. */
    size_t off = 0;
    while (off < size) {
        size_t piece = 1 + (data[off] * 97u) % 4096;
        if (piece > size - off)
            piece = size - off;
        logmux_source_feed(mux, src, (const char *)data + off, piece);
        off += piece;
        if (mode & 4)
            logmux_flush(mux);
    }
    logmux_source_close(mux, src);
    if (logmux_queued_bytes(mux) > LOGMUX_QUEUE_MAX)
        abort();
    logmux_free(mux);
    return 0;
}
