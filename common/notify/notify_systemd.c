/* The notify backend on libsystemd (notify.h). */
#include "edgetel/notify.h"

#include <systemd/sd-daemon.h>

bool et_notify_supported(void)
{
    return true;
}

int et_notify_send(const char *state)
{
    return sd_notify(0, state);
}

uint64_t et_notify_watchdog_usec(void)
{
    uint64_t usec = 0;

    /* >0 only when $WATCHDOG_USEC is set and $WATCHDOG_PID, if set, is us. */
    return sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
}
