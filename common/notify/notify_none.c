/*
 * The notify backend of a build without libsystemd (-DET_SYSTEMD=OFF, the
 * static agent): nothing is ever sent, so such a build runs under a
 * Type=simple unit without WatchdogSec= (notify.h).
 */
#include "edgetel/notify.h"

bool et_notify_supported(void)
{
    return false;
}

int et_notify_send(const char *state)
{
    (void)state;
    return 0;
}

uint64_t et_notify_watchdog_usec(void)
{
    return 0;
}
