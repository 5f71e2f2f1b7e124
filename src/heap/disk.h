/* The disk budget: block files never fill their filesystem nor pass MMVEC_MAX_DISK (disk.c). */
#ifndef MMVEC_DISK_H
#define MMVEC_DISK_H

#include "os.h"

#include <stddef.h>

/* May the file open at fd (a block's, in our folder) take `more` bytes of disk? 0, or -EDQUOT
 * (counted, and said once) when the free-space reserve (MMVEC_DISK_RESERVE) or the cap on block
 * files (MMVEC_MAX_DISK) would be passed: the caller then keeps the block in RAM, as on a full
 * disk. One fstatvfs; any thread, no lock. */
MMVI_HIDDEN int mmvi_disk_allow(int fd, size_t more);

#endif
