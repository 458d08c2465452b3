/* Daemon logging: one line per record on stderr, written with a single write() so lines
 * from one process never tear. appliance-init adds the timestamp and the container/child
 * prefix, so records here carry only the level and the text. */
#ifndef APPLIANCE_LOG_H
#define APPLIANCE_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Records below this level are dropped; from LOG_LEVEL=debug|info|warn|error at start. */
void log_set_level(enum log_level level);
/* Records start with an ISO-8601 UTC timestamp ("2026-11-25T22:00:00.123Z ") when on; off
 * by default because appliance-init stamps its children's lines itself. */
void log_set_timestamps(int on);
/* Parses a LOG_LEVEL value; returns -1 for an unknown name. */
int log_level_parse(const char *name);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
