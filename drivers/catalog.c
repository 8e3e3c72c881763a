/*
 * The registry seen from outside: find a built-in driver by name, and list
 * them all with the keys of their params tables for a person
 * (edgetel-agent --list-drivers). The registry itself is generated
 * (drivers/registry.c.in).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "driver.h"
#include "params.h"

const struct et_driver *et_driver_find(const char *name)
{
    for (size_t i = 0; i < et_n_drivers; i++)
        if (strcmp(et_drivers[i]->name, name) == 0)
            return et_drivers[i];
    return NULL;
}

/*
 *   bme280: Bosch BME280 temperature, pressure and humidity over I2C
 *     address (integer, 0x for hex, 0x03 to 0x77; default 0x76)
 *         7-bit I2C address of the sensor
 */
int et_drivers_print(FILE *out)
{
    fprintf(out, "Built-in drivers. A [collector NAME] section with type = DRIVER takes the\n"
                 "keys listed under its driver besides type, interval, enabled and tags.\n");
    for (size_t i = 0; i < et_n_drivers; i++) {
        const struct et_driver *drv = et_drivers[i];

        fprintf(out, "\n%s: %s\n", drv->name, drv->help ? drv->help : "");
        if (!drv->n_params)
            fprintf(out, "    (no keys of its own)\n");
        for (size_t k = 0; k < drv->n_params; k++) {
            const struct et_key *p = &drv->params[k];
            char what[256];

            et_key_describe(p, what, sizeof(what));
            fprintf(out, "    %s (%s)\n        %s\n", p->name, what, p->help ? p->help : "");
        }
    }
    return fflush(out) == 0 && !ferror(out) ? 0 : -EIO;
}
