/* The symbols helper, linked with -lmmvec_preload instead of preloaded: the standard names must
 * resolve into the interposer the same way (the CMake rule for linked_* helpers does the link). */
#include "symbols.c"
