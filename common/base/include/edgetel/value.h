/*
 * A typed measured value, as drivers produce it and the wire carries it.
 */
#ifndef EDGETEL_VALUE_H
#define EDGETEL_VALUE_H

#include <stdbool.h>
#include <stdint.h>

enum et_type {
    ET_TYPE_F64 = 0,
    ET_TYPE_I64 = 1,
    ET_TYPE_BOOL = 2,
    ET_TYPE_STR = 3,
};

/* Longest string value a sample may carry, without the NUL. */
#define ET_VALUE_STR_MAX 127

struct et_value {
    enum et_type type;
    union {
        double f64;
        int64_t i64;
        bool b;
        char str[ET_VALUE_STR_MAX + 1];
    } u;
    /*
     * The step the value was measured in (its channel's resolution, like
     * Linux IIO's scale): the wire sends value / resolution as an integer.
     * 0: none declared, the value travels as it is (an F64 in 9 bytes).
     * For an I64 a whole number: a value that is not a multiple of it
     * travels as it is too, so nothing is lost.
     */
    double resolution;
};

static inline struct et_value et_value_f64(double v)
{
    struct et_value out = { .type = ET_TYPE_F64, .u.f64 = v };
    return out;
}

static inline struct et_value et_value_i64(int64_t v)
{
    struct et_value out = { .type = ET_TYPE_I64, .u.i64 = v };
    return out;
}

static inline struct et_value et_value_bool(bool v)
{
    struct et_value out = { .type = ET_TYPE_BOOL, .u.b = v };
    return out;
}

#endif
