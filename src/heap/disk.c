/* The disk budget (disk.h).
 *
 * mmvec writes heap contents to a disk that usually holds other things too: a user's home, a
 * database, the system. Filling it would break them (and our own next file would fail with a
 * SIGBUS-prone sparse tail on filesystems without fallocate). So before a block's file is made
 * or grown, its filesystem must keep MMVEC_DISK_RESERVE free (default: 5% of it, and at least
 * 1 GiB or 10% of it, whichever is less) as seen by an unprivileged user (f_bavail: never the
 * root-reserved blocks either), and block files together must stay within MMVEC_MAX_DISK (a
 * size or a share of the filesystem; none by default). Past either, the block stays in RAM, as
 * on a full disk: counted (fallbacks "disk full"), said once, NULL under MMVEC_STRICT. The
 * bytes in files are the bytes mapped from our files (stats), so no second count can drift. */
#define _GNU_SOURCE
#include "disk.h"

#include "log.h"
#include "options.h"
#include "stats_internal.h"

#include <errno.h>
#include <stdint.h>
#include <sys/statvfs.h>

#define GiB (1ull << 30)

static uint64_t reserve_of(uint64_t total)
{
    uint64_t r = mmvi_mark_of(&mmvi_opt.disk_reserve, total);
    if (!mmvi_opt.disk_reserve.given) {
        uint64_t floor = total / 10 < GiB ? total / 10 : GiB;
        r = r > floor ? r : floor;
    }
    return r;
}

static void say_mib(const char *what, uint64_t bytes, const char *var)
{
    mmvi_warn_once(MMVI_WARN_DISK, "%s (%llu MiB; %s): new blocks stay in RAM", what,
                   (unsigned long long)(bytes >> 20), var);
}

int mmvi_disk_allow(int fd, size_t more)
{
    struct statvfs st;
    if (fstatvfs(fd, &st) != 0)
        return 0; /* unknown: the filesystem itself will say when it is full */
    uint64_t unit = st.f_frsize ? st.f_frsize : st.f_bsize;
    uint64_t total = (uint64_t)st.f_blocks * unit, avail = (uint64_t)st.f_bavail * unit;
    uint64_t reserve = reserve_of(total);
    if (avail < reserve || avail - reserve < more) {
        mmvi_stat_inc(MMVI_STAT_DISK_REFUSED);
        say_mib("the block files' filesystem is down to its free-space reserve", reserve,
                "MMVEC_DISK_RESERVE");
        return -EDQUOT;
    }
    uint64_t cap = mmvi_mark_of(&mmvi_opt.max_disk, total);
    uint64_t held = mmvi_stat_get(MMVI_STAT_BYTES_MAPPED);
    if (cap && held + more > cap) {
        mmvi_stat_inc(MMVI_STAT_DISK_REFUSED);
        say_mib("block files reached their disk budget", cap, "MMVEC_MAX_DISK");
        return -EDQUOT;
    }
    return 0;
}
