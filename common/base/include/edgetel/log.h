/*
 * Logging: one line per event on stderr (journald captures it), prefixed
 * with the level and the component, e.g.
 *   edgetel-agent[warn] uplink: connect to 127.0.0.1:8883 failed: TLS handshake
 * and, in the daemons when journald is not the one reading (which stamps
 * every line itself), with the local time first:
 *   2025-06-01T12:34:56.789+02:00 edgetel-agent[warn] uplink: ...
 *
 * The level is checked before anything is formatted. The log state is the
 * one piece of process-wide state in edgetel: it is set once at start-up,
 * before any thread exists, and only read afterwards.
 */
#ifndef EDGETEL_LOG_H
#define EDGETEL_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum et_log_level {
    ET_LOG_ERROR = 0,
    ET_LOG_WARN = 1,
    ET_LOG_INFO = 2,
    ET_LOG_DEBUG = 3,
};

/** Set the program name printed first on every line (borrowed, must outlive logging). */
void et_log_init(const char *progname, enum et_log_level level);

/** Change the level (a reloaded or pushed config). */
void et_log_set_level(enum et_log_level level);

/**
 * Start every line with the local time (RFC 3339, milliseconds) or not;
 * off until called. Called at start-up like et_log_init().
 */
void et_log_set_timestamps(bool on);

/**
 * Whether stderr is the stream journald connected to this service
 * ($JOURNAL_STREAM names stderr's device and inode), so its lines are
 * stamped already.
 */
bool et_log_under_journald(void);

/** Parse "error", "warn", "info" or "debug"; returns -EINVAL for anything else. */
int et_log_parse_level(const char *s, enum et_log_level *out);

bool et_log_enabled(enum et_log_level level);

void et_log(enum et_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void et_vlog(enum et_log_level level, const char *component, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#define et_error(comp, ...) et_log(ET_LOG_ERROR, comp, __VA_ARGS__)
#define et_warn(comp, ...)  et_log(ET_LOG_WARN, comp, __VA_ARGS__)
#define et_info(comp, ...)  et_log(ET_LOG_INFO, comp, __VA_ARGS__)
#define et_debug(comp, ...) \
    do { if (et_log_enabled(ET_LOG_DEBUG)) et_log(ET_LOG_DEBUG, comp, __VA_ARGS__); } while (0)

#endif
