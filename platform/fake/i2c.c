/*
 * Fake I2C: devices are 256-byte register maps keyed by (bus, address),
 * with reads that auto-increment the register address as real sensors do,
 * and injectable faults (absent device, NACK on read, corrupted bytes).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "edgetel/platform.h"
#include "et_fake.h"

#define FAKE_I2C_MAX_DEVICES 16

struct fake_i2c_dev {
    bool used;
    int bus;
    uint16_t addr;
    uint8_t regs[256];
    enum et_fake_i2c_fault fault;
    et_fake_i2c_write_hook hook;
    void *hook_ctx;
    unsigned reads;
    unsigned writes;
};

/* The devices on the fake buses. */
static struct {
    struct fake_i2c_dev devs[FAKE_I2C_MAX_DEVICES];
} fake_i2c;

struct et_i2c {
    int bus;
    uint16_t addr;
};

static struct fake_i2c_dev *find_dev(int bus, uint16_t addr)
{
    for (size_t i = 0; i < FAKE_I2C_MAX_DEVICES; i++) {
        struct fake_i2c_dev *d = &fake_i2c.devs[i];

        if (d->used && d->bus == bus && d->addr == addr)
            return d;
    }
    return NULL;
}

static bool bus_exists(int bus)
{
    for (size_t i = 0; i < FAKE_I2C_MAX_DEVICES; i++)
        if (fake_i2c.devs[i].used && fake_i2c.devs[i].bus == bus)
            return true;
    return false;
}

int et_fake_i2c_add(int bus, uint16_t addr)
{
    struct fake_i2c_dev *d = find_dev(bus, addr);

    if (d)
        goto init;
    for (size_t i = 0; i < FAKE_I2C_MAX_DEVICES; i++) {
        if (!fake_i2c.devs[i].used) {
            d = &fake_i2c.devs[i];
            goto init;
        }
    }
    return -ENOSPC;
init:
    memset(d, 0, sizeof(*d));
    d->used = true;
    d->bus = bus;
    d->addr = addr;
    return 0;
}

int et_fake_i2c_set_regs(int bus, uint16_t addr, uint8_t reg, const uint8_t *data, size_t len)
{
    struct fake_i2c_dev *d = find_dev(bus, addr);

    if (!d)
        return -ENODEV;
    for (size_t i = 0; i < len; i++)
        d->regs[(uint8_t)(reg + i)] = data[i];
    return 0;
}

int et_fake_i2c_get_regs(int bus, uint16_t addr, uint8_t reg, uint8_t *data, size_t len)
{
    struct fake_i2c_dev *d = find_dev(bus, addr);

    if (!d)
        return -ENODEV;
    for (size_t i = 0; i < len; i++)
        data[i] = d->regs[(uint8_t)(reg + i)];
    return 0;
}

int et_fake_i2c_set_fault(int bus, uint16_t addr, enum et_fake_i2c_fault fault)
{
    struct fake_i2c_dev *d = find_dev(bus, addr);

    if (!d)
        return -ENODEV;
    d->fault = fault;
    return 0;
}

int et_fake_i2c_set_write_hook(int bus, uint16_t addr, et_fake_i2c_write_hook hook, void *ctx)
{
    struct fake_i2c_dev *d = find_dev(bus, addr);

    if (!d)
        return -ENODEV;
    d->hook = hook;
    d->hook_ctx = ctx;
    return 0;
}

int et_fake_i2c_counts(int bus, uint16_t addr, unsigned *reads, unsigned *writes)
{
    struct fake_i2c_dev *d = find_dev(bus, addr);

    if (!d)
        return -ENODEV;
    if (reads)
        *reads = d->reads;
    if (writes)
        *writes = d->writes;
    return 0;
}

void et_fake_i2c_reset(void)
{
    memset(&fake_i2c, 0, sizeof(fake_i2c));
}

int et_i2c_open(struct et_i2c **out, int bus, uint16_t addr)
{
    struct et_i2c *i2c;

    *out = NULL;
    if (bus < 0 || addr > 0x7f)
        return -EINVAL;
    if (!bus_exists(bus))
        return -ENOENT;
    i2c = calloc(1, sizeof(*i2c));
    if (!i2c)
        return -ENOMEM;
    i2c->bus = bus;
    i2c->addr = addr;
    *out = i2c;
    return 0;
}

int et_i2c_read_reg(struct et_i2c *i2c, uint8_t reg, uint8_t *buf, size_t len)
{
    struct fake_i2c_dev *d = find_dev(i2c->bus, i2c->addr);

    if (len == 0)
        return -EINVAL;
    if (!d || d->fault == ET_FAKE_I2C_ABSENT)
        return -ENXIO;
    d->reads++;
    if (d->fault == ET_FAKE_I2C_NACK_READ)
        return -EREMOTEIO;
    for (size_t i = 0; i < len; i++) {
        buf[i] = d->regs[(uint8_t)(reg + i)];
        if (d->fault == ET_FAKE_I2C_CORRUPT)
            buf[i] = (uint8_t)~buf[i];
    }
    return 0;
}

int et_i2c_write_reg(struct et_i2c *i2c, uint8_t reg, const uint8_t *buf, size_t len)
{
    struct fake_i2c_dev *d = find_dev(i2c->bus, i2c->addr);

    if (!d || d->fault == ET_FAKE_I2C_ABSENT)
        return -ENXIO;
    d->writes++;
    for (size_t i = 0; i < len; i++)
        d->regs[(uint8_t)(reg + i)] = buf[i];
    if (d->hook)
        d->hook(d->hook_ctx, d->regs, reg, buf, len);
    return 0;
}

void et_i2c_close(struct et_i2c *i2c)
{
    free(i2c);
}
