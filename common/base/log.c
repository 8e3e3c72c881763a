#include "edgetel/log.h"

#include "edgetel/text.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *log_progname = "edgetel";
static enum et_log_level log_level = ET_LOG_INFO;
static bool log_timestamps;

static const char *const level_names[] = {
    [ET_LOG_ERROR] = "error",
    [ET_LOG_WARN] = "warn",
    [ET_LOG_INFO] = "info",
    [ET_LOG_DEBUG] = "debug",
};

void et_log_init(const char *progname, enum et_log_level level)
{
    if (progname)
        log_progname = progname;
    log_level = level;
}

void et_log_set_timestamps(bool on)
{
    log_timestamps = on;
}

/*
 * systemd sets JOURNAL_STREAM to "<device>:<inode>" of the stream it
 * connected to the service's stdout/stderr; it is only ours if stderr is
 * still that stream (a program started from such a service with its
 * stderr sent elsewhere inherits the variable). systemd.exec(5),
 * "$JOURNAL_STREAM".
 */
bool et_log_under_journald(void)
{
    const char *env = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    char end;

    if (!env || sscanf(env, "%llu:%llu%c", &dev, &ino, &end) != 2)
        return false;
    if (fstat(STDERR_FILENO, &st) != 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

/* "2025-06-01T12:34:56.789+02:00 " (RFC 3339, local time), or "" when off. */
static const char *format_stamp(char *buf, size_t size)
{
    struct timespec ts;
    struct tm tm;
    char zone[8];
    size_t n;

    buf[0] = '\0';
    if (!log_timestamps || clock_gettime(CLOCK_REALTIME, &ts) != 0 ||
        !localtime_r(&ts.tv_sec, &tm))
        return buf;
    n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    if (n == 0 || strftime(zone, sizeof(zone), "%z", &tm) != 5) {
        buf[0] = '\0';
        return buf;
    }
    /* %z is "+0200"; RFC 3339 writes "+02:00". */
    snprintf(buf + n, size - n, ".%03ld%.3s:%.2s ", ts.tv_nsec / 1000000, zone, zone + 3);
    return buf;
}

void et_log_set_level(enum et_log_level level)
{
    log_level = level;
}

int et_log_parse_level(const char *s, enum et_log_level *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum et_log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

bool et_log_enabled(enum et_log_level level)
{
    return level <= log_level;
}

void et_vlog(enum et_log_level level, const char *component, const char *fmt, va_list ap)
{
    char msg[1024], shown[ET_TEXT_ESCAPED_MAX(sizeof(msg))];
    const char *text = msg;
    char stamp[40];

    if (!et_log_enabled(level))
        return;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    /*
     * A message quotes what devices and files said (a Status reason, a
     * metric name): escaped here, once for every line, so a newline in it
     * cannot forge a line and an escape sequence cannot rewrite the
     * operator's terminal. The line's own newline is the one below.
     */
    if (et_text_needs_escape(msg))
        text = et_text_escape(msg, shown, sizeof(shown));
    /* One fprintf per line so lines from Paho's threads do not interleave. */
    fprintf(stderr, "%s%s[%s] %s: %s\n", format_stamp(stamp, sizeof(stamp)), log_progname,
            level_names[level], component ? component : "-", text);
}

void et_log(enum et_log_level level, const char *component, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    et_vlog(level, component, fmt, ap);
    va_end(ap);
}
