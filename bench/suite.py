#!/usr/bin/env python3
"""mmvec's allocator benchmark suite (issue 4). Started by scripts/bench.sh, which builds first.

Runs every workload with every allocator, interleaved round by round (the allocator order rotates
from round to round), each run a fresh process of bench/alloc_workloads that times itself with
the monotonic clock. Writes into the results folder: results.csv (every measurement),
results.md (medians and ratios to glibc of the same round), PNG plots and machine.txt.
Standard library only.
"""
import argparse
import csv
import datetime
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import placement  # bench/placement.py: workloads 8-12, where mmvec puts a large block
import report  # bench/report.py: tables and plots from results.csv

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH_DIR)
CSV_FIELDS = ["round", "allocator", "threshold", "workload", "param", "metric", "value", "unit",
              "status", "detail"]


# ---- allocators -------------------------------------------------------------------------------

def find_lib(soname):
    """Path of a shared library by soname, from the loader cache (None when not installed)."""
    try:
        out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    except OSError:
        return None
    for line in out.splitlines():
        parts = line.strip().split(" => ")
        if len(parts) == 2 and parts[0].split(" ")[0] == soname and os.path.exists(parts[1]):
            return parts[1]
    return None


class Alloc:
    """One contender: how to start the driver for it."""

    def __init__(self, name, flag="libc", preload=None, expect=None, env=None, threshold="",
                 sweep_only=False, unavailable=None, linked=False, placement_only=False):
        self.name, self.flag, self.preload, self.expect = name, flag, preload, expect
        self.env = env or {}
        self.threshold = threshold
        self.sweep_only = sweep_only          # threshold sweep: runs only the sweep items
        self.unavailable = unavailable        # reason, when it cannot run at all
        self.linked = linked                  # memkind/naive: a program must be changed for it
        self.placement_only = placement_only  # only in the placement workloads (8-12)

    def is_mmvec(self):
        return self.name.startswith("mmvec")


def preload_alloc(name, soname, expect):
    path = find_lib(soname)
    return Alloc(name, preload=path, expect=expect,
                 unavailable=None if path else f"{soname} not installed")


def mmvec_allocs(cfg, status, default):
    """mmvec under its default threshold, at 256K (every workload block routed), and the
    threshold sweep; all unavailable, with the reason, when the preload does not work."""
    base = dict(flag="libc", preload=cfg.preload, expect="mmv_owns", unavailable=status)
    allocs = [Alloc("mmvec", threshold=f"default ({default})" if default else "default", **base),
              Alloc("mmvec@256K", env={"MMVEC_THRESHOLD": "256K"}, threshold="256K", **base)]
    for t in cfg.sweep:
        allocs.append(Alloc(f"mmvec@{t}", env={"MMVEC_THRESHOLD": t}, threshold=t,
                            sweep_only=True, **base))
    return allocs + placement.extra_allocs(base)


def all_allocs(cfg, mmvec_status, default_threshold=None):
    allocs = [Alloc("glibc"),
              preload_alloc("jemalloc", "libjemalloc.so.2", "mallocx"),
              preload_alloc("mimalloc", "libmimalloc.so.2", "mi_malloc"),
              preload_alloc("tcmalloc", "libtcmalloc_minimal.so.4", "tc_malloc"),
              Alloc("memkind-pmem", flag="memkind", linked=True),
              Alloc("naive-files", flag="naive", linked=True)]
    allocs += mmvec_allocs(cfg, mmvec_status, default_threshold)
    if cfg.allocs:
        wanted = set(cfg.allocs.split(",")) | {"glibc"}
        allocs = [a for a in allocs if a.name in wanted]
    return allocs


# ---- workloads ------------------------------------------------------------------------------

class Item:
    """One measurement point: a workload with fixed arguments. `param` is the label in the
    tables (the driver's own label goes to the detail column when it differs)."""

    def __init__(self, workload, param, args, timeout, sweep=False, naive_args=None,
                 program=None, special=None):
        self.workload, self.param, self.args, self.timeout = workload, param, args, timeout
        self.sweep = sweep
        self.naive_args = naive_args  # reduced arguments for the one-file-per-block allocator
        self.program = program        # workload 5: (output file, reference sha256 key)
        self.special = special        # 'vector': mmvec's own vector; 'dd': the disk's bandwidth
        self.kind = None              # 'placement': workloads 8-12 (bench/placement.py)
        self.keys = ()                # more names for --only
        self.opt_in = False           # runs only when --only names it
        self.allocs = None            # the allocators it runs with (None: every one)


def sizes(quick):
    """Every size the suite uses; reductions from the issue's figures are documented in
    bench/README.md."""
    if quick:
        return dict(churn=[("256K", 200, 80), ("1M", 200, 80), ("16M", 20, 80), ("256M", 1, 80)],
                    steps=("1M", "64M", "64K", 1), double=("1M", "256M"),
                    calloc=("1G", 1), small=(2, 1000000, 10000), small_naive=(2, 1000, 200),
                    sort_mb=20, xz_mb=1, xz_level="-6", ooc=("256M", "16M", "64M"),
                    vec=10000000)
    return dict(churn=[("256K", 2000, 600), ("1M", 1000, 600), ("16M", 200, 600),
                       ("256M", 10, 1500)],
                steps=("1M", "1G", "64K", 20), double=("1M", "4G"),
                calloc=("1G", 5), small=(2, 10000000, 10000), small_naive=(2, 10000, 1000),
                sort_mb=200, xz_mb=4, xz_level="-9", ooc=("2G", "64M", "512M"),
                vec=100000000)


def make_items(cfg, s, inputs):
    items = []
    for size, cycles, budget_ms in s["churn"]:
        items.append(Item("1 churn", size, ["churn", size, str(cycles), str(budget_ms)], 60,
                          sweep=True))
    start, stop, step, budget = s["steps"]
    items.append(Item("2 realloc", f"step {step} to {stop}",
                      ["realloc", "steps", start, stop, step, str(budget)], budget + 60))
    start, stop = s["double"]
    items.append(Item("2 realloc", f"doubling to {stop}", ["realloc", "double", start, stop],
                      120))
    size, reps = s["calloc"]
    items.append(Item("3 calloc", f"{size}, 1 page in 1000", ["calloc", size, str(reps), "1000"],
                      120))
    t, pairs, live = s["small"]
    tn, pn, ln = s["small_naive"]
    items.append(Item("4 small", f"{t} threads, {pairs // 1000000}M pairs, {live} live",
                      ["small", str(t), str(pairs), str(live)], 120, sweep=True,
                      naive_args=["small", str(tn), str(pn), str(ln)]))
    items += program_items(cfg, s, inputs)
    total, chunk, limit = s["ooc"]
    ooc = ["ooc", total, chunk, limit]
    items.append(Item("6 out of core", f"{total} heap, {limit} cgroup", ooc, 300, special="dd"))
    items.append(Item("7 vector", f"{s['vec'] // 1000000}M pushes", ["vec", str(s["vec"])], 120,
                      special="vector"))
    items += placement.make_items(cfg)
    if cfg.only:
        keep = cfg.only.split(",")
        items = [i for i in items if any(k in i.workload or k in i.keys for k in keep)]
    else:
        items = [i for i in items if not i.opt_in]
    return items


def wants_programs(cfg):
    """Whether workload 5 runs (its inputs take a while to make)."""
    return not cfg.only or any(k in "5 program" for k in cfg.only.split(","))


def program_items(cfg, s, inputs):
    sort_out = os.path.join(cfg.scratch, "sort.out")
    xz_out = os.path.join(cfg.scratch, "xz.out")
    sort_cmd = ["sort", "-S", "100M", "--parallel=1", "-T", cfg.scratch, "-o", sort_out,
                inputs["sort"]]
    xz_cmd = ["sh", "-c", f"exec xz {s['xz_level']} -T1 -c '{inputs['xz']}' > '{xz_out}'"]
    return [Item("5 program", f"sort -S 100M, {s['sort_mb']} MB", ["exec", "sort"] + sort_cmd,
                 300, sweep=True, program=(sort_out, "sort")),
            Item("5 program", f"xz {s['xz_level']}, {s['xz_mb']} MB", ["exec", "xz"] + xz_cmd, 300,
                 program=(xz_out, "xz"))]


# ---- running one measurement ----------------------------------------------------------------

class Runner:
    def __init__(self, cfg, writer, csv_file):
        self.cfg, self.writer, self.csv_file = cfg, writer, csv_file
        self.references = {}
        self.runs = 0
        self.spent = {}  # item label -> seconds of wall time, to keep the run's length in check

    def emit(self, rnd, alloc, item, metric="", value="", unit="", status="ok", detail=""):
        self.writer.writerow({"round": rnd, "allocator": alloc.name, "threshold": alloc.threshold,
                              "workload": item.workload, "param": item.param, "metric": metric,
                              "value": value, "unit": unit, "status": status,
                              "detail": detail})
        self.csv_file.flush()

    def env_for(self, alloc):
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("MMVEC_") or k == "LD_PRELOAD":
                del env[k]
        env["LC_ALL"] = "C"
        env["MMVEC_DIR"] = self.cfg.mmvec_dir
        if alloc.preload:
            env["LD_PRELOAD"] = alloc.preload
        env.update(alloc.env)
        return env

    def command(self, alloc, item):
        if item.special == "vector" and alloc.name == "mmvec vector":
            return [self.cfg.vec_driver, item.args[1]]
        args = item.naive_args if (alloc.flag == "naive" and item.naive_args) else item.args
        cmd = [self.cfg.driver, f"--alloc={alloc.flag}",
               f"--dir={self.cfg.file_dirs.get(alloc.flag, self.cfg.scratch)}"]
        if alloc.expect:
            cmd.append(f"--expect-sym={alloc.expect}")
        return cmd + args

    def launch(self, cmd, env, timeout, preexec=None):
        """Runs cmd in its own process group (preexec: called in the child before exec);
        returns (rc or None on timeout, stdout, stderr, pid)."""
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, errors="replace", start_new_session=True,
                             preexec_fn=preexec)
        try:
            out, err = p.communicate(timeout=timeout)
            return p.returncode, out, err, p.pid
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, err = p.communicate()
            return None, out, err, p.pid
        except BaseException:
            # Ctrl-C: the run has its own session, so it must be stopped here.
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            raise

    def run(self, rnd, alloc, item):
        t0 = time.monotonic()
        self.run_timed(rnd, alloc, item)
        key = f"{item.workload} {item.param} / {alloc.name}"
        self.spent[key] = self.spent.get(key, 0.0) + time.monotonic() - t0

    def run_timed(self, rnd, alloc, item):
        self.runs += 1
        if alloc.unavailable:
            return self.emit(rnd, alloc, item, status="unavailable", detail=alloc.unavailable)
        if item.kind == "placement":
            return placement.run(self, rnd, alloc, item)
        if item.program and alloc.linked:
            return self.emit(rnd, alloc, item, status="n/a",
                             detail="an unmodified program cannot use this allocator")
        if item.special == "dd" and alloc.name == "dd oflag=direct":
            return self.run_dd(rnd, alloc, item)
        rc, out, err, pid = self.launch(self.command(alloc, item), self.env_for(alloc),
                                        item.timeout)
        self.record(rnd, alloc, item, rc, out, err)
        if item.special == "dd":
            remove_stale_cgroup(pid)
        self.tidy_files(rnd, alloc, item)

    def record(self, rnd, alloc, item, rc, out, err):
        results, problems = parse_output(out)
        note = stderr_note(err)
        wrong = self.check_program_output(item) if (item.program and rc == 0) else ""
        reduced = alloc.flag == "naive" and item.naive_args
        for metric, value, unit, label in results:
            detail = "; ".join(x for x in (f"reduced: {label}" if reduced else "", note) if x)
            self.emit(rnd, alloc, item, metric, value, unit,
                      "wrong-output" if wrong else "ok", wrong or detail)
        status, detail = classify(rc, problems, err)
        if status != "ok" or (not results and not problems):
            if status == "ok":
                status, detail = "fail", "no output"
            self.emit(rnd, alloc, item, status=status, detail=detail)

    def check_program_output(self, item):
        path, key = item.program
        digest = sha256_file(path)
        ref = self.references.get(key)
        return "" if digest == ref else f"output differs from the reference run ({key})"

    def run_dd(self, rnd, alloc, item):
        path = os.path.join(self.cfg.scratch, "dd.bin")
        mib = parse_mib(item.args[1])
        for metric, cmd in (("write_GBps", ["dd", "if=/dev/zero", f"of={path}", "bs=1M",
                                            f"count={mib}", "oflag=direct"]),
                            ("read_GBps", ["dd", f"if={path}", "of=/dev/null", "bs=1M",
                                           "iflag=direct"])):
            rc, _, err, _ = self.launch(cmd, self.env_for(alloc), item.timeout)
            gbps = dd_rate(err)
            if rc == 0 and gbps:
                self.emit(rnd, alloc, item, metric, f"{gbps:.6g}", "GB/s")
            else:
                self.emit(rnd, alloc, item, status="fail", detail=stderr_note(err) or f"rc {rc}")
        try_remove(path)

    def tidy_files(self, rnd, alloc, item):
        """Files a finished run left in the segment directories are a finding (mmvec must
        delete its blocks' files at exit); they are recorded, then removed."""
        if not (alloc.linked or alloc.is_mmvec()):
            return
        d = self.cfg.file_dirs.get(alloc.flag) if alloc.linked else self.cfg.mmvec_dir
        if not d or not os.path.isdir(d):
            return
        n, size = 0, 0
        for root, _, files in os.walk(d):
            for f in files:
                p = os.path.join(root, f)
                try:
                    st = os.lstat(p)
                except OSError:
                    continue
                if f.endswith(".lock") or st.st_blocks == 0 and st.st_size == 0:
                    continue
                n, size = n + 1, size + st.st_blocks * 512
        if n:
            self.emit(rnd, alloc, item, "leftover_files", n, "files", "ok",
                      f"{size >> 20} MiB on disk left in {d} after exit")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d, mode=0o700, exist_ok=True)


def parse_output(out):
    results, problems = [], []
    for line in out.splitlines():
        f = line.split(",")
        if f[0] == "RESULT" and len(f) >= 6:
            results.append((f[3], f[4], f[5], f[2]))
        elif f[0] in ("FAIL", "SKIP") and len(f) >= 4:
            problems.append((f[0], ",".join(f[3:])))
    return results, problems


def classify(rc, problems, err):
    """(status, detail) of a finished process."""
    fails = [p for k, p in problems if k == "FAIL"]
    skips = [p for k, p in problems if k == "SKIP"]
    if rc is None:
        return "timeout", "killed after the time limit"
    if rc < 0:
        return "crashed", "; ".join(x for x in (signal_name(-rc), stderr_note(err)) if x)
    if rc == 3:
        return "unavailable", fails[0] if fails else "preload not active"
    if rc == 4:
        return "too-slow", fails[0] if fails else "gave up"
    if fails:
        if re.search(r"killed by signal 9", fails[0]):
            return "oom-killed", fails[0]
        return ("crashed" if "killed by signal" in fails[0] else "fail"), fails[0]
    if skips:
        return "skipped", skips[0]
    if rc != 0:
        return "fail", "; ".join(x for x in (f"exit {rc}", stderr_note(err)) if x)
    return "ok", ""


def signal_name(n):
    try:
        return signal.Signals(n).name
    except ValueError:
        return f"signal {n}"


def stderr_note(err):
    """The first lines of stderr (a one-time warning of the interposer, a crash message)."""
    lines = [l.strip() for l in (err or "").splitlines() if l.strip()]
    return " | ".join(lines[:3])[:300]


def dd_rate(err):
    """GB/s from dd's summary line (bytes and seconds, not its rounded rate)."""
    m = re.search(r"^(\d+) bytes .* copied, ([0-9.]+) s", err or "", re.M)
    if not m or float(m.group(2)) <= 0:
        return None
    return int(m.group(1)) / float(m.group(2)) / 1e9


def parse_mib(size):
    units = {"K": 1 / 1024, "M": 1, "G": 1024}
    return int(float(size[:-1]) * units[size[-1]])


def remove_stale_cgroup(pid):
    """A driver killed at the time limit cannot remove its memory cgroup; do it for it."""
    try:
        with open("/proc/self/cgroup") as f:
            rel = next((l.strip().split(":", 2)[2] for l in f if ":memory:" in l), None)
    except OSError:
        return
    if rel is None:
        return
    path = f"/sys/fs/cgroup/memory{rel.rstrip('/')}/mmvec-bench-{pid}"
    for _ in range(50):
        if not os.path.isdir(path):
            return
        try:
            os.rmdir(path)
            return
        except OSError:
            time.sleep(0.1)


def sha256_file(path):
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return None
    return h.hexdigest()


def try_remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


# ---- set-up: inputs, the preload check, the machine -----------------------------------------

def make_inputs(cfg, s):
    """Random base64 lines: sort has real work, xz finds some redundancy."""
    inputs = {}
    for key, mb in (("sort", s["sort_mb"]), ("xz", s["xz_mb"])):
        path = os.path.join(cfg.scratch, f"{key}.in")
        raw = mb * 1000000 * 3 // 4
        with open(path, "wb") as out:
            subprocess.run(["base64", "-w", "76"], stdin=open_random(raw), stdout=out,
                           check=True)
        inputs[key] = path
    return inputs


def open_random(nbytes):
    p = subprocess.Popen(["head", "-c", str(nbytes), "/dev/urandom"], stdout=subprocess.PIPE)
    return p.stdout


def make_references(cfg, runner, items):
    """The programs' output without any preload, to compare every measured run against."""
    for item in items:
        if not item.program:
            continue
        env = runner.env_for(Alloc("glibc"))
        subprocess.run(item.args[2:], env=env, check=True)
        runner.references[item.program[1]] = sha256_file(item.program[0])


def check_mmvec(cfg):
    """None when the interposer works, else the reason. It must load, run `ls`, and really put
    a malloc(16M) into a segment under MMVEC_THRESHOLD=1M."""
    if not cfg.preload or not os.path.exists(cfg.preload):
        return f"libmmvec_preload.so not found ({cfg.preload})"
    env = dict(os.environ, LD_PRELOAD=cfg.preload, MMVEC_THRESHOLD="1M",
               MMVEC_DIR=cfg.mmvec_dir)
    try:
        r = subprocess.run(["ls", "/"], env=env, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            return f"`ls` under the preload failed (rc {r.returncode}): {stderr_note(r.stderr)}"
        r = subprocess.run([cfg.driver, "check", "16M"], env=env, capture_output=True,
                           text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "the preload hangs (check timed out)"
    if r.returncode != 0:
        info = dict(l.split(",", 2)[1:] for l in r.stdout.splitlines() if l.startswith("INFO,"))
        why = signal_name(-r.returncode) if r.returncode < 0 else f"mmv_owns={info.get('mmv_owns')}"
        return f"malloc(16M) under MMVEC_THRESHOLD=1M is not a segment ({why})"
    return None


def default_threshold(cfg):
    env = dict(os.environ, LD_PRELOAD=cfg.preload, MMVEC_DIR=cfg.mmvec_dir)
    env.pop("MMVEC_THRESHOLD", None)
    r = subprocess.run([cfg.driver, "check", "16M"], env=env, capture_output=True, text=True,
                       timeout=30)
    for line in r.stdout.splitlines():
        if line.startswith("INFO,mmv_threshold,"):
            return int(line.split(",")[2])
    return None


def shell(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True,
                              timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "(unavailable)"


def write_machine(cfg, path, extra):
    pkgs = ("libc6 libjemalloc2 libmimalloc2.0 libtcmalloc-minimal4 libmemkind0 coreutils "
            "xz-utils gnuplot-nox gcc cmake")
    sections = [
        ("date (UTC)", datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M:%S")),
        ("command", " ".join(sys.argv)),
        ("kernel", shell("uname -srvmo")),
        ("cpu", shell("lscpu | grep -E '^(Model name|CPU\\(s\\)|Thread|Core|Socket|L[23]"
                      "|Hypervisor|Virtualization type)'")),
        ("memory", shell("grep -E '^(MemTotal|SwapTotal)' /proc/meminfo")),
        ("load average at start", extra.get("load_start", "")),
        ("load average at end", shell("cat /proc/loadavg")),
        ("segment directory", cfg.root),
        ("its file system", shell(f"findmnt -n -o SOURCE,FSTYPE,OPTIONS -T {cfg.root}")),
        ("its free space", shell(f"df -h --output=size,avail {cfg.root} | tail -1")),
        ("transparent hugepages", shell("cat /sys/kernel/mm/transparent_hugepage/enabled")),
        ("vm", shell("sysctl vm.dirty_ratio vm.dirty_background_ratio vm.max_map_count "
                     "vm.overcommit_memory 2>/dev/null")),
        ("memory cgroup", shell("grep memory /proc/self/cgroup; "
                                "stat -fc %T /sys/fs/cgroup/memory 2>/dev/null")),
        ("packages", shell(f"dpkg-query -W -f='${{Package}} ${{Version}}\\n' {pkgs} 2>/dev/null")),
        ("compiler", shell("cc --version | head -1")),
        ("mmvec", shell(f"git -C {REPO} describe --always --dirty 2>/dev/null") or "(no git)"),
        ("mmvec preload", f"{cfg.preload}: " + (extra.get("mmvec_status") or "working")
         + f"\nsha256 {sha256_file(cfg.preload)}"),
        ("mmvec default threshold", str(extra.get("default_threshold"))),
        ("libraries", "\n".join(f"{a.name}: {a.preload}" for a in extra["allocs"] if a.preload)),
    ]
    with open(path, "w") as f:
        for title, body in sections:
            f.write(f"## {title}\n{body}\n\n")


# ---- the run ---------------------------------------------------------------------------------

def rotated(seq, k):
    k %= max(len(seq), 1)
    return seq[k:] + seq[:k]


def allocs_for(item, allocs, cfg):
    if item.kind == "placement":
        return placement.allocs_for(item, allocs, cfg)
    chosen = [a for a in allocs if (not a.sweep_only or item.sweep) and not a.placement_only]
    if item.special == "dd":
        chosen.append(Alloc("dd oflag=direct"))
    if item.special == "vector":
        chosen.append(Alloc("mmvec vector", unavailable=None if cfg.vec_driver else
                            "bench/vec_workload was not built"))
    return chosen


def run_rounds(cfg, runner, items, allocs):
    t0 = time.monotonic()
    for rnd in range(1, cfg.rounds + 1):
        for item in items:
            for alloc in rotated(allocs_for(item, allocs, cfg), rnd - 1):
                runner.run(rnd, alloc, item)
        print(f"bench: round {rnd}/{cfg.rounds} done, {time.monotonic() - t0:.0f} s",
              file=sys.stderr, flush=True)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, under 2 minutes")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--build", default=os.path.join(REPO, "build-bench"))
    ap.add_argument("--preload", help="libmmvec_preload.so (default: BUILD/libmmvec_preload.so)")
    ap.add_argument("--dir", default="/var/tmp", help="where segment files go (ext4 disk)")
    ap.add_argument("--out", help="results folder (default bench/results/tmp/<UTC time>, then "
                    "copied to bench/results/latest)")
    ap.add_argument("--only", help="comma list of workload names, e.g. churn,small; the "
                    "placement workloads (8-12) run only when named: placement (all of them), "
                    "fits, outofcore, late, many, malloclarge")
    ap.add_argument("--allocs", help="comma list of allocators (glibc is always included)")
    ap.add_argument("--sweep", default=None,
                    help="thresholds of the sweep (default 64K,1M,4M,16M,64M; none in --quick)")
    ap.add_argument("--report", metavar="DIR", help="only rebuild results.md and plots of DIR")
    pl = ap.add_argument_group("placement workloads (bench/placement.py)")
    pl.add_argument("--fits-total", metavar="SIZE", help="heap of 8 fits (default 6G; quick 512M)")
    pl.add_argument("--ooc-total", metavar="SIZE", help="array of 9 (default 4G; quick 1G)")
    pl.add_argument("--ooc-limit", metavar="SIZE", help="its cgroup (default 1G; quick 256M)")
    pl.add_argument("--ooc-ops", type=int, help="random read-modify-writes (default 2000000)")
    pl.add_argument("--ooc-budget", type=int, metavar="S",
                    help="seconds after which the read-modify-writes stop early "
                    "(default 20; quick 10)")
    pl.add_argument("--malloc-large-bin", metavar="PATH",
                    help="also time this program (e.g. a build of mimalloc-bench's "
                    "malloc-large) from outside under each allocator of workload 12")
    cfg = ap.parse_args()
    if cfg.sweep is None:
        cfg.sweep = "" if cfg.quick else "64K,1M,4M,16M,64M"
    cfg.sweep = [t for t in cfg.sweep.split(",") if t]
    cfg.preload = cfg.preload or os.path.join(cfg.build, "libmmvec_preload.so")
    cfg.out_given = bool(cfg.out)
    return cfg


def setup_dirs(cfg):
    cfg.root = os.path.join(cfg.dir, f"mmvec-bench-{os.getpid()}")
    cfg.scratch = os.path.join(cfg.root, "scratch")
    cfg.mmvec_dir = os.path.join(cfg.root, "mmvec")
    cfg.file_dirs = {"memkind": os.path.join(cfg.root, "memkind"),
                     "naive": os.path.join(cfg.root, "naive")}
    for d in [cfg.scratch, cfg.mmvec_dir] + list(cfg.file_dirs.values()):
        os.makedirs(d, mode=0o700, exist_ok=True)
    stamp = datetime.datetime.utcnow().strftime("%Y%m%d-%H%M%S")
    # results/tmp/ is git-ignored: each run's own folder; results/latest* are the published ones.
    cfg.out = cfg.out or os.path.join(BENCH_DIR, "results", "tmp",
                                      stamp + ("-quick" if cfg.quick else ""))
    os.makedirs(cfg.out, exist_ok=True)


def find_drivers(cfg):
    cfg.driver = os.path.join(cfg.build, "bench", "alloc_workloads")
    if not os.access(cfg.driver, os.X_OK):
        sys.exit(f"bench: {cfg.driver} is missing: build it first (scripts/bench.sh does)")
    vec = os.path.join(cfg.build, "bench", "vec_workload")
    cfg.vec_driver = vec if os.access(vec, os.X_OK) else None
    for attr, name in (("pw_driver", "placement_workloads"),
                       ("mlarge_driver", "placement_malloc_large")):
        path = os.path.join(cfg.build, "bench", name)
        setattr(cfg, attr, path if os.access(path, os.X_OK) else None)


def publish(cfg):
    """The newest complete run is also bench/results/latest (the README shows it), a quick one
    bench/results/latest-quick; a partial run (--only, --allocs, fewer rounds) stays apart."""
    if cfg.only or cfg.allocs or cfg.rounds < 5 or cfg.out_given:
        return
    name = "latest-quick" if cfg.quick else "latest"
    dest = os.path.join(BENCH_DIR, "results", name)
    if os.path.abspath(cfg.out) == os.path.abspath(dest):
        return
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(cfg.out, dest)
    if not cfg.quick:
        report.update_readme(os.path.join(BENCH_DIR, "README.md"), dest)


def on_sigterm(signum, frame):
    # SystemExit unwinds through the finally clauses: the run in progress is killed and the
    # segment directory removed.
    sys.exit(128 + signum)


def main():
    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGHUP, on_sigterm)
    placement.bind(sys.modules[__name__])
    cfg = parse_args()
    if cfg.report:
        report.build(cfg.report)
        return 0
    find_drivers(cfg)
    setup_dirs(cfg)
    placement.reap_stale(cfg.dir)
    started = time.monotonic()
    extra = {"load_start": shell("cat /proc/loadavg")}
    try:
        extra["mmvec_status"] = check_mmvec(cfg)
        extra["default_threshold"] = None if extra["mmvec_status"] else default_threshold(cfg)
        if extra["mmvec_status"]:
            print(f"bench: mmvec excluded: {extra['mmvec_status']}", file=sys.stderr)
        allocs = extra["allocs"] = all_allocs(cfg, extra["mmvec_status"],
                                              extra["default_threshold"])
        s = sizes(cfg.quick)
        inputs = make_inputs(cfg, s) if wants_programs(cfg) else {"sort": "", "xz": ""}
        with open(os.path.join(cfg.out, "results.csv"), "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
            writer.writeheader()
            runner = Runner(cfg, writer, f)
            items = make_items(cfg, s, inputs)
            make_references(cfg, runner, items)
            run_rounds(cfg, runner, items, allocs)
        extra["elapsed"] = time.monotonic() - started
        write_machine(cfg, os.path.join(cfg.out, "machine.txt"), extra)
    finally:
        placement.cleanup()  # a swap file still on (it is off after each run): off, deleted
        shutil.rmtree(cfg.root, ignore_errors=True)
    slowest = sorted(runner.spent.items(), key=lambda kv: -kv[1])[:12]
    report.build(cfg.out, meta={"quick": cfg.quick, "rounds": cfg.rounds,
                                "slowest_runs_s": {k: round(v, 2) for k, v in slowest},
                                "elapsed": extra["elapsed"],
                                "default_threshold": extra["default_threshold"],
                                "mmvec_status": extra["mmvec_status"]})
    publish(cfg)
    print(f"bench: {runner.runs} runs in {extra['elapsed']:.0f} s; results in {cfg.out}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
