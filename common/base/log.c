#include "edgetel/log.h"

#include "edgetel/text.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *log_progname = "edgetel";
static enum et_log_level log_level = ET_LOG_INFO;

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
    fprintf(stderr, "%s[%s] %s: %s\n", log_progname, level_names[level],
            component ? component : "-", text);
}

void et_log(enum et_log_level level, const char *component, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    et_vlog(level, component, fmt, ap);
    va_end(ap);
}
