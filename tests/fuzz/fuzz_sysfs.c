/*
 * libFuzzer target for the sysfs parsers of the sensor and board drivers.
 *   clang, -DET_FUZZ=ON; run: ./fuzz_sysfs -max_len=512
 *
 * What every input must keep is checked in fuzz_harness.h (FUZZ_CHECK):
 * values of the channel's type, finite numbers, a readable dev->err.
 */
#include "fuzz_harness.h"

static const struct fuzz_case sysfs_cases[] = {
    { "thermal", "/sys/class/thermal/thermal_zone0/temp" },
    { "thermal", "/sys/class/thermal/thermal_zone0/type" },
    { "throttle", "/sys/devices/platform/soc/soc:firmware/get_throttled" },
    { "ds18b20", "/sys/bus/w1/devices/28-01193a5f2e6b/w1_slave" },
    { "hwmon", "/sys/class/hwmon/hwmon0/temp1_input" },
    { "hwmon", "/sys/class/hwmon/hwmon0/name" },
    { "iio", "/sys/bus/iio/devices/iio:device0/in_temp_raw" },
    { "iio", "/sys/bus/iio/devices/iio:device0/in_temp_offset" },
    { "iio", "/sys/bus/iio/devices/iio:device0/in_temp_scale" },
    { "iio", "/sys/bus/iio/devices/iio:device0/name" },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The Pi 5 tree has one IIO device with raw, offset and scale files. */
    return fuzz_run(sysfs_cases, sizeof(sysfs_cases) / sizeof(sysfs_cases[0]),
                    ET_SOURCE_DIR "/tests/drivers/fixtures/pi5", data, size);
}
