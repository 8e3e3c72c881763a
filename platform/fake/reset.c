/*
 * One call that returns the whole fake platform to its start state.
 */
#include "et_fake.h"

void et_fake_reset(void)
{
    et_fake_time_reset();
    et_fake_fs_reset();
    et_fake_i2c_reset();
}
