/*
 * I2C through the kernel's i2c-dev interface (/dev/i2c-N). Register reads
 * are one combined I2C_RDWR transfer (write the register address, repeated
 * start, read), which is what sensors like the BME280 expect.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/i2c-dev.h>
#include <linux/i2c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "edgetel/platform.h"

/* Longest register write we build on the stack: register byte + payload. */
#define ET_I2C_WRITE_MAX 32

struct et_i2c {
    int fd;
    uint16_t addr;
};

int et_i2c_open(struct et_i2c **out, int bus, uint16_t addr)
{
    struct et_i2c *i2c;
    char path[32];
    unsigned long funcs = 0;
    int ret;

    *out = NULL;
    if (bus < 0 || addr > 0x7f)
        return -EINVAL;
    i2c = calloc(1, sizeof(*i2c));
    if (!i2c)
        return -ENOMEM;
    i2c->addr = addr;
    snprintf(path, sizeof(path), "/dev/i2c-%d", bus);
    i2c->fd = open(path, O_RDWR | O_CLOEXEC);
    if (i2c->fd < 0) {
        ret = -errno;
        goto err_free;
    }
    /* Combined transfers need a plain I2C adapter, not an SMBus-only one. */
    if (ioctl(i2c->fd, I2C_FUNCS, &funcs) < 0) {
        ret = -errno;
        goto err_close;
    }
    if (!(funcs & I2C_FUNC_I2C)) {
        ret = -EOPNOTSUPP;
        goto err_close;
    }
    *out = i2c;
    return 0;

err_close:
    close(i2c->fd);
err_free:
    free(i2c);
    return ret;
}

int et_i2c_read_reg(struct et_i2c *i2c, uint8_t reg, uint8_t *buf, size_t len)
{
    struct i2c_msg msgs[2] = {
        { .addr = i2c->addr, .flags = 0, .len = 1, .buf = &reg },
        { .addr = i2c->addr, .flags = I2C_M_RD, .len = (uint16_t)len, .buf = buf },
    };
    struct i2c_rdwr_ioctl_data xfer = { .msgs = msgs, .nmsgs = 2 };

    if (len == 0 || len > 0xffff)
        return -EINVAL;
    if (ioctl(i2c->fd, I2C_RDWR, &xfer) < 0)
        return -errno;
    return 0;
}

int et_i2c_write_reg(struct et_i2c *i2c, uint8_t reg, const uint8_t *buf, size_t len)
{
    uint8_t frame[ET_I2C_WRITE_MAX];
    struct i2c_msg msg = { .addr = i2c->addr, .flags = 0, .len = (uint16_t)(len + 1), .buf = frame };
    struct i2c_rdwr_ioctl_data xfer = { .msgs = &msg, .nmsgs = 1 };

    if (len + 1 > sizeof(frame))
        return -EINVAL;
    frame[0] = reg;
    if (len)
        memcpy(frame + 1, buf, len);
    if (ioctl(i2c->fd, I2C_RDWR, &xfer) < 0)
        return -errno;
    return 0;
}

void et_i2c_close(struct et_i2c *i2c)
{
    if (!i2c)
        return;
    close(i2c->fd);
    free(i2c);
}
