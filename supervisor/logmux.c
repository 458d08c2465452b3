/* One output stream for every child's stdout/stderr (see logmux.h). */
#include "logmux.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* A chunk holds whole records; the largest record is a LOGMUX_LINE_MAX fragment escaped
 * for JSON (at most 6 bytes per input byte) plus its prefix, so it always fits. */
#define CHUNK_DATA     ((size_t)128 * 1024)
#define PREFIX_MAX     ((size_t)768)
#define RECORD_MAX     (LOGMUX_LINE_MAX * 6 + PREFIX_MAX)
#define IOV_BATCH      256
#define CONTINUES_MARK " [line continues]"

struct rec_hdr {
    struct log_source *src;
    uint32_t len; /* payload bytes after the header */
    uint32_t pad;
};

struct chunk {
    struct chunk *next;
    size_t head; /* offset of the first unwritten record's header */
    size_t tail; /* offset where the next record goes */
    unsigned char data[CHUNK_DATA];
};

struct log_source {
    char child[64];
    int pid;
    const char *stream;
    size_t queued; /* payload bytes of this source's records still in the queue */
    uint64_t dropped_lines, dropped_bytes;
    int closed;
    size_t len;          /* bytes in line[] */
    char *line;          /* LOGMUX_LINE_MAX, allocated on first use */
    char esc_child[400]; /* JSON-escaped child name (only used for LOG_FORMAT=json) */
    /* The formatted record prefix for one millisecond: records of the same read share it,
     * so formatting is a memcpy per line instead of an snprintf. */
    long long pfx_stamp;
    size_t pfx_len;
    char pfx[PREFIX_MAX];
};

struct logmux {
    int fd;
    int saved_flags; /* -1: flags untouched */
    int pollable;
    int dead; /* output gone (EPIPE...): everything is dropped and counted */
    enum logmux_format fmt;
    char prefix[PREFIX_MAX / 2]; /* text: "container/role"; json: escaped fields */
    struct chunk *first, *last, *spare;
    size_t head_written; /* bytes of the first record already written */
    size_t total;        /* payload bytes queued */
    struct log_source self;
    struct logmux_stats stats;
    /* Timestamp cache: the seconds part only changes once a second. The clock is read
     * once per read from a child (all lines of that read carry the same time). */
    time_t ts_sec;
    char ts_buf[32];
    struct timespec now;
};

static void source_init(struct logmux *mux, struct log_source *src, const char *child, int pid,
                        const char *stream)
{
    memset(src, 0, sizeof(*src));
    snprintf(src->child, sizeof(src->child), "%s", child);
    src->pid = pid;
    src->stream = stream;
    src->pfx_stamp = -1;
    if (mux->fmt == LOGMUX_JSON) {
        size_t n = logmux_json_escape(src->esc_child, sizeof(src->esc_child) - 1, src->child,
                                      strlen(src->child));
        src->esc_child[n] = '\0';
    }
}

static void clock_read(struct logmux *mux)
{
    clock_gettime(CLOCK_REALTIME, &mux->now);
}

struct logmux *logmux_new(int out_fd, enum logmux_format fmt, const char *container,
                          const char *role)
{
    struct logmux *mux = calloc(1, sizeof(*mux));
    if (!mux)
        return NULL;
    mux->fd = out_fd;
    mux->fmt = fmt;
    mux->saved_flags = -1;
    struct stat st;
    if (fstat(out_fd, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) {
        /* Pipes and sockets (docker's log pipe) may be slow: never block on them. A tty
         * is left blocking: it is an interactive run, and the user's shell shares it. */
        int fl = fcntl(out_fd, F_GETFL);
        if (fl >= 0 && fcntl(out_fd, F_SETFL, fl | O_NONBLOCK) == 0) {
            mux->saved_flags = fl;
            mux->pollable = 1;
        }
    }
    if (fmt == LOGMUX_JSON) {
        char c[128], r[128];
        size_t n = logmux_json_escape(c, sizeof(c) - 1, container, strlen(container));
        c[n] = '\0';
        n = logmux_json_escape(r, sizeof(r) - 1, role, strlen(role));
        r[n] = '\0';
        snprintf(mux->prefix, sizeof(mux->prefix), "\"container\":\"%s\",\"role\":\"%s\"", c, r);
    } else {
        snprintf(mux->prefix, sizeof(mux->prefix), "%s/%s", container, role);
    }
    source_init(mux, &mux->self, "appliance-init", (int)getpid(), "init");
    mux->ts_sec = -1;
    clock_read(mux);
    return mux;
}

void logmux_set_self(struct logmux *mux, const char *name, int pid)
{
    struct log_source keep = mux->self;
    source_init(mux, &mux->self, name, pid, "init");
    mux->self.queued = keep.queued;
    mux->self.dropped_lines = keep.dropped_lines;
    mux->self.dropped_bytes = keep.dropped_bytes;
}

int logmux_out_pollable(const struct logmux *mux)
{
    return mux->pollable;
}

size_t logmux_queued_bytes(const struct logmux *mux)
{
    return mux->total;
}

void logmux_get_stats(const struct logmux *mux, struct logmux_stats *st)
{
    *st = mux->stats;
}

/* ---- formatting ---- */

static const char *timestamp(struct logmux *mux, int *ms)
{
    struct timespec ts = mux->now;
    if (ts.tv_sec != mux->ts_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        strftime(mux->ts_buf, sizeof(mux->ts_buf), "%Y-%m-%dT%H:%M:%S", &tm);
        mux->ts_sec = ts.tv_sec;
    }
    *ms = (int)(ts.tv_nsec / 1000000);
    return mux->ts_buf;
}

static size_t utf8_seq_len(const unsigned char *s, size_t len)
{
    /* Returns the length of a valid UTF-8 sequence at s, or 0 if invalid. */
    unsigned char c = s[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n == 4 && cp < 0x10000) ||
        cp > 0x10ffff)
        return 0;
    return n;
}

size_t logmux_json_escape(char *out, size_t cap, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        unsigned char c = u[i];
        char tmp[8];
        size_t tn = 0;
        size_t adv = 1;
        const char *src = tmp;
        if (c == '"' || c == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            tn = 2;
        } else if (c == '\n') {
            src = "\\n";
            tn = 2;
        } else if (c == '\r') {
            src = "\\r";
            tn = 2;
        } else if (c == '\t') {
            src = "\\t";
            tn = 2;
        } else if (c < 0x20 || c == 0x7f) {
            tmp[0] = '\\';
            tmp[1] = 'u';
            tmp[2] = '0';
            tmp[3] = '0';
            tmp[4] = hex[c >> 4];
            tmp[5] = hex[c & 15];
            tn = 6;
        } else if (c < 0x80) {
            tmp[0] = (char)c;
            tn = 1;
        } else {
            size_t n = utf8_seq_len(u + i, len - i);
            if (n == 0) {
                src = "\\ufffd";
                tn = 6;
            } else {
                src = s + i;
                tn = n;
                adv = n;
            }
        }
        if (o + tn > cap)
            break;
        for (size_t k = 0; k < tn; k++) /* bytes, not a string: no terminator wanted */
            out[o + k] = src[k];
        o += tn;
        i += adv;
    }
    return o;
}

/* ---- queue ---- */

static struct chunk *chunk_get(struct logmux *mux)
{
    struct chunk *c = mux->spare;
    if (c)
        mux->spare = NULL;
    else if (!(c = malloc(sizeof(*c))))
        return NULL;
    c->next = NULL;
    c->head = c->tail = 0;
    return c;
}

/* Room for a header plus up to RECORD_MAX bytes at the queue's tail, or NULL. */
static unsigned char *reserve(struct logmux *mux)
{
    size_t need = sizeof(struct rec_hdr) + RECORD_MAX;
    if (!mux->last || CHUNK_DATA - mux->last->tail < need) {
        struct chunk *c = chunk_get(mux);
        if (!c)
            return NULL;
        if (mux->last)
            mux->last->next = c;
        else
            mux->first = c;
        mux->last = c;
    }
    return mux->last->data + mux->last->tail;
}

static void commit(struct logmux *mux, struct log_source *src, unsigned char *at, size_t len)
{
    struct rec_hdr h = {.src = src, .len = (uint32_t)len};
    memcpy(at, &h, sizeof(h));
    /* Keep headers 8-byte aligned. */
    mux->last->tail += (sizeof(h) + len + 7u) & ~(size_t)7u;
    src->queued += len;
    mux->total += len;
    mux->stats.records++;
}

static void source_release(struct log_source *src)
{
    free(src->line);
    free(src);
}

static void record_written(struct logmux *mux, struct log_source *src, size_t len)
{
    src->queued -= len;
    mux->total -= len;
    if (src->closed && src->queued == 0 && src != &mux->self)
        source_release(src);
}

static int fits(const struct logmux *mux, const struct log_source *src, size_t estimate)
{
    return !mux->dead && src->queued + estimate <= LOGMUX_SOURCE_QUOTA &&
           mux->total + estimate <= LOGMUX_QUEUE_MAX;
}

static int enqueue_raw(struct logmux *mux, struct log_source *src, const char *text, size_t len,
                       int continues);

static void report_drops(struct logmux *mux, struct log_source *src)
{
    if (src->dropped_lines == 0)
        return;
    char msg[256];
    int n = snprintf(msg, sizeof(msg),
                     "warn: dropped %llu record(s) (%llu bytes) of %s[%d] %s: log output "
                     "slower than the child writes",
                     (unsigned long long)src->dropped_lines, (unsigned long long)src->dropped_bytes,
                     src->child, src->pid, src->stream);
    uint64_t l = src->dropped_lines, b = src->dropped_bytes;
    src->dropped_lines = src->dropped_bytes = 0;
    if (!enqueue_raw(mux, &mux->self, msg, (size_t)n, 0)) {
        /* Could not even report: keep the count so it is reported later. */
        src->dropped_lines += l;
        src->dropped_bytes += b;
    }
}

/* Formats and queues one record; returns 0 if it was dropped (and counted). */
static int enqueue_raw(struct logmux *mux, struct log_source *src, const char *text, size_t len,
                       int continues)
{
    size_t estimate = len + 128 + strlen(src->child);
    if (!fits(mux, src, estimate)) {
        src->dropped_lines++;
        src->dropped_bytes += len;
        mux->stats.dropped_records++;
        mux->stats.dropped_bytes += len;
        return 0;
    }
    unsigned char *at = reserve(mux);
    if (!at) {
        src->dropped_lines++;
        src->dropped_bytes += len;
        mux->stats.dropped_records++;
        mux->stats.dropped_bytes += len;
        return 0;
    }
    char *p = (char *)at + sizeof(struct rec_hdr);
    long long stamp = (long long)mux->now.tv_sec * 1000 + mux->now.tv_nsec / 1000000;
    if (stamp != src->pfx_stamp) {
        int ms;
        const char *ts = timestamp(mux, &ms);
        int n;
        if (mux->fmt == LOGMUX_JSON)
            n = snprintf(src->pfx, sizeof(src->pfx),
                         "{\"time\":\"%s.%03dZ\",%s,\"child\":\"%s\",\"pid\":%d,"
                         "\"stream\":\"%s\",\"msg\":\"",
                         ts, ms, mux->prefix, src->esc_child, src->pid, src->stream);
        else
            n = snprintf(src->pfx, sizeof(src->pfx), "%s.%03dZ %s %s[%d]: ", ts, ms, mux->prefix,
                         src->child, src->pid);
        src->pfx_len = n < 0 ? 0 : (size_t)n >= sizeof(src->pfx) ? sizeof(src->pfx) - 1 : (size_t)n;
        src->pfx_stamp = stamp;
    }
    memcpy(p, src->pfx, src->pfx_len);
    size_t o = src->pfx_len;
    if (mux->fmt == LOGMUX_JSON) {
        o += logmux_json_escape(p + o, LOGMUX_LINE_MAX * 6, text, len);
        const char *tail = continues ? "\",\"continues\":true}\n" : "\"}\n";
        while (*tail)
            p[o++] = *tail++;
    } else {
        memcpy(p + o, text, len);
        o += len;
        if (continues) {
            memcpy(p + o, CONTINUES_MARK, sizeof(CONTINUES_MARK) - 1);
            o += sizeof(CONTINUES_MARK) - 1;
        }
        p[o++] = '\n';
    }
    commit(mux, src, at, o);
    return 1;
}

static void enqueue(struct logmux *mux, struct log_source *src, const char *text, size_t len,
                    int continues)
{
    if (src->dropped_lines && src != &mux->self && fits(mux, src, len + 128))
        report_drops(mux, src);
    enqueue_raw(mux, src, text, len, continues);
}

void logmux_say(struct logmux *mux, const char *level, const char *fmt, ...)
{
    char buf[4096];
    int n = snprintf(buf, sizeof(buf), "%s: ", level);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(buf) - 1)
        len = sizeof(buf) - 1;
    for (size_t i = 0; i < len; i++)
        if (buf[i] == '\n')
            buf[i] = ' ';
    clock_read(mux);
    if (mux->self.dropped_lines && fits(mux, &mux->self, 256))
        report_drops(mux, &mux->self);
    enqueue_raw(mux, &mux->self, buf, len, 0);
}

/* ---- sources ---- */

struct log_source *logmux_source_new(struct logmux *mux, const char *child, int pid,
                                     const char *stream)
{
    struct log_source *src = malloc(sizeof(*src));
    if (!src)
        return NULL;
    source_init(mux, src, child, pid, stream);
    return src;
}

/* Queues every complete line in src->line; `scanned` bytes are known to hold no '\n'. */
static void split_lines(struct logmux *mux, struct log_source *src, size_t scanned)
{
    size_t start = 0;
    char *nl;
    while ((nl = memchr(src->line + scanned, '\n', src->len - scanned)) != NULL) {
        size_t end = (size_t)(nl - src->line);
        size_t l = end - start;
        if (l > 0 && src->line[start + l - 1] == '\r')
            l--;
        enqueue(mux, src, src->line + start, l, 0);
        start = end + 1;
        scanned = start;
    }
    if (start > 0) {
        memmove(src->line, src->line + start, src->len - start);
        src->len -= start;
    }
    if (src->len == LOGMUX_LINE_MAX) {
        /* An over-long line: this part goes out now, marked; the rest follows. */
        enqueue(mux, src, src->line, src->len, 1);
        src->len = 0;
    }
}

static int ensure_line(struct log_source *src)
{
    if (!src->line)
        src->line = malloc(LOGMUX_LINE_MAX);
    return src->line != NULL;
}

long logmux_source_read(struct logmux *mux, struct log_source *src, int fd)
{
    if (!ensure_line(src)) {
        errno = ENOMEM;
        return -1;
    }
    ssize_t n;
    do
        n = read(fd, src->line + src->len, LOGMUX_LINE_MAX - src->len);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return (long)n;
    clock_read(mux);
    size_t old = src->len;
    src->len += (size_t)n;
    split_lines(mux, src, old);
    return (long)n;
}

void logmux_source_feed(struct logmux *mux, struct log_source *src, const char *buf, size_t len)
{
    if (!ensure_line(src))
        return;
    clock_read(mux);
    while (len > 0) {
        size_t room = LOGMUX_LINE_MAX - src->len;
        size_t n = len < room ? len : room;
        memcpy(src->line + src->len, buf, n);
        size_t old = src->len;
        src->len += n;
        split_lines(mux, src, old);
        buf += n;
        len -= n;
    }
}

void logmux_source_close(struct logmux *mux, struct log_source *src)
{
    if (!src)
        return;
    clock_read(mux);
    if (src->len > 0)
        enqueue(mux, src, src->line, src->len, 0);
    src->len = 0;
    report_drops(mux, src);
    if (src->dropped_lines) {
        /* Init's own source is full: carry the count over so it is still reported. */
        mux->self.dropped_lines += src->dropped_lines;
        mux->self.dropped_bytes += src->dropped_bytes;
    }
    free(src->line);
    src->line = NULL;
    src->closed = 1;
    if (src->queued == 0)
        source_release(src);
}

/* ---- output ---- */

static void drop_all_queued(struct logmux *mux)
{
    while (mux->first) {
        struct chunk *c = mux->first;
        while (c->head < c->tail) {
            struct rec_hdr h;
            memcpy(&h, c->data + c->head, sizeof(h));
            mux->stats.dropped_records++;
            mux->stats.dropped_bytes += h.len;
            c->head += (sizeof(h) + h.len + 7u) & ~(size_t)7u;
            record_written(mux, h.src, h.len);
        }
        mux->first = c->next;
        free(c);
    }
    mux->last = NULL;
    mux->head_written = 0;
}

int logmux_flush(struct logmux *mux)
{
    while (mux->first && !mux->dead) {
        struct iovec iov[IOV_BATCH];
        int n = 0;
        size_t skip = mux->head_written;
        for (struct chunk *c = mux->first; c && n < IOV_BATCH; c = c->next) {
            for (size_t off = c->head; off < c->tail && n < IOV_BATCH;) {
                struct rec_hdr h;
                memcpy(&h, c->data + off, sizeof(h));
                unsigned char *p = c->data + off + sizeof(h);
                iov[n].iov_base = p + skip;
                iov[n].iov_len = h.len - skip;
                skip = 0;
                n++;
                off += (sizeof(h) + h.len + 7u) & ~(size_t)7u;
            }
        }
        if (n == 0)
            break;
        ssize_t w = writev(mux->fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return 1;
            /* The reader is gone (EPIPE) or stdout is unusable: from now on records are
             * only counted. Other errors (a full disk) may pass: drop what is queued,
             * counted, and try again with the next records. */
            if (errno == EPIPE || errno == EBADF || errno == EINVAL)
                mux->dead = 1;
            drop_all_queued(mux);
            return 0;
        }
        size_t left = (size_t)w;
        while (left > 0 && mux->first) {
            struct chunk *c = mux->first;
            struct rec_hdr h;
            memcpy(&h, c->data + c->head, sizeof(h));
            size_t rest = h.len - mux->head_written;
            if (left < rest) {
                mux->head_written += left;
                break;
            }
            left -= rest;
            mux->head_written = 0;
            c->head += (sizeof(h) + h.len + 7u) & ~(size_t)7u;
            record_written(mux, h.src, h.len);
            if (c->head >= c->tail && c == mux->last) {
                /* Empty queue: reuse the chunk from its start. */
                c->head = c->tail = 0;
                mux->first = mux->last = NULL;
                if (!mux->spare)
                    mux->spare = c;
                else
                    free(c);
            } else if (c->head >= c->tail) {
                mux->first = c->next;
                if (!mux->spare)
                    mux->spare = c;
                else
                    free(c);
            }
        }
    }
    return mux->first != NULL;
}

void logmux_free(struct logmux *mux)
{
    if (!mux)
        return;
    if (mux->saved_flags >= 0)
        fcntl(mux->fd, F_SETFL, mux->saved_flags); /* blocking again: write out the rest */
    logmux_flush(mux);
    if (mux->self.dropped_lines && !mux->dead) {
        /* Room again after the flush: the last word is how much was lost. */
        clock_read(mux);
        report_drops(mux, &mux->self);
        logmux_flush(mux);
    }
    if (mux->first)
        drop_all_queued(mux);
    free(mux->spare);
    free(mux->self.line);
    free(mux);
}
