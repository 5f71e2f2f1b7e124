/* mmv_strerror: the text of a return code. */
#include "mmvec/common.h"

#include <string.h>

const char *mmv_strerror(int code)
{
    if (code == 0)
        return "success";
    /* strerror's static table for known values; never allocates for them in glibc. */
    return strerror(code < 0 ? -code : code);
}
