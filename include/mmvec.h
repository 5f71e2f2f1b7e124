/* mmvec: vectors and heap blocks in memory-mapped files, so a program can hold more data than
 * the machine has RAM. The umbrella header: include this one. */
#ifndef MMVEC_H
#define MMVEC_H

#include "mmvec/common.h"
#include "mmvec/namer.h"
#include "mmvec/segment.h"
#include "mmvec/vec.h"
#include "mmvec/typed.h"
#include "mmvec/alloc.h"
#include "mmvec/stats.h"

#endif
