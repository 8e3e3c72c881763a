/*
 * Shared by the agent config tests (tests/unit/test_config*.c): parse a
 * text that must succeed, or fail with an exact "file:line: message" and
 * an empty result.
 */
#ifndef EDGETEL_TESTS_CONFIG_TEST_H
#define EDGETEL_TESTS_CONFIG_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "edgetel/codec.h"
#include "edgetel/config.h"
#include "edgetel/ini.h"

#define NAME "agent.conf"

/* TLS settings that satisfy the whole-config check when a host is set. */
#define TLS "ca = /etc/edgetel/ca.pem\ncert = /etc/edgetel/dev.pem\nkey = /etc/edgetel/dev.key\n"

static inline bool is_zero(const void *p, size_t n)
{
    const unsigned char *b = p;

    for (size_t i = 0; i < n; i++) {
        if (b[i])
            return false;
    }
    return true;
}

/* Parse text that must fail; check rc, the exact message, and that the
 * result was left empty. */
static inline void expect_error_rc(const char *text, int rc_expected, const char *msg)
{
    struct et_config c;
    char err[512];
    int rc;

    memset(&c, 0xA5, sizeof(c));
    rc = et_config_parse(text, NAME, &c, err, sizeof(err));
    if (rc != rc_expected || strcmp(err, msg) != 0)
        print_error("text:\n%s\nrc %d, message:\n  %s\nexpected rc %d, message:\n  %s\n", text,
                    rc, err, rc_expected, msg);
    assert_int_equal(rc, rc_expected);
    assert_string_equal(err, msg);
    assert_true(is_zero(&c, sizeof(c)));
}

static inline void expect_error(const char *text, const char *msg)
{
    expect_error_rc(text, -EINVAL, msg);
}

static inline void parse_ok(const char *text, struct et_config *c)
{
    char err[512] = "";
    int rc = et_config_parse(text, NAME, c, err, sizeof(err));

    if (rc)
        print_error("unexpected error %d: %s\n", rc, err);
    assert_int_equal(rc, 0);
}

static inline bool host_name_is_device_id(void)
{
    char host[256] = "";

    gethostname(host, sizeof(host) - 1);
    return et_device_id_valid(host);
}

#endif
