/* mmvec: shared definitions of the public API.
 *
 * Conventions, everywhere in mmvec:
 *  - a function that can fail returns 0 on success or a negative errno value (-ENOMEM, -EINVAL, ...);
 *  - a NULL handle, a zero element size, a size that overflows or an index out of range is an
 *    error code (or NULL/false where the function returns a pointer/bool), never a crash;
 *  - the library prints nothing unless asked to (MMVEC_LOG, MMVEC_STATS).
 */
#ifndef MMVEC_COMMON_H
#define MMVEC_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MMV_VERSION_MAJOR 0
#define MMV_VERSION_MINOR 1
#define MMV_VERSION_PATCH 0
#define MMV_VERSION_STRING "0.1.0"

#if defined(__GNUC__)
#define MMV_API __attribute__((visibility("default")))
#else
#define MMV_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* A human-readable text for an mmvec return code (0 or a negative errno). */
MMV_API const char *mmv_strerror(int code);

/* Sizes as every MMVEC_* variable reads them: "4096", "64K", "1M", "2GiB", "1tb" (powers of
 * 1024). 0, -EINVAL for garbage or -ERANGE for overflow; *out untouched on error. */
MMV_API int mmv_parse_size(const char *s, size_t *out);

/* "64M" (from 64M up: *max = SIZE_MAX) or "64M:1G" (inclusive), as MMVEC_THRESHOLD reads it. */
MMV_API int mmv_parse_range(const char *s, size_t *min, size_t *max);

/* Writes the effective configuration (every MMVEC_* variable with its value in force and one
 * line of doc) to the descriptor fd. 0 or -EINVAL. */
MMV_API int mmv_config_print(int fd);

#ifdef __cplusplus
}
#endif

#endif
