"""The placement benchmarks of bench/suite.py (workloads 8-12): where mmvec puts a large block.

MMVEC_PLACEMENT=auto (mmvec's default, the allocator `mmvec` here) keeps large blocks in
anonymous RAM while the memory in use stays below MMVEC_RAM_HIGH and moves them into files when
memory gets tight; MMVEC_PLACEMENT=file (`mmvec file`) makes every large block a file. Each
workload runs bench/placement_workloads (or placement_malloc_large) as a fresh process, under
LD_PRELOAD of the allocator, and when it needs one inside a fresh memory cgroup (v1) that it
joins before exec, so that the allocator finds its limit from the start:

  8 fits          a heap that fits: write, rewrite twice; realloc doubling; disk bytes dirtied
  9 out of core   one array 4x its cgroup: fill, random read-modify-writes, scan; mmvec
                  against glibc with a swap file on the same disk, and the disk itself
                  (dd direct write and read, fio 4 KiB random reads at queue depth 1, with 8
                  jobs, and at queue depth 32 with libaio); the same at 2 GiB in 512 MiB with
                  seed 7 (ooc-seed7); and with 8 threads (ooc-threads): random reads of one
                  array, then each thread its own block filled and scanned
  10 late         RAM blocks placed while memory is plentiful, then the small heap grows past
                  the limit: mmvec must move blocks to files (1 and 2 threads)
  11 many         a heap 4x its cgroup in 64 MiB and in 1 MiB blocks
  12 malloc-large mimalloc-bench's malloc-large workload (written anew, same distribution)

They run only when named: `suite.py --only placement` (all), or any of the keys
fits,outofcore,late,many,malloclarge (outofcore: all three of 9; ooc-seed7 and ooc-threads
each one alone). The swap file exists only around each run of
`glibc + swap`, and is always switched off and deleted, on failure and on a signal too
(SIGTERM/SIGHUP/SIGINT unwind through `finally`), and at the next start if a suite died hard.
"""
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time

S = None  # the suite module (bench/suite.py), bound by bind()

KEYS = ("fits", "outofcore", "ooc-seed7", "ooc-threads", "late", "many", "malloclarge")
GROUP = "placement"
FILE = "mmvec file"
KERNEL_RA = "mmvec kernel-ra"  # MMVEC_ADVICE=normal: the kernel's read-around alone (issue 12)
BEHIND = "mmvec behind"  # MMVEC_BEHIND=on: early writeback behind fronts (issue 12)
BEHIND_OFF = "mmvec behind-off"  # MMVEC_BEHIND=off: no writeback behind fronts (the default: write)
SWAP = "glibc + swap"
DISK = "disk: dd direct, fio 4K QD1"  # the name of old results too; it runs more fio now
DISK_JOBS = 8  # fio --numjobs of the disk's reference for threaded random reads (default)
SWAP_PREFIX = "mmvec-bench-swap-"
ACTIVE_SWAPS = set()


def bind(suite_module):
    global S
    S = suite_module


# ---- sizes and items ----------------------------------------------------------------------------

def sizes(cfg):
    """Full sizes (the issue's) or --quick's smoke sizes; --fits-total, --ooc-total,
    --ooc-limit, --ooc-ops and --ooc-budget override either (the ooc sizes of the first item
    of 9 only; the budget of all three). ooc7: (array, cgroup, RMW, seed) of the case where
    a kernel read-around pathology was seen; ooct: (array, cgroup, threads, reads per
    thread) of ooc-threads. Quick: a quarter of the sizes, a tenth of the operations."""
    if cfg.quick:
        s = dict(fits="512M", fits_block="64M", realloc_start="1M",
                 ooc="1G", ooc_limit="256M", ooc_ops=200000, ooc_budget=10, fio_s=3,
                 ooc7=("512M", "128M", 20000, 7), ooct=("1G", "256M", 8, 25000),
                 late=("128M", "16M", "160M", "4000", "256M"),
                 many=("512M", ["16M", "1M"], "128M"), mlarge=200, fork=("256M", "64M", 5))
    else:
        s = dict(fits="6G", fits_block="64M", realloc_start="1M",
                 ooc="4G", ooc_limit="1G", ooc_ops=2000000, ooc_budget=20, fio_s=10,
                 ooc7=("2G", "512M", 200000, 7), ooct=("4G", "1G", 8, 250000),
                 late=("512M", "64M", "640M", "4000", "1G"),
                 many=("2G", ["64M", "1M"], "512M"), mlarge=2000, fork=("2G", "64M", 9))
    for key, opt in (("fits", "fits_total"), ("ooc", "ooc_total"), ("ooc_limit", "ooc_limit"),
                     ("ooc_ops", "ooc_ops"), ("ooc_budget", "ooc_budget")):
        v = getattr(cfg, opt, None)
        if v is not None:
            s[key] = v
    return s


def make_items(cfg):
    s = sizes(cfg)
    Item = S.Item
    items = []

    def add(workload, key, param, args, timeout, allocs, cgroup=None, driver="pw", **kw):
        it = Item(workload, param, args, timeout)
        keys = key if isinstance(key, tuple) else (key,)
        it.kind, it.keys, it.allocs, it.cgroup, it.driver = "placement", keys + (GROUP,), \
            allocs, cgroup, driver
        it.opt_in = True
        it.optional_allocs = kw.get("optional", [])
        it.swap_size = kw.get("swap_size")
        it.disk = kw.get("disk")
        items.append(it)

    fits_allocs = ["glibc", "jemalloc", "mmvec", FILE]
    big = S.parse_mib(s["fits"]) >= 4096
    add("8 fits", "fits", f"{s['fits']} in {s['fits_block']} blocks",
        ["fits", "blocks", s["fits"], s["fits_block"]], 900 if big else 300, fits_allocs)
    add("8 fits", "fits", f"realloc doubling {s['realloc_start']} to {s['fits']}",
        ["fits", "realloc", s["fits"], s["realloc_start"]], 900 if big else 300, fits_allocs)

    ooc_param = f"{s['ooc']} array in {s['ooc_limit']} cgroup, {s['ooc_ops']} RMW"
    add("9 out of core", "outofcore", ooc_param,
        ["ooc", s["ooc"], str(s["ooc_ops"]), str(s["ooc_budget"])], int(s["ooc_budget"]) + 600,
        ["mmvec", SWAP, "glibc"], cgroup=s["ooc_limit"], optional=[FILE, KERNEL_RA, BEHIND, BEHIND_OFF],
        swap_size=S.parse_mib(s["ooc"]), disk=dict(mib=S.parse_mib(s["ooc"]), fio_s=s["fio_s"]))
    # The same at half the size with seed 7: the case where a kernel read-around pathology
    # was seen.
    total, limit, ops, seed = s["ooc7"]
    add("9 out of core", ("ooc-seed7", "outofcore"),
        f"{total} array in {limit} cgroup, {ops} RMW, seed {seed}",
        ["ooc", total, str(ops), str(s["ooc_budget"]), str(seed)], int(s["ooc_budget"]) + 600,
        ["mmvec", SWAP, "glibc"], cgroup=limit, optional=[FILE, KERNEL_RA, BEHIND, BEHIND_OFF], swap_size=S.parse_mib(total),
        disk=dict(mib=S.parse_mib(total), fio_s=s["fio_s"]))
    # Threads: random reads of one array by all of them, then a block of each, filled and
    # scanned. The array is freed before the blocks are made: the swap file needs one TOTAL.
    total, limit, nth, ops = s["ooct"]
    each = f"{S.parse_mib(total) // nth}M"
    add("9 out of core", ("ooc-threads", "outofcore"),
        f"{total} array in {limit} cgroup, {nth} threads x {ops} random reads; "
        f"then {nth} threads x {each} blocks, fill and scan",
        ["ooc-threads", total, str(nth), str(ops), str(s["ooc_budget"])],
        int(s["ooc_budget"]) + 900, ["mmvec", SWAP, "glibc"], cgroup=limit, optional=[FILE, KERNEL_RA, BEHIND, BEHIND_OFF],
        swap_size=S.parse_mib(total), disk=dict(mib=S.parse_mib(total), fio_s=s["fio_s"],
                                                jobs=nth))

    big_total, block, small, ssize, limit = s["late"]
    for mode in ("1thread", "2threads"):
        add("10 late pressure", "late",
            f"{big_total} in {block} blocks, then {small} in {ssize} B; "
            f"{mode.replace('thread', ' thread')}; {limit} cgroup",
            ["late", big_total, block, small, ssize, mode], 600, ["glibc", "mmvec", FILE],
            cgroup=limit)

    # fork+exec in a loop: RAM blocks (mmvec's default while the heap fits) and file blocks
    # (frozen at each fork so that the child sees the fork's instant; docs/interposer.md).
    total, block, rounds = s["fork"]
    add("13 fork", "fork", f"{total} in {block} blocks; {rounds} fork+exec then rewrite",
        ["fork", total, block, str(rounds)], 600, ["glibc", "jemalloc", "mmvec", FILE])

    total, blocks, limit = s["many"]
    for b in blocks:
        n = S.parse_mib(total) // S.parse_mib(b)
        add("11 many blocks", "many", f"{total} as {n} x {b}; {limit} cgroup",
            ["many", total, b], 600, ["glibc", "mmvec", FILE], cgroup=limit)

    ml = ["glibc", "jemalloc", "mimalloc", "mmvec", FILE]
    add("12 malloc-large", "malloclarge", f"{s['mlarge']} x 5-25 MiB, 20 live",
        [str(s["mlarge"])], 300, ml, driver="mlarge")
    if getattr(cfg, "malloc_large_bin", None):
        add("12 malloc-large", "malloclarge",
            "external binary (wall time, start-up included)", [cfg.malloc_large_bin], 300, ml,
            driver="ext")
    return items


def extra_allocs(mmvec_base):
    """The contenders only these workloads have."""
    return [S.Alloc(FILE, env={"MMVEC_PLACEMENT": "file"}, threshold="default",
                    placement_only=True, **mmvec_base),
            S.Alloc(KERNEL_RA, env={"MMVEC_ADVICE": "normal"}, threshold="default",
                    placement_only=True, **mmvec_base),
            S.Alloc(BEHIND, env={"MMVEC_BEHIND": "on"}, threshold="default",
                    placement_only=True, **mmvec_base),
            S.Alloc(BEHIND_OFF, env={"MMVEC_BEHIND": "off"}, threshold="default",
                    placement_only=True, **mmvec_base),
            S.Alloc(SWAP, placement_only=True)]


def allocs_for(item, allocs, cfg):
    wanted = list(item.allocs)
    if cfg.allocs:
        wanted += [a for a in item.optional_allocs if a in cfg.allocs.split(",")]
    chosen = [a for a in allocs if a.name in wanted]
    if item.disk:
        chosen.append(S.Alloc(DISK))
    return chosen


# ---- a memory cgroup (v1) for one run ---------------------------------------------------------

def own_memory_cgroup():
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                parts = line.strip().split(":", 2)
                if len(parts) == 3 and "memory" in parts[1].split(","):
                    return parts[2].rstrip("/")
    except OSError:
        pass
    return None


def cgroup_unavailable():
    """None when a memory cgroup can be made here, else why not."""
    if os.geteuid() != 0:
        return "not root: a memory cgroup needs root"
    if not os.path.isfile("/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        return "no cgroup v1 memory controller at /sys/fs/cgroup/memory"
    if own_memory_cgroup() is None:
        return "this process is in no v1 memory cgroup (/proc/self/cgroup)"
    return None


class MemCgroup:
    """A child of this process's memory cgroup with a limit; the run's process joins it in the
    child between fork and exec (join), and the group is removed after."""
    seq = 0

    def __init__(self, limit_bytes):
        MemCgroup.seq += 1
        self.limit = limit_bytes
        self.path = (f"/sys/fs/cgroup/memory{own_memory_cgroup()}/"
                     f"mmvec-bench-{os.getpid()}-{MemCgroup.seq}")
        self.oom_kills, self.peak, self.failcnt = None, None, None

    def write(self, name, value):
        with open(os.path.join(self.path, name), "w") as f:
            f.write(str(value))

    def read(self, name, key=None):
        try:
            with open(os.path.join(self.path, name)) as f:
                for line in f:
                    k, _, v = line.strip().partition(" ")
                    if key is None:
                        return int(line.strip())
                    if k == key:
                        return int(v)
        except (OSError, ValueError):
            pass
        return None

    def __enter__(self):
        os.mkdir(self.path)
        try:
            self.write("memory.limit_in_bytes", self.limit)
        except OSError:
            self.remove()
            raise
        return self

    def join(self):
        """In the child, before exec (preexec_fn): no allocator has started yet."""
        with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))

    def __exit__(self, *exc):
        self.oom_kills = self.read("memory.oom_control", "oom_kill")
        self.peak = self.read("memory.max_usage_in_bytes")
        self.failcnt = self.read("memory.failcnt")
        self.remove()
        return False

    def remove(self):
        for _ in range(100):
            try:
                os.rmdir(self.path)
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.05)  # the dead process's charges drain for a moment


# ---- the swap file for glibc + swap -------------------------------------------------------------

def active_swaps():
    try:
        with open("/proc/swaps") as f:
            return [l.split()[0] for l in f.read().splitlines()[1:] if l.strip()]
    except OSError:
        return []


def swap_off_and_remove(path):
    """Best effort, every step tried: swapoff (if on) and delete."""
    if path in active_swaps():
        for _ in range(3):
            r = subprocess.run(["swapoff", path], capture_output=True, text=True, timeout=900)
            if r.returncode == 0 or path not in active_swaps():
                break
            time.sleep(1)
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        print(f"bench: cannot remove the swap file {path}: {e}", file=sys.stderr, flush=True)
    ACTIVE_SWAPS.discard(path)
    if path in active_swaps():
        print(f"bench: WARNING: swap file {path} is still active; run `swapoff {path}`",
              file=sys.stderr, flush=True)


def reap_stale(directory):
    reap_stale_swaps(directory)
    reap_stale_cgroups()


def reap_stale_swaps(directory):
    """Swap files of a suite that died without its finally (kill -9): switched off, removed."""
    candidates = set(active_swaps())
    try:
        candidates |= {os.path.join(directory, n) for n in os.listdir(directory)}
    except OSError:
        pass
    for path in candidates:
        m = re.fullmatch(re.escape(os.path.join(directory, SWAP_PREFIX)) + r"(\d+)", path)
        if m and not os.path.exists(f"/proc/{m.group(1)}"):
            print(f"bench: removing the stale swap file {path}", file=sys.stderr, flush=True)
            swap_off_and_remove(path)


def reap_stale_cgroups():
    """Memory groups of a suite that died without its finally (kill -9): removed (rmdir, which
    only removes an empty group)."""
    rel = own_memory_cgroup()
    base = f"/sys/fs/cgroup/memory{rel}" if rel is not None else None
    try:
        names = os.listdir(base) if base else []
    except OSError:
        return
    for n in names:
        m = re.fullmatch(r"mmvec-bench-(\d+)-\d+", n)
        if m and not os.path.exists(f"/proc/{m.group(1)}"):
            try:
                os.rmdir(os.path.join(base, n))
                print(f"bench: removed the stale memory cgroup {n}", file=sys.stderr)
            except OSError:
                pass


def cleanup():
    for path in list(ACTIVE_SWAPS):
        swap_off_and_remove(path)


def run_checked(cmd, timeout=900):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise OSError(f"`{' '.join(cmd)}` failed: {(r.stderr or r.stdout).strip()[:200]}")


@contextlib.contextmanager
def swap_file(directory, mib):
    """A swap file of mib MiB in directory, on for the with-block, then off and deleted."""
    path = os.path.join(directory, f"{SWAP_PREFIX}{os.getpid()}")
    ACTIVE_SWAPS.add(path)
    try:
        swap_off_and_remove(path)
        ACTIVE_SWAPS.add(path)
        made = False
        if shutil.which("fallocate"):
            made = subprocess.run(["fallocate", "-l", f"{mib}M", path],
                                  capture_output=True).returncode == 0
        if not made:
            run_checked(["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={mib}",
                         "status=none"])
        os.chmod(path, 0o600)
        run_checked(["mkswap", path])
        try:
            run_checked(["swapon", path])
        except OSError:
            # Some kernels refuse a file with unwritten (fallocated) extents: write it out.
            os.remove(path)
            run_checked(["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={mib}",
                         "status=none"])
            os.chmod(path, 0o600)
            run_checked(["mkswap", path])
            run_checked(["swapon", path])
        yield path
    finally:
        swap_off_and_remove(path)


# ---- running one measurement ------------------------------------------------------------------

STATS_RE = {
    "blocks_ram": r"^\s*blocks in RAM\s+(\d+)\s+made as files when tight (\d+)",
    "moved": r"^\s*moved to files\s+(\d+)\s+\((\d+) B in (\d+) us, longest (\d+) us; "
             r"failed (\d+), held off (\d+)\)",
    "ram": r"^\s*RAM bytes live\s+(\d+) B peak (\d+) B",
    "disk": r"^\s*disk bytes written\s+(\d+) B",
}


def split_stats(err):
    """(stderr without mmvec's stats table, the table's lines)."""
    lines = (err or "").splitlines()
    for i, l in enumerate(lines):
        if l.startswith("mmvec stats (pid"):
            # the table is 16 lines at most; anything after it is the program's again
            end = i + 1
            while end < len(lines) and lines[end].startswith("  "):
                end += 1
            return "\n".join(lines[:i] + lines[end:]), lines[i:end]
    return err or "", []


def stats_metrics(table):
    """[(metric, value, unit, detail)] from mmvec's MMVEC_STATS table."""
    text = "\n".join(table)
    out = []
    m = re.search(STATS_RE["blocks_ram"], text, re.M)
    if m:
        out += [("blocks_ram", m.group(1), "blocks", ""),
                ("blocks_file_when_tight", m.group(2), "blocks", "")]
    m = re.search(STATS_RE["moved"], text, re.M)
    if m:
        line = " ".join(m.group(0).split())
        out += [("moved_blocks", m.group(1), "blocks", line),
                ("moved_MiB", f"{int(m.group(2)) / 2**20:.6g}", "MiB", ""),
                ("moved_ms", f"{int(m.group(3)) / 1000:.6g}", "ms", ""),
                ("moved_longest_ms", f"{int(m.group(4)) / 1000:.6g}", "ms", ""),
                ("moved_failed", m.group(5), "blocks", ""),
                ("moved_held_off", m.group(6), "times", "")]
    m = re.search(STATS_RE["ram"], text, re.M)
    if m:
        out.append(("ram_peak_MiB", f"{int(m.group(2)) / 2**20:.6g}", "MiB", ""))
    m = re.search(STATS_RE["disk"], text, re.M)
    if m:
        out.append(("stats_disk_MiB", f"{int(m.group(1)) / 2**20:.6g}", "MiB", ""))
    return out


def command(cfg, alloc, item):
    expect = [f"--expect-sym={alloc.expect}"] if alloc.expect else []
    if item.driver == "pw":
        return [cfg.pw_driver] + expect + item.args
    if item.driver == "mlarge":
        return [cfg.mlarge_driver] + expect + item.args
    return list(item.args)  # ext: a program of the user's, as given


def env_for(runner, alloc):
    env = runner.env_for(alloc)
    if alloc.is_mmvec():
        env.setdefault("MMVEC_PLACEMENT", "auto")
        env["MMVEC_STATS"] = "1"
    return env


SAID = set()


def say_once(text):
    if text not in SAID:
        SAID.add(text)
        print(text, file=sys.stderr, flush=True)


def run(runner, rnd, alloc, item):
    """One (round, allocator, item) of a placement workload."""
    cfg = runner.cfg
    if alloc.name == DISK:
        return run_disk(runner, rnd, alloc, item)
    if item.driver in ("pw", "mlarge") and not getattr(cfg, f"{item.driver}_driver"):
        name = "placement_workloads" if item.driver == "pw" else "placement_malloc_large"
        return runner.emit(rnd, alloc, item, status="unavailable",
                           detail=f"bench/{name} was not built")
    why = cgroup_unavailable() if item.cgroup else None
    if not why and alloc.name == SWAP and os.geteuid() != 0:
        why = "not root: no swap file"
    if why:
        say_once(f"bench: {item.workload} ({item.param}) skipped: {why}")
        return runner.emit(rnd, alloc, item, status="skipped", detail=why)
    try:
        with contextlib.ExitStack() as stack:
            if alloc.name == SWAP:
                try:
                    stack.enter_context(swap_file(cfg.dir, item.swap_size))
                except (OSError, subprocess.SubprocessError) as e:
                    return runner.emit(rnd, alloc, item, status="unavailable",
                                       detail=f"no swap file: {e}")
            cg = None
            if item.cgroup:
                try:
                    cg = stack.enter_context(MemCgroup(S.parse_mib(item.cgroup) << 20))
                except OSError as e:
                    return runner.emit(rnd, alloc, item, status="skipped",
                                       detail=f"cannot make a memory cgroup: {e}")
            t0 = time.monotonic()
            rc, out, err, _ = runner.launch(command(cfg, alloc, item), env_for(runner, alloc),
                                            item.timeout, preexec=cg.join if cg else None)
            wall = time.monotonic() - t0
    except (OSError, subprocess.SubprocessError) as e:
        return runner.emit(rnd, alloc, item, status="fail", detail=f"could not start: {e}")
    record(runner, rnd, alloc, item, rc, out, err, cg, wall)
    runner.tidy_files(rnd, alloc, item)


def record(runner, rnd, alloc, item, rc, out, err, cg, wall):
    err, table = split_stats(err)
    results, problems = S.parse_output(out)
    if item.driver == "ext" and rc == 0:
        results = [("seconds", f"{wall:.6g}", "s", "")]
    note = S.stderr_note(err)
    status, detail = S.classify(rc, problems, err)
    limit = f" of {item.cgroup}" if item.cgroup else ""
    if cg and rc is not None and rc < 0 and cg.oom_kills:
        status = "oom-killed"
        detail = (f"killed by {S.signal_name(-rc)} (cgroup oom_kill={cg.oom_kills}; "
                  f"peak {(cg.peak or 0) >> 20} MiB{limit})")
    for metric, value, unit, _ in results:
        runner.emit(rnd, alloc, item, metric, value, unit, "ok", note)
    if results and status == "ok":
        for metric, value, unit, d in stats_metrics(table):
            runner.emit(rnd, alloc, item, metric, value, unit, "ok", d)
        if cg and cg.peak is not None:
            runner.emit(rnd, alloc, item, "peak_MiB", f"{cg.peak / 2**20:.6g}", "MiB", "ok",
                        f"cgroup memory.max_usage_in_bytes{limit}")
    if status != "ok" or not results:
        if status == "ok":
            status, detail = "fail", "no output" + (f"; {note}" if note else "")
        runner.emit(rnd, alloc, item, status=status, detail=detail)


# ---- the disk as reference: dd and fio --------------------------------------------------------

def run_disk(runner, rnd, alloc, item):
    """dd oflag=direct writes the array's size, iflag=direct reads it back; fio reads 4 KiB at
    random from that file (psync, direct): at queue depth 1, with N jobs at depth 1 each (the
    item's threads, else DISK_JOBS), and (when fio has libaio) at queue depth 32. Reported
    under the out-of-core metrics they bound: fill_GBps (dd write), scan_GBps (dd read),
    rmw_per_s (fio QD1 IOPS: one thread's random accesses), reads_per_s (fio N jobs: the
    threads' random reads); fio_qd32_iops, what the disk does with one thread's requests
    in parallel."""
    cfg = runner.cfg
    path = os.path.join(cfg.scratch, "disk-reference.bin")
    mib = item.disk["mib"]
    env = runner.env_for(alloc)
    jobs = item.disk.get("jobs", DISK_JOBS)
    os.sync()  # the disk's own rate: no writeback of the runs before it in flight
    try:
        for metric, cmd, what in (
                ("fill_GBps", ["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={mib}",
                               "oflag=direct"], "dd oflag=direct bs=1M write"),
                ("scan_GBps", ["dd", f"if={path}", "of=/dev/null", "bs=1M", "iflag=direct"],
                 "dd iflag=direct bs=1M read")):
            rc, _, err, _ = runner.launch(cmd, env, item.timeout)
            gbps = S.dd_rate(err)
            if rc == 0 and gbps:
                runner.emit(rnd, alloc, item, metric, f"{gbps:.6g}", "GB/s", "ok", what)
            else:
                runner.emit(rnd, alloc, item, status="fail",
                            detail=f"{what}: " + (S.stderr_note(err) or f"rc {rc}"))
        fio = shutil.which("fio")
        if not fio:
            runner.emit(rnd, alloc, item, status="unavailable",
                        detail="fio not installed (apt-get install -y fio)")
            return
        runs = [(["--iodepth=1", "--ioengine=psync"],
                 [("rmw_per_s", "iops", "fio randread 4 KiB, iodepth 1, psync, direct: IOPS"),
                  ("fio_lat_us", "lat", "fio QD1 mean latency")]),
                ([f"--numjobs={jobs}", "--group_reporting", "--iodepth=1", "--ioengine=psync"],
                 [("reads_per_s", "iops", f"fio randread 4 KiB, {jobs} jobs "
                   f"(--numjobs={jobs} --group_reporting), iodepth 1 each, psync, "
                   f"direct: IOPS of all"),
                  ("fio_jobs_lat_us", "lat", f"fio {jobs} jobs mean latency")])]
        if fio_has_libaio(fio):
            runs.append((["--iodepth=32", "--ioengine=libaio"],
                         [("fio_qd32_iops", "iops",
                           "fio randread 4 KiB, iodepth 32, libaio, direct: IOPS")]))
        else:
            say_once("bench: fio has no libaio engine: no fio_qd32_iops")
        for opts, metrics in runs:
            cmd = [fio, "--name=randread", f"--filename={path}", "--rw=randread", "--bs=4k",
                   "--direct=1", f"--size={mib}M", f"--runtime={item.disk['fio_s']}",
                   "--time_based", "--randrepeat=1", "--output-format=json"] + opts
            rc, out, err, _ = runner.launch(cmd, env, item.timeout)
            try:
                read = json.loads(out[out.index("{"):])["jobs"][0]["read"]
                for metric, key, what in metrics:
                    if key == "iops":
                        runner.emit(rnd, alloc, item, metric, f"{read['iops']:.6g}", "ops/s",
                                    "ok", what)
                    else:
                        runner.emit(rnd, alloc, item, metric,
                                    f"{read['lat_ns']['mean'] / 1000:.6g}", "us", "ok", what)
            except (ValueError, KeyError, IndexError):
                runner.emit(rnd, alloc, item, status="fail",
                            detail=f"fio {' '.join(opts)}: " +
                            (S.stderr_note(err) or f"rc {rc}, no JSON"))
    finally:
        S.try_remove(path)


def fio_has_libaio(fio):
    """Whether this fio was built with the libaio engine (`fio --enghelp=libaio`)."""
    try:
        return subprocess.run([fio, "--enghelp=libaio"], capture_output=True,
                              timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False
