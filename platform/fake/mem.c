/*
 * et_mem_trim() of the fake platform: nothing to give back in tests.
 */
#include "edgetel/platform.h"

void et_mem_trim(void)
{
}
