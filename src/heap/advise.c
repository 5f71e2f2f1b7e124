/* The advisor: how file blocks are used out of core, and what the kernel should do about it.
 * Two jobs: read-around off where it is wasted (MMVEC_ADVICE=auto, below), and, out of core,
 * the way of a fill or a scan: the pages behind its front written back early, and dropped once
 * clean behind a fill of a block larger than the memory limit (MMVEC_BEHIND=write, the default;
 * with MMVEC_BEHIND=on dropped behind every pass, and read ahead: "behind the front"), and the
 * chunks ahead of it that are cached only here and there dropped, for large folios ("ahead of
 * the front").
 *
 * Why. A fault on a file page the page cache does not hold makes the kernel read around it: up
 * to the disk's read_ahead_kb, centred on the miss (8 MiB on this project's test disk, 128 KiB
 * by default). That is what makes a sequential scan of a file block fast, and what ruins random
 * access: each miss reads up to 2048 pages to use one, and pushes as many useful ones out. The
 * kernel stops reading around a file after 100 more misses than hits, but pages it read around
 * and then mapped count as hits, so in measured runs it never stopped: 8.7 MB read per fault,
 * 100x slower than swap (bench/README.md, issue 12). Swap's read-ahead adapts per mapping; a
 * file mapping gets the same only from the process: MADV_RANDOM turns read-around off for a
 * range (one page per miss), MADV_NORMAL gives it back.
 *
 * How. A thread wakes every 100 ms, once file blocks exist (a heap that fits has none, and no
 * thread). It reads the process's fault and read counters (one getrusage). When reads outrun
 * faults (under 4 faults per MiB read: pages come in that nobody maps) for 8 rounds in a row
 * (the kernel's own heuristic gets that long to stop it), it samples pages of each file block:
 * cached (mincore) and mapped (/proc/self/pagemap's present bit). A block whose cached pages are
 * mostly unmapped wastes its read-around, and unless it is being filled or scanned in order
 * (its mapped pages in runs of 64 and more: then the waste is the window's part behind the
 * front, cheap sequential I/O) it gets MADV_RANDOM for a spell of 1 s, doubled (up to 8 s)
 * each time waste comes back right after a spell (2 rounds are enough then). Then the kernel's
 * read-around comes back, which is right for every sequential pattern: a scan that starts
 * during a spell runs one page per fault until the spell ends. Spells are short and rare
 * because MADV_RANDOM costs: one small folio per fault, and since Linux 6.3 reclaim ignores the
 * accessed bits of such a mapping (vma_has_recency); a first version that acted at once, also
 * during fills, made them 1.8x slower and wrote 1.6x as much back (bench/README.md).
 *
 * Cost. Idle: one getrusage and one trylock per 100 ms. Sampling (at most 512 pages, two
 * system calls each) only while reads outrun faults or a spell runs; a decision reads the
 * block's whole page table (about 2 ms per GiB) with the heap lock held, so that large
 * requests of other threads may wait that long then. Behind the front: a window of the page
 * table per large block and round (a fraction of a millisecond), the whole block every third (Nth
 * for N GiB) round, and ahead of a front one mincore of 256 MiB.
 * The thread blocks every signal, never writes into a block and keeps no descriptor between
 * rounds. All it changes is under the heap lock, by trylock: it never makes the program wait (a
 * busy round is skipped); only the page-cache drop of the chunks cleared ahead of a front
 * (posix_fadvise on the file, which may wait for the disk's queue) comes after the lock. */
#define _GNU_SOURCE
#include "advise.h"

#include "block_ops.h"
#include "fds.h"
#include "heap.h"
#include "pressure.h"
#include "publish.h"
#include "log.h"
#include "options.h"
#include "stats_internal.h"
#include "stopworld.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define TICK_MS 100
#define SETTLE_TICK_MS 20          /* after a fork, memory close to tight (mmvi_fork_settle) */
#define MIN_READ (16ull << 20)     /* reads in a tick below this never suggest waste */
#define FAULTS_PER_MIB 4           /* fewer faults per MiB read (over 256 KiB a fault): pages
                                      nobody maps */
#define SAMPLES_PER_TICK 512u
#define DECIDE_AT 8                /* cached samples a block needs for a decision */
#define SPELL_MS 1000u
#define MAX_LEVEL 3
#define FIRST_TICKS 8              /* rounds of waste in a row before the first spell: the
                                      kernel's own heuristic gets its chance first */
#define AGAIN_TICKS 2              /* ... and right after a spell, when it already failed */
#define PROBE_MS 3000u             /* waste this soon after a spell: the next spell is longer */
#define RUN 64                     /* mapped pages in a row that show use in order */
#define STILL_LOOKS 3              /* looks at a front that did not move: no longer in order */

static struct {
    int started;          /* the thread runs (relaxed atomic; 0 again in a fork child) */
    pid_t tid;            /* relaxed atomic */
    size_t random_blocks; /* blocks in a spell (heap lock) */
    unsigned waste_ticks; /* rounds in a row whose counters showed waste (advisor thread) */
    uint64_t spell_end_ms; /* when the last spell ended (heap lock) */
    uint64_t rnd;         /* the advisor thread's own */
    struct rusage last;   /* the advisor thread's own */
} adv;

struct tally {
    uint64_t read;   /* bytes read from disk since the last round */
    uint64_t dirtied; /* bytes the process dirtied for the disk since the last round */
    uint64_t faults; /* page faults, major and minor */
    int pagemap;     /* /proc/self/pagemap for this round, or -1 */
};

static uint64_t next_rnd(void)
{
    adv.rnd ^= adv.rnd << 13;
    adv.rnd ^= adv.rnd >> 7;
    adv.rnd ^= adv.rnd << 17;
    return adv.rnd;
}

static int candidate(const struct mmvi_block *b)
{
    return b->state == MMVI_BLOCK_LIVE && b->backing != MMVI_BACK_ANON && !b->sealed &&
           !b->sparse && !__atomic_load_n(&b->busy, __ATOMIC_RELAXED);
}

/* Is the page at addr mapped in this process? -1 when pagemap cannot say. */
static int mapped(int pagemap, uintptr_t addr, uint64_t *entries, int n)
{
    off_t at = (off_t)(addr / mmvi_page_size()) * 8;
    ssize_t got = pread(pagemap, entries, (size_t)n * 8, at);
    return got < 8 ? -1 : (int)(got / 8);
}

static void set_random(struct mmvi_block *b, uint64_t now)
{
    int again = b->ra_since_ms && now - b->ra_since_ms < PROBE_MS;
    b->ra_level = again ? (uint8_t)(b->ra_level < MAX_LEVEL ? b->ra_level + 1 : MAX_LEVEL) : 0;
    mmvi_os_advise((void *)b->addr, b->size, MADV_RANDOM);
    b->ra_random = 1;
    b->ra_seq = 0;
    b->ra_since_ms = now;
    adv.random_blocks++;
    mmvi_stat_inc(MMVI_STAT_ADVISE_RANDOM);
    mmvi_log(2, "block %p: read-around wasted, off for %u ms", (void *)b->addr,
             SPELL_MS << b->ra_level);
}

static void set_normal(struct mmvi_block *b, uint64_t now)
{
    mmvi_os_advise((void *)b->addr, b->size, MADV_NORMAL);
    b->ra_random = 0;
    b->ra_since_ms = now;
    b->ra_cached = b->ra_unmapped = 0;
    adv.random_blocks--;
    adv.spell_end_ms = now;
    mmvi_stat_inc(MMVI_STAT_ADVISE_PROBES);
}

/* Samples k pages of b: how many the page cache holds, how many of those nobody maps. */
static void sample_waste(struct mmvi_block *b, unsigned k, int pagemap)
{
    size_t pages = b->size / mmvi_page_size();
    for (unsigned i = 0; i < k && b->ra_cached < UINT16_MAX; i++) {
        uintptr_t addr = b->addr + (uintptr_t)(next_rnd() % pages) * mmvi_page_size();
        unsigned char v = 0;
        uint64_t e;
        if (mincore((void *)addr, mmvi_page_size(), &v) != 0 || !(v & 1))
            continue;
        b->ra_cached++;
        if (mapped(pagemap, addr, &e, 1) == 1 && !(e >> 63))
            b->ra_unmapped++;
    }
    mmvi_stat_add(MMVI_STAT_ADVISE_SAMPLES, k);
}

/* Is b being written or read in order (a fill, a scan)? Then the pages mapped lie in long runs
 * (RUN pages and more) whose end moves, where random access leaves at most what the kernel maps
 * around one fault (fault_around_bytes: 16 pages). Read-around wasted there is the part of its window
 * behind the front: cheap, sequential I/O, and turning it off costs more (one small folio per
 * fault: a fill measured 1.6 GB/s with it, 0.9 GB/s without). */
static int in_order(struct mmvi_block *b, int pagemap)
{
    static uint64_t e[8192]; /* the advisor thread's, under the heap lock */
    size_t pages = b->size / mmvi_page_size(), mapped_pages = 0, in_runs = 0, run = 0, end = 0;
    /* The whole block's page table, a chunk at a time: a few ms for GiBs, once per decision. */
    for (size_t at = 0; at < pages;) {
        size_t n = pages - at < 8192 ? pages - at : 8192;
        ssize_t got = pread(pagemap, e, n * 8, (off_t)((b->addr / mmvi_page_size() + at) * 8));
        if (got < 8)
            return 0;
        n = (size_t)got / 8;
        for (size_t i = 0; i < n; i++) {
            if (e[i] >> 63) {
                mapped_pages++;
                if (++run == RUN)
                    in_runs += RUN;
                else if (run > RUN)
                    in_runs++;
                if (run >= RUN)
                    end = at + i + 1;
            } else {
                run = 0;
            }
        }
        at += n;
    }
    mmvi_stat_add(MMVI_STAT_ADVISE_SAMPLES, pages);
    /* A run left behind by a fill that ended stays mapped for a while: only a front that moved
     * since the last look shows use in order now. */
    int moved = end && end != b->ra_front;
    b->ra_front = end;
    b->ra_still = moved ? 0 : (uint8_t)(b->ra_still < 255 ? b->ra_still + 1 : 255);
    mmvi_log(2, "block %p: %zu pages mapped, %zu of them in runs of %d or more; front %s",
             (void *)b->addr, mapped_pages, in_runs, RUN, moved ? "moved" : "still");
    /* A fill stalled in reclaim for a moment is still a fill: three looks without movement. */
    return end && b->ra_still < STILL_LOOKS && 2 * in_runs >= mapped_pages;
}

/* Read-around is wasted on b: a spell without it, unless b is used in order. */
static void wasted(struct mmvi_block *b, const struct tally *t, uint64_t now)
{
    if (!in_order(b, t->pagemap))
        set_random(b, now);
}

static unsigned samples_for(const struct mmvi_block *b)
{
    size_t k = b->size >> 24; /* one per 16 MiB, from 2 to 64 */
    return k < 2 ? 2 : k > 64 ? 64 : (unsigned)k;
}

/* A block in a spell: at its end, the kernel's read-around comes back. */
static void spell(struct mmvi_block *b, uint64_t now)
{
    if (now - b->ra_since_ms >= (uint64_t)SPELL_MS << b->ra_level)
        set_normal(b, now);
}

/* Blocks that read around: sampled (within the round's budget), decided once they have enough
 * samples. Small blocks rarely reach that alone; they are decided together. */
static void check_waste(const struct tally *t, uint64_t now)
{
    uint64_t wanted = 0;
    for (struct mmvi_block *b = mmvi_heap.blocks; b; b = b->next)
        if (candidate(b) && !b->ra_random)
            wanted += samples_for(b);
    unsigned small_cached = 0, small_unmapped = 0;
    for (struct mmvi_block *b = mmvi_heap.blocks; b && wanted; b = b->next) {
        if (!candidate(b) || b->ra_random)
            continue;
        uint64_t k = samples_for(b);
        if (wanted > SAMPLES_PER_TICK) /* scaled down, rounded at random */
            k = (k * SAMPLES_PER_TICK + next_rnd() % wanted) / wanted;
        sample_waste(b, (unsigned)k, t->pagemap);
        if (samples_for(b) < 64) {
            small_cached += b->ra_cached;
            small_unmapped += b->ra_unmapped;
        } else if (b->ra_cached >= DECIDE_AT) {
            if (2u * b->ra_unmapped > b->ra_cached)
                wasted(b, t, now);
            b->ra_cached = b->ra_unmapped = 0;
        }
    }
    if (small_cached < 2 * DECIDE_AT)
        return;
    int waste = 2 * small_unmapped > small_cached;
    for (struct mmvi_block *b = mmvi_heap.blocks; b; b = b->next)
        if (candidate(b) && !b->ra_random && samples_for(b) < 64) {
            if (waste && b->ra_cached)
                wasted(b, t, now);
            b->ra_cached = b->ra_unmapped = 0;
        }
}

/* ---- out of core, in order: finished pages pushed out behind the front ----------------------
 * A fill or a scan of a block larger than half the memory limit leaves behind its front pages it
 * will not touch again soon (the block cannot stay cached whole anyway). Left to the kernel, the
 * program's own thread reclaims them when it faults, and a fill's dirty pages wait there for
 * their writeback. So the advisor starts their writeback a lag behind the front
 * (sync_file_range) and, where drop_behind says so, drops them once clean (MADV_PAGEOUT): on
 * another core, before the program's thread needs the memory; and with `on`, while the front
 * moves, the block is MADV_SEQUENTIAL (the kernel's read-ahead, not read-around). The default,
 * MMVEC_BEHIND=write, does the writeback, and the drop only behind a fill of a block larger than
 * the limit (drop_behind): the writeback alone made single-stream fills 1.12-1.92x faster (a
 * cgroup v1 group does not throttle dirtying: the program's thread waited for writeback in
 * reclaim), and the drop behind them 1.36x faster again (4 GiB); `on` (drop behind every pass, and
 * read ahead) won fills as often but scans moved both ways, in eight runs (bench/README.md).
 * The front is looked for near where it was (a window: a fraction of a millisecond), the whole
 * block every third round, or for a block of N GiB every Nth (about 2 ms per GiB: a new pass
 * starts elsewhere, and the first whole look used to come up to a second into a scan of two to
 * four); only a front that moved forward two rounds in a row counts, or once at the end of a
 * stretch of 32 MiB (random access to a small region also makes long runs of mapped pages, that
 * jump around). */
#define BEHIND_LAG ((size_t)16 << 20) /* bytes behind the front left alone: a scan may turn back */
#define FRONT_BACK 8192u              /* pages looked at behind the last front (32 MiB) ... */
#define FRONT_AHEAD 131072u           /* ... and ahead of it (512 MiB: more than a round's fill) */
#define WHOLE_EVERY 3                 /* rounds between looks at the whole block (at least) */
#define LONG_STRETCH 8192u            /* pages (32 MiB) mapped in a stretch: a pass under way as
                                         soon as its end moves forward */

static unsigned rounds; /* the advisor's rounds, for the whole-block looks */

static int worth_pushing(const struct mmvi_block *b, uint64_t limit)
{
    return candidate(b) && b->backing == MMVI_BACK_FILE && !b->ra_random && !b->frozen &&
           limit && limit != UINT64_MAX && b->size >= limit / 2;
}

/* Where the longest stretch of mapped pages in pages [from, to) of b ends (0: none). A stretch:
 * runs of RUN mapped pages or more, less than GAP apart (reclaim leaves holes). The longest,
 * not the last: a pass leaves its last pages mapped while nothing needs their room, and the
 * pages of a scan that passes there again are mapped in one long stretch behind its front,
 * while what the last pass left behind erodes into short ones (measured: a stretch of 640 MiB
 * behind a scan's front, the fill's last GiB in pieces of 2-122 MiB). */
#define GAP 256u /* pages (1 MiB) */
static uint64_t front_in(const struct mmvi_block *b, int pagemap, size_t from, size_t to,
                         uint64_t *len)
{
    static uint64_t e[8192]; /* the advisor thread's, under the heap lock */
    size_t page = mmvi_page_size(), run = 0;
    uint64_t begin = 0, end = 0, best = 0, best_len = 0;
    for (size_t at = from; at < to;) {
        size_t n = to - at < 8192 ? to - at : 8192;
        ssize_t got = pread(pagemap, e, n * 8, (off_t)((b->addr / page + at) * 8));
        if (got < 8)
            break;
        n = (size_t)got / 8;
        for (size_t i = 0; i < n; i++) {
            run = e[i] >> 63 ? run + 1 : 0;
            if (run < RUN)
                continue;
            uint64_t here = at + i + 1;
            if (run == RUN && (!end || here - RUN - end > GAP))
                begin = here - RUN; /* a new stretch */
            end = here;
            if (end - begin >= best_len) {
                best = end;
                best_len = end - begin;
            }
        }
        at += n;
    }
    mmvi_stat_add(MMVI_STAT_ADVISE_SAMPLES, to > from ? to - from : 0);
    *len = best_len;
    return best;
}

/* The front of b now: near the last one, or anywhere in b at a whole-block round (a front that
 * moved elsewhere: a new pass). */
static uint64_t front_of(const struct mmvi_block *b, int pagemap, uint64_t *len)
{
    size_t pages = b->size / mmvi_page_size();
    uint64_t last = b->ra_front;
    /* every third round, and a GiB's worth per round at most (~2 ms with the heap lock held) */
    size_t every = b->size >> 30 > WHOLE_EVERY ? b->size >> 30 : WHOLE_EVERY;
    if (!last || rounds % every == 0)
        return front_in(b, pagemap, 0, pages, len);
    size_t from = last > FRONT_BACK ? last - FRONT_BACK : 0;
    size_t to = pages - last > FRONT_AHEAD ? last + FRONT_AHEAD : pages;
    return front_in(b, pagemap, from, to, len);
}

/* While b is the one block whose front moves forward, the kernel reads ahead of it as for
 * read(2) (MADV_SEQUENTIAL: windows that grow, and large folios, where read-around reads order-0
 * pages centred on each miss); otherwise read-around is back. */
static void follow(struct mmvi_block *b, int on)
{
    if (b->ra_seq == on)
        return;
    mmvi_os_advise((void *)b->addr, b->size, on ? MADV_SEQUENTIAL : MADV_NORMAL);
    b->ra_seq = (uint8_t)on;
}

/* Looks for b's front this round. Returns whether it moved forward two rounds in a row, or this
 * round at the end of a stretch of LONG_STRETCH pages: a fill or a scan under way. */
static int track(struct mmvi_block *b, int pagemap)
{
    uint64_t last = b->ra_front, len = 0, front = front_of(b, pagemap, &len);
    int moving = front > last;
    b->ra_ahead = moving ? (uint8_t)(b->ra_ahead < 255 ? b->ra_ahead + 1 : 255) : 0;
    if (front)
        b->ra_front = front;
    if (front && front < b->ra_written) /* a new pass from the start */
        b->ra_written = b->ra_dropped = 0;
    return front && (b->ra_ahead >= 2 || (moving && len >= LONG_STRETCH));
}

/* Are the pages b's pass leaves behind its front to be dropped too? With MMVEC_BEHIND=on,
 * always; with write (the default), behind a fill of a block larger than the memory limit. Such a
 * block cannot stay cached whole, so what the pass leaves behind is gone before another pass
 * reaches it anyway, and the program's thread no longer has to reclaim those pages itself
 * while it faults, waiting for their writeback: a 4 GiB fill in 1 GiB 1.36x faster (median of
 * 14 A/B rounds; 2 GiB in 512 MiB: 1.05x), though the scan right after it, which meets the
 * writeback the fill no longer waited for, 0.89x (bench/README.md). A scan's pages are clean,
 * cheap for the kernel to reclaim, and dropping them too made a scan after random writes
 * 0.84x as fast (median of 9): a pass that dirtied less than half of its way this round (the
 * process's write accounting, getrusage) is left to the kernel. */
static int drop_behind(const struct mmvi_block *b, uint64_t limit, uint64_t way, uint64_t dirtied)
{
    return mmvi_opt.behind == MMVI_BEHIND_ON ||
           (b->size > limit && 2 * dirtied >= way);
}

/* The pages of b behind its front: written back, and dropped (MADV_PAGEOUT) where drop_behind
 * says so. A drop reaches back to what the round before wrote back: a fill's pages are still
 * under writeback at the first try (reclaim skips those) and go at the second, a round later;
 * a scan's (with `on`) are clean and go at once. */
static void push_behind(struct mmvi_block *b, uint64_t limit, uint64_t last_front,
                        uint64_t dirtied)
{
    size_t page = mmvi_page_size(), lag = BEHIND_LAG / page;
    uint64_t front = b->ra_front, last = b->ra_written;
    if (front > lag && front - lag > b->ra_written) {
        size_t len = (front - lag - b->ra_written) * page;
        mmvi_block_write_range(b, b->ra_written * page, len);
        mmvi_stat_add(MMVI_STAT_BEHIND_WRITTEN, len);
        b->ra_written = front - lag;
    }
    uint64_t way = front > last_front ? (front - last_front) * page : 0;
    if (!drop_behind(b, limit, way, dirtied)) {
        b->ra_dropped = b->ra_written; /* left to the kernel */
    } else if (b->ra_written > b->ra_dropped) {
        size_t len = (b->ra_written - b->ra_dropped) * page;
        if (madvise((void *)(b->addr + b->ra_dropped * page), len, MADV_PAGEOUT) == 0)
            mmvi_stat_add(MMVI_STAT_BEHIND_DROPPED, (b->ra_written - last) * page);
        b->ra_dropped = last;
    }
}

/* ---- ahead of the front: room for large folios ----------------------------------------------
 * The kernel reads a fill's or a scan's way in folios of up to 2 MiB (ext4 and most others since
 * Linux 6.x), but only into a range that holds no cached page yet: pages left here and there by
 * random access before (a quarter of a block, say) make it read one page per folio. Then the
 * program's thread, in the group's reclaim, pays for each page on its own (its LRU, its rmap
 * walk, its TLB flush), and the scan is bound by that CPU instead of the disk: 0.86-0.97 GB/s
 * after random read-modify-writes against 1.8-2.6 GB/s after a fill alone, with 99.7% of the
 * folios read at order 0 instead of 90% at order 9 (perf, bench/README.md). So the advisor drops
 * the 2 MiB chunks ahead of the front that are cached only here and there (under half their
 * pages): reading all of a chunk in one folio costs less than reclaiming its pages one by one.
 * A chunk cached mostly or wholly (a scan over what fits, the kernel's own read-ahead) is left
 * alone, and so is the read-ahead window right at the front. Dirty pages are not dropped: their
 * writeback starts, and a later round drops them once clean, if the front is still behind. */
#define CHUNK ((size_t)2 << 20)          /* the largest folio the kernel reads into a file */
#define AHEAD_SKIP ((size_t)16 << 20)    /* past the front: read-ahead may be in flight there */
#define AHEAD_SPAN ((size_t)256 << 20)   /* looked at per round: a round's way, at 2.5 GB/s */

/* Is chunk c of the mincore vector v cached only here and there (some pages, under half)? */
static int sparse_chunk(const unsigned char *v, size_t c, size_t per)
{
    size_t cached = 0;
    for (size_t i = c * per; i < (c + 1) * per; i++)
        cached += v[i] & 1;
    return cached && cached < per / 2;
}

/* The chunks unmapped this round, to drop from the page cache once the heap lock is released:
 * POSIX_FADV_DONTNEED starts the writeback of the dirty pages in its range and waits for room in
 * the disk's queue, which took over a second once, and touches only our file's page cache, not
 * the address space (safe even if the block is freed meanwhile). The advisor thread's own. */
#define MAX_DROPS 32
static struct {
    int fd;     /* the block's file, or -1 */
    unsigned n; /* ranges below */
    struct {
        size_t off, len;
    } r[MAX_DROPS];
} drops = {.fd = -1};

/* Unmaps [off, off+len) of b, and queues it to be dropped. Whether to go on. */
static int unmap_chunks(struct mmvi_block *b, size_t off, size_t len)
{
    if (drops.n == MAX_DROPS || (drops.fd < 0 && (drops.fd = mmvi_block_open_file(b)) < 0))
        return 0;
    if (mmvi_block_unmap_range(b, off, len) != 0)
        return 0;
    drops.r[drops.n].off = off;
    drops.r[drops.n++].len = len;
    mmvi_stat_add(MMVI_STAT_AHEAD_CLEARED, len);
    return 1;
}

/* After the lock: the chunks unmapped this round leave the page cache. A fork meanwhile gives
 * the child a copy of the descriptor, which the child closes (fds.c: it is listed until
 * mmvi_fds_close). */
static void drop_unmapped(void)
{
    int fd = drops.fd; /* only this thread sets it, under the heap lock */
    for (unsigned i = 0; fd >= 0 && i < drops.n; i++)
        posix_fadvise(fd, (off_t)drops.r[i].off, (off_t)drops.r[i].len, POSIX_FADV_DONTNEED);
    drops.fd = -1;
    drops.n = 0;
    mmvi_fds_close(fd);
}

/* Unmaps the chunks of [from, to) (chunk-aligned byte offsets in b) cached only here and there,
 * each run of adjacent ones in one call, and queues them for drop_unmapped. */
static void clear_chunks(struct mmvi_block *b, size_t from, size_t to)
{
    static unsigned char v[8 * CHUNK / 4096]; /* the advisor thread's, under the heap lock */
    size_t per = CHUNK / mmvi_page_size(), step = sizeof v / per * CHUNK;
    for (size_t at = from; at < to; at += step) {
        size_t n = ((to - at < step ? to - at : step)) / CHUNK, run = 0;
        if (mincore((void *)(b->addr + at), n * CHUNK, v) != 0)
            return;
        for (size_t c = 0; c <= n; c++) {
            if (c < n && sparse_chunk(v, c, per)) {
                run++;
                continue;
            }
            if (run && !unmap_chunks(b, at + (c - run) * CHUNK, run * CHUNK))
                return;
            run = 0;
        }
    }
}

static void clear_ahead(struct mmvi_block *b)
{
    size_t front = (size_t)b->ra_front * mmvi_page_size();
    size_t from = (front + AHEAD_SKIP + CHUNK - 1) / CHUNK * CHUNK;
    size_t to = (from + AHEAD_SPAN) / CHUNK * CHUNK;
    if (to > b->size / CHUNK * CHUNK)
        to = b->size / CHUNK * CHUNK;
    if (from < to)
        clear_chunks(b, from, to);
}

void mmvi_advise_freed(struct mmvi_block *b)
{
    if (b->ra_seq)
        mmvi_os_advise((void *)b->addr, b->size, MADV_NORMAL);
    b->ra_seq = b->ra_ahead = 0;
    b->ra_front = b->ra_written = b->ra_dropped = 0;
}

/* Only while one block is used in order: with 8 threads each filling its own 512 MiB block in a
 * 1 GiB group, pushing every stream measured worse than the kernel alone (0.80-0.93 GB/s against
 * 1.07-1.61, 2 runs); with several streams every block is left to the kernel. */
static void push_blocks(struct tally *t)
{
    uint64_t limit = mmvi_pressure_limit();
    struct mmvi_block *streaming = NULL;
    uint64_t streaming_was = 0; /* its front a round ago */
    int streams = 0;
    rounds++;
    for (struct mmvi_block *b = mmvi_heap.blocks; b; b = b->next) {
        if (!worth_pushing(b, limit))
            continue;
        if (t->pagemap < 0 &&
            (t->pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)) < 0)
            return;
        uint64_t was = b->ra_front;
        if (track(b, t->pagemap)) {
            streaming = b;
            streaming_was = was;
            streams++;
        }
    }
    for (struct mmvi_block *b = mmvi_heap.blocks; b; b = b->next)
        if (b->ra_seq && b->state == MMVI_BLOCK_LIVE && !(streams == 1 && b == streaming))
            follow(b, 0); /* no longer the one stream (or memory no longer tight) */
    if (streams == 1) {
        follow(streaming, mmvi_opt.behind == MMVI_BEHIND_ON);
        push_behind(streaming, limit, streaming_was, t->dirtied);
        clear_ahead(streaming);
    }
}

/* One round, under the lock. */
static void advise_blocks(struct tally *t, uint64_t now)
{
    if (mmvi_opt.behind)
        push_blocks(t);
    int waste = t->read >= MIN_READ && t->faults * (1ull << 20) < FAULTS_PER_MIB * t->read;
    adv.waste_ticks = waste ? adv.waste_ticks + 1 : 0;
    unsigned need = adv.spell_end_ms && now - adv.spell_end_ms < PROBE_MS ? AGAIN_TICKS
                                                                         : FIRST_TICKS;
    waste = adv.waste_ticks >= need;
    if (!waste && !adv.random_blocks)
        return;
    if (t->pagemap < 0)
        t->pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (t->pagemap < 0)
        return; /* without it nothing can tell wasted pages from used ones */
    /* Counted again each round: a block freed during its spell leaves the list as it is. */
    size_t in_spell = 0;
    for (struct mmvi_block *b = adv.random_blocks ? mmvi_heap.blocks : NULL; b; b = b->next)
        if (b->ra_random) {
            spell(b, now);
            in_spell += b->ra_random;
        }
    adv.random_blocks = in_spell;
    if (waste)
        check_waste(t, now);
}

static void tick(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0 || pthread_mutex_trylock(&mmvi_heap.lock) != 0)
        return; /* the counters keep: the next round sees both */
    struct tally t = {
        .read = (uint64_t)(ru.ru_inblock - adv.last.ru_inblock) * 512,
        .dirtied = (uint64_t)(ru.ru_oublock - adv.last.ru_oublock) * 512,
        .faults = (uint64_t)(ru.ru_majflt - adv.last.ru_majflt + ru.ru_minflt -
                             adv.last.ru_minflt),
        .pagemap = -1,
    };
    adv.last = ru;
    if (mmvi_heap.state == MMVI_HEAP_READY)
        advise_blocks(&t, mmvi_now_ms());
    if (t.pagemap >= 0)
        close(t.pagemap);
    pthread_mutex_unlock(&mmvi_heap.lock);
    drop_unmapped();
    mmvi_live_update(); /* the figures of a program that touches its blocks but asks for none */
}

static void *advisor(void *arg)
{
    (void)arg;
    prctl(PR_SET_NAME, "mmvec-advise", 0, 0, 0);
    pid_t tid = (pid_t)syscall(SYS_gettid);
    mmvi_stw_ignore(tid);
    __atomic_store_n(&adv.tid, tid, __ATOMIC_RELEASE);
    adv.rnd = (uint64_t)tid * 0x9e3779b97f4a7c15ull | 1;
    getrusage(RUSAGE_SELF, &adv.last);
    for (uint64_t last = mmvi_now_ms();;) {
        /* After a fork, blocks frozen or copied on write are looked at more often when memory
         * is close to tight: our writes fill RAM at memory speed then (fork.c). */
        int unsettled = __atomic_load_n(&mmvi_heap.unsettled, __ATOMIC_RELAXED);
        struct timespec ts = {
            0, (unsettled == MMVI_UNSETTLED_NEAR ? SETTLE_TICK_MS : TICK_MS) * 1000000L};
        nanosleep(&ts, NULL);
        if (unsettled && pthread_mutex_trylock(&mmvi_heap.lock) == 0) {
            mmvi_fork_settle(1);
            pthread_mutex_unlock(&mmvi_heap.lock);
        }
        uint64_t now = mmvi_now_ms();
        if (now - last >= TICK_MS - SETTLE_TICK_MS / 2) {
            last = now;
            tick();
        }
    }
    return NULL;
}

void mmvi_advise_kick(void)
{
    if (mmvi_opt.advice != MMVI_ADVICE_AUTO || __atomic_load_n(&adv.started, __ATOMIC_RELAXED))
        return;
    uint64_t live = mmvi_stat_get(MMVI_STAT_BLOCK_BYTES_LIVE);
    uint64_t ram = mmvi_stat_get(MMVI_STAT_RAM_BYTES_LIVE);
    if (live <= ram) /* no file block: nothing to advise */
        return;
    int no = 0;
    if (!__atomic_compare_exchange_n(&adv.started, &no, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
        return;
    /* Every signal blocked from its first instruction: the program's handlers never run on it,
     * and a signal meant for the process goes to one of the program's own threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    pthread_t th;
    int rc = pthread_attr_init(&attr);
    if (rc == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 64 * 1024);
        rc = pthread_create(&th, &attr, advisor, NULL);
        pthread_attr_destroy(&attr);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        mmvi_log(1, "read-around advisor not started: %s", strerror(rc));
}

pid_t mmvi_advise_tid(void)
{
    return __atomic_load_n(&adv.tid, __ATOMIC_ACQUIRE);
}

/* One entry of /proc/self/task: counts it, and whether it is neither the caller nor ours. */
struct census {
    pid_t self, ours;
    int others;
};

static void count_thread(int dirfd, const char *name, void *arg)
{
    (void)dirfd;
    struct census *c = arg;
    pid_t tid = (pid_t)strtol(name, NULL, 10);
    if (tid > 0 && tid != c->self && tid != c->ours)
        c->others++;
}

int mmvi_advise_alone(void)
{
    pid_t ours = mmvi_advise_tid();
    if (!ours)
        return 0;
    int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    /* No thread can appear meanwhile: only the caller (busy here) and threads already listed
     * could start one, and the advisor never does. */
    struct census c = {(pid_t)syscall(SYS_gettid), ours, 0};
    mmvi_os_each_entry(fd, count_thread, &c);
    close(fd);
    return c.others == 0;
}

void mmvi_advise_forget(void)
{
    __atomic_store_n(&adv.started, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&adv.tid, 0, __ATOMIC_RELAXED);
    mmvi_stw_ignore(0);
    adv.random_blocks = 0;
    adv.waste_ticks = 0;
    adv.spell_end_ms = 0;
    drops.fd = -1; /* the parent's advisor was between its lock and its drops: mmvi_fds_child
                      closed our copy */
    drops.n = 0;
    for (struct mmvi_block *b = mmvi_heap.blocks; b; b = b->next)
        if (b->ra_random) { /* the advice came with the mapping: no spell ends it here */
            mmvi_os_advise((void *)b->addr, b->size, MADV_NORMAL);
            b->ra_random = 0;
        }
}
