"""Tables and plots from a results folder's results.csv (used by bench/suite.py; also
`bench/suite.py --report DIR` to rebuild them). Standard library and gnuplot only.

Every cell is the median over rounds of the measured value; in parentheses, the median over rounds
of the ratio to the baseline measured in the same round (glibc; for out of core the disk's
`dd oflag=direct` bandwidth). Ratios are value / baseline, whatever the metric's direction.
"""
import csv
import json
import os
import statistics
import subprocess
from collections import defaultdict

HIGHER_BETTER = {"Mpairs_per_s", "write_GBps", "read_GBps", "fill_GBps", "scan_GBps",
                 "rmw_per_s", "zeroed_GBps", "reads_per_s", "tfill_GBps", "tscan_GBps",
                 "fio_qd32_iops", "scan_first_GBps"}
BASELINE = "glibc"
DD = "dd oflag=direct"
# Workload: (title, metrics shown, y label of the plot, plot clusters by 'param' or 'metric')
WORKLOADS = {
    "1 churn": ("Large churn: malloc(S), write one byte per page, free",
                ["us_per_cycle"], "us per cycle", "param"),
    "2 realloc": ("realloc growth, writing each new tail", ["seconds"], "seconds", "param"),
    "3 calloc": ("calloc of a big block, touching 1 page in 1000, free",
                 ["calloc_us", "touch_us", "free_us", "total_us"], "us", "metric"),
    "4 small": ("Small objects: malloc/free pairs, 16 B..4 KiB", ["Mpairs_per_s"],
                "million pairs per second", "param"),
    "5 program": ("Unmodified programs, timed from outside (start-up included)",
                  ["wall_s", "maxrss_MiB"], "seconds", "param"),
    "6 out of core": ("Out of core: write, then read and checksum, a heap 4x the cgroup limit",
                      ["write_GBps", "read_GBps", "free_s"], "GB/s", "metric"),
    "7 vector": ("Vector: pushes of uint64_t, then a sum (ns per element)",
                 ["push_ns", "sum_ns"], "ns per element", "metric"),
}
# The placement workloads (bench/placement.py): (title, baseline of the ratios, metrics shown).
# One table per parameter; metrics without a ratio are counts or sizes, not times.
PLACEMENT = {
    "8 fits": ("A heap that fits in RAM: write every byte, rewrite twice (read-modify-write), "
               "check, free; disk_write_MiB is /proc/self/io write_bytes at the end", "glibc",
               ["malloc_s", "write_s", "grow_s", "rewrite1_s", "rewrite2_s", "check_s", "free_s",
                "total_s", "disk_write_MiB", "blocks_ram", "moved_blocks"]),
    "9 out of core": ("One array 4x its memory cgroup: sequential fill, sequential scan "
                      "(scan_first_GBps: written once, then read), random 8-byte "
                      "read-modify-writes (fixed seed: 42, or as named), sequential scan and "
                      "checksum. With threads: the array filled by one thread, then random "
                      "8-byte reads by every thread (reads_per_s of all, each read checked), "
                      "then each thread's own block filled and scanned (tfill_GBps, tscan_GBps "
                      "of all). The disk row: dd oflag=direct write (fill), dd iflag=direct "
                      "read (scan), fio 4 KiB random reads, psync, direct: at queue depth 1 "
                      "(rmw_per_s), with 8 jobs (reads_per_s), at queue depth 32 with libaio "
                      "(fio_qd32_iops)", "glibc + swap",
                      ["fill_GBps", "scan_first_GBps", "rmw_per_s", "scan_GBps", "rmw_done",
                       "reads_per_s", "reads_done", "tfill_GBps", "tscan_GBps", "total_s", "peak_MiB",
                       "disk_write_MiB", "moved_blocks", "fio_lat_us", "fio_jobs_lat_us",
                       "fio_qd32_iops"]),
    "10 late pressure": ("Blocks placed while memory is plentiful, then the small heap grows "
                         "past the cgroup's limit, then every byte checked (2 threads: a second "
                         "thread rewrites the blocks with memset and read(2) from a pipe "
                         "meanwhile)", "mmvec file",
                         ["place_s", "grow_small_s", "check_s", "total_s", "writer_rounds",
                          "peak_MiB", "blocks_ram", "moved_blocks", "moved_MiB",
                          "moved_longest_ms", "moved_held_off", "disk_write_MiB"]),
    "11 many blocks": ("A heap 4x its memory cgroup in many blocks: malloc and write each, "
                       "check all, free", "mmvec file",
                       ["write_s", "check_s", "total_s", "peak_MiB", "blocks_ram",
                        "blocks_file_when_tight", "moved_blocks", "disk_write_MiB"]),
    "12 malloc-large": ("mimalloc-bench's malloc-large: 2000 zero-filled make_unique<char[]> "
                        "of 5-25 MiB, 20 live, fixed seed", "glibc",
                        ["seconds", "us_per_alloc", "free_s", "ram_peak_MiB", "moved_blocks"]),
    "13 fork": ("fork+exec of /bin/true in a loop with the heap written, then every word "
                "rewritten after each (medians); last a child checks it reads the fork's "
                "instant while the parent rewrites", "glibc",
                ["fork_exec_ms", "rewrite_after_ms", "disk_write_MiB"]),
}
NO_RATIO = {"disk_write_MiB", "disk_cancelled_MiB", "blocks_ram", "blocks_file_when_tight",
            "moved_blocks", "moved_MiB", "moved_ms", "moved_longest_ms", "moved_failed",
            "moved_held_off", "ram_peak_MiB", "stats_disk_MiB", "peak_MiB", "rmw_done",
            "writer_rounds", "fio_lat_us", "fio_jobs_lat_us", "reads_done"}
PLACEMENT_DISK = "disk: dd direct, fio 4K QD1"
STATUS_TEXT = {"oom-killed": "OOM-killed", "crashed": "crashed", "timeout": "timeout",
               "too-slow": "too slow", "unavailable": "unavailable", "n/a": "n/a",
               "skipped": "skipped", "fail": "failed", "wrong-output": "WRONG OUTPUT"}
METRIC_LABEL = {"calloc_us": "calloc", "touch_us": "touch 1/1000 pages", "free_us": "free",
                "write_GBps": "write", "read_GBps": "read + checksum", "push_ns": "push",
                "sum_ns": "sum"}
COLOR_OF = {"glibc": "#1f77b4", "jemalloc": "#ff7f0e", "mimalloc": "#2ca02c",
            "tcmalloc": "#d62728", "memkind-pmem": "#9467bd", "naive-files": "#8c564b",
            "mmvec": "#e377c2", "mmvec@256K": "#17becf", "mmvec vector": "#bcbd22",
            "dd oflag=direct": "#7f7f7f", "mmvec@64K": "#393b79", "mmvec@1M": "#637939",
            "mmvec@4M": "#8c6d31", "mmvec@16M": "#843c39", "mmvec@64M": "#7b4173"}
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39"]


# ---- loading and aggregating ------------------------------------------------------------------

def load(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def order_of(rows, key):
    seen = []
    for r in rows:
        if r[key] not in seen:
            seen.append(r[key])
    return seen


class Results:
    def __init__(self, rows):
        self.rows = rows
        self.ok = defaultdict(dict)        # (wl, param, metric, alloc) -> {round: value}
        self.bad = defaultdict(list)       # (wl, param, alloc) -> [(status, detail)]
        self.leftovers = [r for r in rows if r["metric"] == "leftover_files"]
        # cells measured with reduced counts (the naive allocator's small objects)
        self.reduced = {(r["workload"], r["param"], r["allocator"]): r["detail"]
                        for r in rows if r["status"] == "ok" and
                        r["detail"].startswith("reduced:")}
        for r in rows:
            if r["metric"] == "leftover_files":
                continue
            if r["status"] == "ok" and r["metric"]:
                self.ok[(r["workload"], r["param"], r["metric"], r["allocator"])][r["round"]] = \
                    float(r["value"])
            elif r["status"] != "ok":
                self.bad[(r["workload"], r["param"], r["allocator"])].append(
                    (r["status"], r["detail"]))
        self.allocs = order_of(rows, "allocator")

    def median(self, wl, param, metric, alloc):
        v = self.ok.get((wl, param, metric, alloc))
        return statistics.median(v.values()) if v else None

    def ratio(self, wl, param, metric, alloc, base):
        """Median over rounds of value / base's value in the same round."""
        mine, theirs = self.ok.get((wl, param, metric, alloc)), self.ok.get((wl, param, metric,
                                                                           base))
        if not mine or not theirs:
            return None
        r = [mine[k] / theirs[k] for k in mine if k in theirs and theirs[k] > 0]
        return statistics.median(r) if r else None

    def failure(self, wl, param, alloc):
        """The most frequent failure of a cell, with how many rounds it hit."""
        bad = self.bad.get((wl, param, alloc))
        if not bad:
            return None
        statuses = [s for s, _ in bad]
        top = max(set(statuses), key=statuses.count)
        detail = next(d for s, d in bad if s == top)
        return top, statuses.count(top), detail


def baseline_for(wl):
    if wl in PLACEMENT:
        return PLACEMENT[wl][1]
    return DD if wl.startswith("6") else BASELINE


def wl_order(wl):
    """Workloads by their number (8 before 10)."""
    head = wl.split(" ", 1)[0]
    return (int(head) if head.isdigit() else 1 << 30, wl)


def fmt(v):
    if v is None:
        return "?"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


# ---- Markdown ---------------------------------------------------------------------------------

class Notes:
    """Footnotes for failure details, numbered in order of appearance."""

    def __init__(self):
        self.items = []

    def ref(self, text):
        if text not in self.items:
            self.items.append(text)
        return self.items.index(text) + 1


def cell(res, wl, param, metric, alloc, notes, rounds):
    med = res.median(wl, param, metric, alloc)
    fail = res.failure(wl, param, alloc)
    if med is None:
        if not fail:
            return ""
        status, n, detail = fail
        text = STATUS_TEXT.get(status, status)
        if status == "n/a":
            return text
        return f"{text} [{notes.ref(detail)}]" if detail else text
    base = baseline_for(wl)
    text = fmt(med)
    ratio = (res.ratio(wl, param, metric, alloc, base)
             if alloc != base and metric not in NO_RATIO else None)
    if ratio is not None:
        text += f" ({ratio:.2f}x)"
    if fail:
        status, n, detail = fail
        text += f" ({n}/{rounds} {STATUS_TEXT.get(status, status)} [{notes.ref(detail)}])"
    red = res.reduced.get((wl, param, alloc))
    if red:
        text += f" [{notes.ref(red.split(';')[0])}]"
    return text


def columns(res, wl, metrics):
    params = order_of([r for r in res.rows if r["workload"] == wl], "param")
    cols = []
    for p in params:
        for m in metrics:
            if any(k[0] == wl and k[1] == p and k[2] == m for k in res.ok):
                cols.append((p, m))
        if not any(c[0] == p for c in cols):
            cols.append((p, metrics[0]))
    return cols


def direction(metric):
    return "higher is better" if metric in HIGHER_BETTER else "lower is better"


def workload_table(res, wl, notes, rounds, allocs):
    title, metrics, _, _ = WORKLOADS.get(wl, (wl, [], "", "param"))
    cols = columns(res, wl, metrics)
    present = [a for a in allocs if any(r["workload"] == wl and r["allocator"] == a
                                        for r in res.rows)]
    out = [f"### {wl}: {title}", ""]
    head = ["allocator"] + [f"{p}: {m} ({'↑' if m in HIGHER_BETTER else '↓'})"
                            for p, m in cols]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * len(head))
    for a in present:
        cells = [cell(res, wl, p, m, a, notes, rounds) for p, m in cols]
        out.append(f"| {a} | " + " | ".join(cells) + " |")
    return out + [""]


def placement_tables(res, wl, notes, rounds):
    """Workloads 8-12: a table per parameter (allocators x metrics), ratios to the workload's
    baseline; for out of core also the ratios to the disk; for the cgroup workloads the
    'moved to files' line of mmvec's MMVEC_STATS table."""
    title, base, metrics = PLACEMENT[wl]
    out = [f"### {wl}: {title}", "",
           f"In parentheses: the median of same-round ratios to **{base}**.", ""]
    rows = [r for r in res.rows if r["workload"] == wl]
    for p in order_of(rows, "param"):
        present = [a for a in res.allocs if any(r["param"] == p and r["allocator"] == a
                                                for r in rows)]
        cols = [m for m in metrics if any(k[:3] == (wl, p, m) for k in res.ok)] or metrics[:1]
        out += [f"#### {p}", "",
                "| allocator | " + " | ".join(
                    m if m in NO_RATIO else f"{m} ({'↑' if m in HIGHER_BETTER else '↓'})"
                    for m in cols) + " |",
                "|" + "---|" * (len(cols) + 1)]
        for a in present:
            measured = any(k[0] == wl and k[1] == p and k[3] == a for k in res.ok)
            if measured:  # a failure is said in the cells with a value, not in the others
                cells = [count_cell(res, wl, p, m, a) if m in COUNTS else
                         cell(res, wl, p, m, a, notes, rounds)
                         if res.median(wl, p, m, a) is not None else "" for m in cols]
            else:  # killed, skipped, ...: said once, in the first column
                cells = [cell(res, wl, p, cols[0], a, notes, rounds)] + [""] * (len(cols) - 1)
            out.append(f"| {a} | " + " | ".join(cells) + " |")
        out.append("")
        if any(a == PLACEMENT_DISK for a in present):
            out += disk_ratios(res, wl, p, present)
        out += moved_lines(res, wl, p, present)
    return out


COUNTS = {"blocks_ram", "blocks_file_when_tight", "moved_blocks", "moved_failed",
          "moved_held_off", "rmw_done", "writer_rounds", "reads_done"}


def count_cell(res, wl, p, m, a):
    """A count: the median, as a whole number unless it falls between two."""
    med = res.median(wl, p, m, a)
    if med is None:
        return ""
    return f"{med:,.0f}" if med == int(med) else f"{med:,.1f}"


# (the allocator's metric, the disk's metric it is divided by, the column's title)
DISK_RATIOS = [("fill_GBps", "fill_GBps", "fill / dd write"),
               ("rmw_per_s", "rmw_per_s", "read-modify-writes / fio QD1 IOPS"),
               ("scan_first_GBps", "scan_GBps", "scan after the fill / dd read"),
               ("scan_GBps", "scan_GBps", "scan after the RMW / dd read"),
               ("reads_per_s", "reads_per_s", "threads' random reads / fio 8 jobs IOPS"),
               ("reads_per_s", "rmw_per_s", "threads' random reads / fio QD1 IOPS"),
               ("reads_per_s", "fio_qd32_iops", "threads' random reads / fio QD32 IOPS"),
               ("tfill_GBps", "fill_GBps", "threads' fill / dd write"),
               ("tscan_GBps", "scan_GBps", "threads' scan / dd read")]


def cross_ratio(res, wl, p, m, a, base_m, base):
    """Median over rounds of a's m / base's base_m in the same round."""
    mine, theirs = res.ok.get((wl, p, m, a)), res.ok.get((wl, p, base_m, base))
    if not mine or not theirs:
        return None
    r = [mine[k] / theirs[k] for k in mine if k in theirs and theirs[k] > 0]
    return statistics.median(r) if r else None


def disk_ratios(res, wl, p, present):
    rows = {a: [cross_ratio(res, wl, p, m, a, dm, PLACEMENT_DISK) for m, dm, _ in DISK_RATIOS]
            for a in present if a != PLACEMENT_DISK}
    used = [i for i in range(len(DISK_RATIOS)) if any(r[i] is not None for r in rows.values())]
    if not used:
        return []
    out = ["Against the disk (median of same-round ratios; 1.00x = the disk's own rate):", "",
           "| allocator | " + " | ".join(DISK_RATIOS[i][2] for i in used) + " |",
           "|" + "---|" * (len(used) + 1)]
    for a, r in rows.items():
        cells = [f"{r[i]:.2f}x" if r[i] is not None else "" for i in used]
        if any(cells):
            out.append(f"| {a} | " + " | ".join(cells) + " |")
    return out + [""]


def moved_lines(res, wl, p, present):
    """The 'moved to files' line of MMVEC_STATS, each round, for each mmvec allocator."""
    out = []
    for a in present:
        got = [(int(r["round"]), r["detail"]) for r in res.rows
               if r["workload"] == wl and r["param"] == p and r["allocator"] == a and
               r["metric"] == "moved_blocks" and r["status"] == "ok" and r["detail"]]
        if not got or wl.startswith(("8", "12")):
            continue
        out.append(f"- {a}, MMVEC_STATS: " + "; ".join(f"round {n}: `{d}`" for n, d in got))
    return out + ([""] if out else [])


def rounds_of(rows):
    return max((int(r["round"]) for r in rows), default=0)


def sweep_allocs(allocs):
    return [a for a in allocs if a.startswith("mmvec@") and a != "mmvec@256K"]


def main_allocs(allocs):
    sweep = set(sweep_allocs(allocs))
    return [a for a in allocs if a not in sweep]


def markdown(res, meta, machine):
    rounds = rounds_of(res.rows)
    notes = Notes()
    out = [f"# mmvec allocator benchmark ({'quick' if meta.get('quick') else 'full'} run)", ""]
    out += header_lines(meta, machine, rounds)
    if any(r["workload"] in PLACEMENT for r in res.rows):
        out += ["Placement workloads (8-12): `mmvec` is MMVEC_PLACEMENT=auto (the default), "
                "`mmvec file` MMVEC_PLACEMENT=file; their ratios are to the baseline named above "
                "each table; columns without an arrow are counts or sizes (no ratio).", ""]
    allocs = main_allocs(res.allocs)
    for wl in sorted({r["workload"] for r in res.rows}, key=wl_order):
        if wl in PLACEMENT:
            out += placement_tables(res, wl, notes, rounds)
        else:
            out += workload_table(res, wl, notes, rounds, allocs)
    out += sweep_table(res, notes, rounds)
    if any(r["workload"] not in PLACEMENT for r in res.rows):
        out += targets(res)
    out += leftover_lines(res)
    if notes.items:
        out += ["### Notes", ""] + [f"{i + 1}. {t}" for i, t in enumerate(notes.items)] + [""]
    out += ["### Plots", ""] + [f"![{p}]({p})" for p in meta.get("plots", [])] + [""]
    return "\n".join(out)


def header_lines(meta, machine, rounds):
    elapsed = meta.get("elapsed")
    thr = meta.get("default_threshold")
    lines = [f"{rounds} rounds, allocators interleaved round by round"
             + (f", {elapsed / 60:.1f} minutes" if elapsed else "") + ". "
             "Each cell: the median over rounds; in parentheses the median of the per-round "
             "ratios to glibc of the same round (out of core: to the disk's `dd oflag=direct` "
             "bandwidth). ↓ lower is better, ↑ higher is better. Times are taken inside the "
             "program with the monotonic clock (workload 5: from outside, start-up included).",
             "",
             f"Machine: {machine.get('kernel', '?')}; {machine.get('cpu', '?')}; "
             f"segment directory on {machine.get('fs', '?')}; load average "
             f"{machine.get('load', '?')} at the start (other work on the machine adds noise).",
             f"mmvec default threshold: {thr if thr is not None else 'unknown'}"
             + (f" ({thr >> 10} KiB)" if thr else "") + "; `mmvec@256K` is MMVEC_THRESHOLD=256K.",
             ""]
    if meta.get("mmvec_status"):
        lines += [f"**mmvec was not measured**: {meta['mmvec_status']}.", ""]
    return lines


def sweep_table(res, notes, rounds):
    sw = sweep_allocs(res.allocs)
    if not sw:
        return []
    allocs = [BASELINE, "mmvec", "mmvec@256K"] + sw
    items = [(wl, p) for wl, p in dict.fromkeys((r["workload"], r["param"]) for r in res.rows
                                                 if r["allocator"] in sw)]
    out = ["### Threshold sweep (MMVEC_THRESHOLD), ratio to glibc of the same round", "",
           "| allocator | " + " | ".join(f"{wl.split(' ', 1)[1]} {p}" for wl, p in items) + " |",
           "|" + "---|" * (len(items) + 1)]
    for a in allocs:
        cells = []
        for wl, p in items:
            m = WORKLOADS.get(wl, ("", [""]))[1][0]
            cells.append(cell(res, wl, p, m, a, notes, rounds))
        out.append(f"| {a} | " + " | ".join(cells) + " |")
    return out + [""]


def leftover_lines(res):
    if not res.leftovers:
        return []
    out = ["### Files left behind after a run exited (should be none)", ""]
    for r in res.leftovers:
        out.append(f"- round {r['round']}, {r['allocator']}, {r['workload']} {r['param']}: "
                   f"{r['value']} files, {r['detail']}")
    return out + [""]


# ---- the targets ------------------------------------------------------------------------

def pick(res, wl, param_start):
    return next((p for (w, p, _, _) in res.ok if w == wl and p.startswith(param_start)), None)


def target_rows(res):
    """(target, measured, met) for each target of issue 4 that this run measured."""
    rows = []

    def add(name, value, ok, fmt_value):
        rows.append((name, fmt_value if value is not None else "not measured",
                     "?" if value is None else ("yes" if ok(value) else "**no**")))

    small = pick(res, "4 small", "")
    if small:
        r = res.ratio("4 small", small, "Mpairs_per_s", "mmvec", "jemalloc")
        add("small objects >= 0.95x jemalloc", r, lambda v: v >= 0.95, f"{r or 0:.2f}x")
    for size in ("256K", "1M", "16M", "256M"):
        r = res.ratio("1 churn", size, "us_per_cycle", "mmvec@256K", BASELINE)
        add(f"churn {size} (threshold 256K) <= 2x glibc", r, lambda v: v <= 2, f"{r or 0:.2f}x")
    r = res.ratio("1 churn", "1M", "us_per_cycle", "naive-files", "mmvec@256K")
    add("churn 1M >= 100x faster than naive files", r, lambda v: v >= 100, f"{r or 0:.0f}x")
    steps, dbl = pick(res, "2 realloc", "step"), pick(res, "2 realloc", "doubling")
    if steps:
        r = res.ratio("2 realloc", steps, "seconds", "mmvec", BASELINE)
        add("realloc steps <= 1.5x glibc", r, lambda v: v <= 1.5, f"{r or 0:.2f}x")
        r = res.ratio("2 realloc", steps, "seconds", "jemalloc", "mmvec")
        add("realloc steps >= 3x faster than jemalloc", r, lambda v: v >= 3, f"{r or 0:.2f}x")
    if dbl:
        r = res.ratio("2 realloc", dbl, "seconds", "mmvec", BASELINE)
        add("realloc doubling <= 1x glibc", r, lambda v: v <= 1.0, f"{r or 0:.2f}x")
    rows += calloc_target(res)
    rows += ooc_target(res)
    vec = pick(res, "7 vector", "")
    if vec:
        r = res.ratio("7 vector", vec, "push_ns", "mmvec vector", BASELINE)
        add("vector push >= 0.8x the glibc realloc array's speed (time ratio <= 1.25)", r,
            lambda v: v <= 1.25, f"{r or 0:.2f}x time")
    return rows


def calloc_target(res):
    p = pick(res, "3 calloc", "")
    if not p:
        return []
    c = res.median("3 calloc", p, "calloc_us", "mmvec")
    f = res.median("3 calloc", p, "free_us", "mmvec")
    t = res.ratio("3 calloc", p, "touch_us", "mmvec", BASELINE)
    rows = []
    if c is None or f is None:
        rows.append(("calloc 1 GiB: calloc + free under 1 ms", "not measured", "?"))
    else:
        rows.append(("calloc 1 GiB: calloc + free under 1 ms", f"{(c + f) / 1000:.2f} ms",
                     "yes" if c + f < 1000 else "**no**"))
    rows.append(("calloc 1 GiB: touching the pages no slower than glibc (ratio <= 1.5)",
                 f"{t:.2f}x" if t is not None else "not measured",
                 "?" if t is None else ("yes" if t <= 1.5 else "**no**")))
    return rows


def ooc_target(res):
    p = pick(res, "6 out of core", "") or next(
        (k[1] for k in res.bad if k[0] == "6 out of core"), None)
    if not p:
        return []
    r = res.ratio("6 out of core", p, "write_GBps", "mmvec", DD)
    ok = res.median("6 out of core", p, "write_GBps", "mmvec") is not None
    fail = res.failure("6 out of core", p, "mmvec")
    measured = ok or (fail and fail[0] not in ("unavailable", "skipped"))
    return [("out of core: the 4x heap finishes",
             "yes" if ok else (STATUS_TEXT.get(fail[0], fail[0]) if measured else "not measured"),
             "?" if not measured else ("yes" if ok else "**no**")),
            ("out of core: >= 90% of dd's direct-write bandwidth",
             f"{r:.2f}x" if r is not None else "not measured",
             "?" if r is None else ("yes" if r >= 0.9 else "**no**"))]


def targets(res):
    rows = target_rows(res)
    if not rows:
        return []
    out = ["### Issue 4 targets (mmvec at its default threshold unless named)", "",
           "| target | measured (median of same-round ratios) | met |", "|---|---|---|"]
    out += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return out + [""]


# ---- plots ------------------------------------------------------------------------------------

def gp_quote(s):
    """A gnuplot double-quoted string (where \\n is a line break)."""
    return '"' + s.replace("\\", "/").replace('"', "'").replace("\n", "\\n") + '"'


def plot_data(res, wl, metrics, by, allocs):
    """Rows of (cluster label, [value per allocator]) for a clustered histogram."""
    cols = columns(res, wl, metrics[:1] if by == "param" else metrics)
    rows = []
    for p, m in cols:
        if m == "total_us":
            continue
        label = p if by == "param" else METRIC_LABEL.get(m, m)
        rows.append((label, [res.median(wl, p, m, a) for a in allocs]))
    return rows


def write_dat(path, allocs, rows):
    with open(path, "w") as f:
        f.write(" ".join(gp_quote(x) for x in ["x"] + allocs) + "\n")
        for label, vals in rows:
            cells = [f"{v:.6g}" if v is not None and v > 0 else "?" for v in vals]
            f.write(" ".join([gp_quote(label)] + cells) + "\n")


def color_of(alloc):
    """The same colour for an allocator in every plot."""
    return COLOR_OF.get(alloc, COLORS[sum(alloc.encode()) % len(COLORS)])


def gp_script(png, dat, title, ylabel, colors, log):
    lines = [f"set terminal pngcairo noenhanced size 1100,520 font 'DejaVu Sans,10'",
             f"set output {gp_quote(png)}", f"set title {gp_quote(title)}",
             "set style data histogram", "set style histogram cluster gap 1",
             "set style fill solid 0.85 border -1", "set boxwidth 0.9",
             "set datafile missing '?'",
             "set key outside below center horizontal maxrows 2 Left reverse width 2",
             "set grid ytics", "set xtics nomirror", "set format y '%g'",
             f"set ylabel {gp_quote(ylabel)}",
             "set xtics font ',9'"]
    # Linear plots start at zero, so that bar heights compare honestly.
    lines.append("set logscale y" if log else "set yrange [0:*]")
    series = [f"{gp_quote(dat) if i == 0 else chr(39) * 2} using {i + 2}"
              + (":xtic(1)" if i == 0 else "") + f" title columnheader({i + 2}) lc rgb '{c}'"
              for i, c in enumerate(colors)]
    lines.append("plot " + ", \\\n     ".join(series))
    return "\n".join(lines) + "\n"


def missing_note(gone):
    """A second title line naming the bars that are missing, and why."""
    return ("\nno bar: " + ", ".join(gone)) if gone else ""


def plot(outdir, name, title, ylabel, allocs, rows, log=True, gone=None):
    vals = [v for _, vs in rows for v in vs if v]
    if not rows or not vals:
        return None
    used = [i for i, a in enumerate(allocs) if any(vs[i] for _, vs in rows)]
    title += missing_note(gone or [])
    allocs = [allocs[i] for i in used]
    rows = [(label, [vs[i] for i in used]) for label, vs in rows]
    dat, gp, png = (os.path.join(outdir, name + ext) for ext in (".dat", ".gp", ".png"))
    write_dat(dat, allocs, rows)
    log = log and max(vals) / max(min(vals), 1e-12) > 20
    with open(gp, "w") as f:
        f.write(gp_script(png, dat, title, ylabel + (" (log scale)" if log else ""),
                          [color_of(a) for a in allocs], log))
    r = subprocess.run(["gnuplot", gp], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"report: gnuplot failed for {name}: {r.stderr.strip()[:300]}")
        return None
    return name + ".png"


def plots(res, outdir):
    made = []
    allocs = main_allocs(res.allocs)
    for wl, (title, metrics, ylabel, by) in WORKLOADS.items():
        ms = metrics[:2] if wl.startswith("6") else metrics
        rows = plot_data(res, wl, ms, by, allocs)
        direction_note = "higher is better" if ms[0] in HIGHER_BETTER else "lower is better"
        name = "w" + wl.replace(" ", "_")
        p = plot(outdir, name, f"{wl}: {title} - medians, {direction_note}", ylabel, allocs,
                 rows, log=not wl.startswith(("4", "6")), gone=failures_of(res, wl, allocs))
        if p:
            made.append(p)
    p = sweep_plot(res, outdir)
    return made + ([p] if p else [])


def failures_of(res, wl, allocs):
    """'allocator (why)' or 'allocator at param (why)' for each failed cell of a workload."""
    params = order_of([r for r in res.rows if r["workload"] == wl], "param")
    gone = []
    for a in allocs:
        failed = [(p, res.failure(wl, p, a)) for p in params
                  if res.failure(wl, p, a) and not any(
                      k[0] == wl and k[1] == p and k[3] == a for k in res.ok)]
        if not failed:
            continue
        why = STATUS_TEXT.get(failed[0][1][0], failed[0][1][0])
        if len(failed) == len(params):
            gone.append(f"{a} ({why})")
        else:
            gone += [f"{a} at {p} ({STATUS_TEXT.get(f[0], f[0])})" for p, f in failed]
    return gone


def threshold_bytes(alloc):
    t = alloc.split("@", 1)[1]
    return int(t[:-1]) << {"K": 10, "M": 20, "G": 30}[t[-1]]


def short_label(wl, param):
    """A cluster label short enough for the sweep plot's x axis."""
    if wl.startswith("4"):
        return "small objects"
    if wl.startswith("5"):
        return param.split(",")[0]
    return f"{wl.split(' ', 1)[1]} {param}"


def sweep_plot(res, outdir):
    sw = sweep_allocs(res.allocs)
    if not sw:
        return None
    allocs = sorted(sw + ["mmvec@256K"], key=threshold_bytes) + ["mmvec"]
    items = list(dict.fromkeys((r["workload"], r["param"]) for r in res.rows
                               if r["allocator"] in sw))
    rows = []
    for wl, p in items:
        m = WORKLOADS[wl][1][0]
        rows.append((short_label(wl, p), [res.ratio(wl, p, m, a, BASELINE) for a in allocs]))
    return plot(outdir, "sweep", "MMVEC_THRESHOLD sweep: ratio to glibc of the same round "
                "(small objects: throughput, higher is better; others: time, lower is better)",
                "ratio to glibc", allocs, rows)


# ---- entry ------------------------------------------------------------------------------------

def machine_summary(outdir):
    """kernel / CPU / file system lines from machine.txt, for the table's header."""
    path = os.path.join(outdir, "machine.txt")
    out, section = {}, None
    try:
        with open(path) as f:
            for line in f:
                line = line.rstrip("\n")
                if line.startswith("## "):
                    section = line[3:]
                elif line and section == "kernel":
                    out["kernel"] = line
                elif line.startswith("Model name") and section == "cpu":
                    out["cpu"] = line.split(":", 1)[1].strip() + ", " + out.get("cpu", "")
                elif line.startswith("CPU(s)") and section == "cpu":
                    out["cpu"] = out.get("cpu", "") + line.split(":", 1)[1].strip() + " CPUs"
                elif line and section == "its file system":
                    out["fs"] = " ".join(line.split())
                elif line and section == "load average at start":
                    out["load"] = " ".join(line.split()[:3])
    except OSError:
        pass
    return out


def build(outdir, meta=None):
    meta_path = os.path.join(outdir, "meta.json")
    if meta is None:
        try:
            with open(meta_path) as f:
                meta = json.load(f)
        except (OSError, ValueError):
            meta = {}
    else:
        with open(meta_path, "w") as f:
            json.dump(meta, f, indent=1)
    res = Results(load(os.path.join(outdir, "results.csv")))
    meta["plots"] = plots(res, outdir)
    with open(os.path.join(outdir, "results.md"), "w") as f:
        f.write(markdown(res, meta, machine_summary(outdir)))


def update_readme(readme, results_dir):
    """Replaces the block between the results markers of bench/README.md with the results.md of
    results_dir (headings demoted one level, image links made relative to the README)."""
    begin, end = "<!-- results:begin -->", "<!-- results:end -->"
    try:
        with open(readme) as f:
            text = f.read()
        with open(os.path.join(results_dir, "results.md")) as f:
            body = f.read()
    except OSError:
        return False
    if begin not in text or end not in text:
        return False
    rel = os.path.relpath(results_dir, os.path.dirname(os.path.abspath(readme)))
    lines = []
    for line in body.splitlines():
        if line.startswith("#"):
            line = "#" + line
        if line.startswith("![") and "](" in line:
            name = line[line.index("](") + 2:-1]
            line = line[:line.index("](") + 2] + f"{rel}/{name})"
        lines.append(line)
    head, rest = text.split(begin, 1)
    tail = rest.split(end, 1)[1]
    with open(readme, "w") as f:
        f.write(head + begin + "\n" + "\n".join(lines) + "\n" + end + tail)
    return True
