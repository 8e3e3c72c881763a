/*
 * Fake clocks: a test sets and advances them explicitly.
 */
#include <string.h>

#include "edgetel/platform.h"
#include "et_fake.h"

/* The clock a test controls; the zero value is "both clocks at 0, unsynced". */
static struct {
    int64_t mono_ms;
    int64_t wall_ms;
    bool synced;
    uint8_t boot_id[16];
} fake_clock;

void et_fake_time_set(int64_t mono_ms, int64_t wall_ms, bool synced)
{
    fake_clock.mono_ms = mono_ms;
    fake_clock.wall_ms = wall_ms;
    fake_clock.synced = synced;
}

void et_fake_time_advance(int64_t ms)
{
    fake_clock.mono_ms += ms;
    fake_clock.wall_ms += ms;
}

void et_fake_time_set_boot_id(const uint8_t id[16])
{
    memcpy(fake_clock.boot_id, id, sizeof(fake_clock.boot_id));
}

void et_fake_time_reset(void)
{
    memset(&fake_clock, 0, sizeof(fake_clock));
}

int64_t et_time_mono_ms(void)
{
    return fake_clock.mono_ms;
}

int64_t et_time_wall_ms(void)
{
    return fake_clock.wall_ms;
}

bool et_time_synced(void)
{
    return fake_clock.synced;
}

void et_time_boot_id(uint8_t out[16])
{
    memcpy(out, fake_clock.boot_id, sizeof(fake_clock.boot_id));
}
