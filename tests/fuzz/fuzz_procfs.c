/*
 * libFuzzer target for the /proc parsers of the system collectors.
 *   clang, -DET_FUZZ=ON; run: ./fuzz_procfs -max_len=8192
 *
 * What every input must keep is checked in fuzz_harness.h (FUZZ_CHECK):
 * values of the channel's type, finite numbers, a readable dev->err.
 */
#include "fuzz_harness.h"

static const struct fuzz_case procfs_cases[] = {
    { "cpu", "/proc/stat" },
    { "procs", "/proc/stat" },
    { "procs", "/proc/loadavg" },
    { "memory", "/proc/meminfo" },
    { "load", "/proc/loadavg" },
    { "uptime", "/proc/uptime" },
    { "disk", "/proc/self/mounts" },
    { "diskio", "/proc/diskstats" },
    { "net", "/proc/net/dev" },
    { "self", "/proc/self/status" },
    { "self", "/proc/self/stat" },
    { "self", "/proc/self/io" },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_run(procfs_cases, sizeof(procfs_cases) / sizeof(procfs_cases[0]),
                    ET_SOURCE_DIR "/tests/drivers/fixtures/pi4", data, size);
}
