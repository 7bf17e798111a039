#!/usr/bin/env python3
"""Turns the JSON lines of one benchmark run into docs/BENCHMARKS.md and the
data file of the chart (bench/chart.gp draws it).

    bench/report.py --results DIR --out docs/BENCHMARKS.md --chart-data FILE --chart bench.png

DIR holds what bench/run.sh collected: *.jsonl (one row per line, from the
benchmark programs and the Redis step), machine.txt and commands.txt. The
targets of issue 6 are checked here and reported as met or missed, with the
margin; nothing fails on a number.
"""

import argparse
import glob
import json
import os
import sys

ENGINES = ["mini-kvstore", "leveldb", "rocksdb", "lmdb", "redis"]
PEERS = ["leveldb", "rocksdb", "lmdb", "redis"]
TITLES = {"mini-kvstore": "mini-kvstore", "leveldb": "LevelDB", "rocksdb": "RocksDB",
          "lmdb": "LMDB", "redis": "Redis"}
# Throughput workloads, in the order the table shows them.
THROUGHPUT = ["fillseq", "fillrandom", "overwrite", "readrandom", "readmissing", "seekrandom",
              "readwhilewriting", "readwhilecompacting", "deleterandom", "fillsync", "fillbatch"]


def load_rows(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                print("report: skipped a bad line in %s" % path, file=sys.stderr)
    return rows


def load(results):
    rows = []
    for path in sorted(glob.glob(os.path.join(results, "*.jsonl"))):
        rows.extend(load_rows(path))
    return rows


def read_pairs(path):
    pairs = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                if ": " in line:
                    k, v = line.rstrip("\n").split(": ", 1)
                    pairs.append((k, v))
    return pairs


def read_lines(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip()]


class Run:
    """The rows of one run, indexed by (engine, workload, threads)."""

    def __init__(self, rows):
        self.rows = rows
        self.by_key = {}
        for r in rows:
            self.by_key[(r.get("engine"), r.get("workload"), r.get("threads"))] = r

    def get(self, engine, workload, threads=1):
        return self.by_key.get((engine, workload, threads))

    def value(self, engine, workload, field, threads=1):
        r = self.get(engine, workload, threads)
        if r is None or field not in r or r.get("note") == "not supported":
            return None
        return r[field]

    def rate(self, engine, workload, threads=1):
        r = self.get(engine, workload, threads)
        if r is None or not r.get("ops"):
            return None
        return r.get("ops_per_sec")

    def threads_of(self, workload):
        return sorted({r["threads"] for r in self.rows
                       if r.get("workload") == workload and r.get("engine") != "redis"
                       and r.get("ops")})

    def engines(self):
        present = {r.get("engine") for r in self.rows}
        return [e for e in ENGINES if e in present]

    def config(self, engine):
        return self.get(engine, "config", 0)


def fmt_rate(v):
    if v is None:
        return "—"
    if v >= 100:
        return "{:,.0f}".format(v)
    return "{:.1f}".format(v)


def fmt_num(v, digits=1):
    if v is None:
        return "—"
    return "{:,.{d}f}".format(v, d=digits)


def fmt_ratio(v):
    return "—" if v is None else "{:.2f}×".format(v)


def best_peer(run, workload, threads, field=None, lower_is_better=False):
    """(value, engine) of the best peer for a row, or (None, None)."""
    best = (None, None)
    for e in PEERS:
        v = run.value(e, workload, field, threads) if field else run.rate(e, workload, threads)
        if v is None or v <= 0:
            continue
        if best[0] is None or (v < best[0] if lower_is_better else v > best[0]):
            best = (v, e)
    return best


def fmt_rate_spread(run, engine, workload, threads):
    """The rate, and for a median of several runs, ± half their spread."""
    v = run.rate(engine, workload, threads)
    spread = run.value(engine, workload, "spread_pct", threads)
    if v is None or spread is None:
        return fmt_rate(v)
    return "%s ±%.0f %%" % (fmt_rate(v), spread / 2)


def throughput_table(run, engines):
    head = ["workload", "threads"] + [TITLES[e] for e in engines] + ["best peer",
                                                                     "mini-kvstore ÷ best peer"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for w in THROUGHPUT:
        for t in run.threads_of(w):
            cells = [w, str(t)] + [fmt_rate_spread(run, e, w, t) for e in engines]
            bv, be = best_peer(run, w, t)
            ours = run.rate("mini-kvstore", w, t)
            cells.append("%s (%s)" % (fmt_rate(bv), TITLES[be]) if be else "—")
            cells.append(fmt_ratio(ours / bv) if ours and bv else "—")
            lines.append("| " + " | ".join(cells) + " |")
    r = run.get("redis", "fillsync", 50) or next(
        (x for x in run.rows if x.get("engine") == "redis" and x.get("workload") == "fillsync"),
        None)
    if r:
        cells = ["fillsync (redis-benchmark SET)", "%d clients" % r["threads"]]
        cells += [fmt_rate(r["ops_per_sec"]) if e == "redis" else "" for e in engines]
        cells += ["", ""]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def latency_table(run, engines):
    head = ["workload", "threads"] + ["%s p50 / p99 / p99.9 µs" % TITLES[e] for e in engines
                                      if e != "redis"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for w in THROUGHPUT:
        for t in run.threads_of(w):
            cells = [w, str(t)]
            for e in engines:
                if e == "redis":
                    continue
                r = run.get(e, w, t)
                if r is None or "p99_us" not in r:
                    cells.append("—")
                else:
                    cells.append("%s / %s / %s" % (fmt_num(r["p50_us"], 2), fmt_num(r["p99_us"], 2),
                                                    fmt_num(r.get("p999_us"), 1)))
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def other_table(run, engines):
    """Memory, open, compaction: one row per figure, one column per engine."""
    figures = [
        ("index memory, bytes per key", "memory", "index_bytes_per_key", 1),
        ("resident heap growth (RssAnon), bytes per key", "memory", "rss_anon_bytes_per_key", 1),
        ("resident file pages (RssFile), bytes per key", "memory", "rss_file_bytes_per_key", 1),
        ("Redis used_memory growth, bytes per key", "memory", "used_memory_bytes_per_key", 1),
        ("disk, bytes per key after fillrandom", "memory", "disk_bytes_per_key", 1),
        ("open, ms (mini-kvstore: via its snapshot)", "open", "open_ms", 1),
        ("open replaying the whole log, ms", "open-replay", "open_ms", 1),
        ("compact: seconds", "compact", "secs", 2),
        ("compact: disk MiB before → after", "compact", None, 0),
        ("compact: MiB written by it (as the engine counts them)", "compact", "written_mb", 0),
        ("compact: live data moved ÷ its time, MiB/s", "compact", "live_mb_per_s", 0),
        ("p99 of reads during compaction, µs", "readwhilecompacting", "p99_us", 2),
        ("p99 of the same reads before it, µs", "readwhilecompacting", "p99_baseline_us", 2),
        ("fillsync 1 / 4 / 16 / 64 threads: writes per fdatasync", "fillsync", "writes_per_sync", 1),
    ]
    head = ["figure"] + [TITLES[e] for e in engines]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, w, field, digits in figures:
        cells = [label]
        any_value = False
        for e in engines:
            if w == "compact" and field is None:
                b, a = run.value(e, w, "before_mb"), run.value(e, w, "after_mb")
                v = "%s → %s" % (fmt_num(b, 0), fmt_num(a, 0)) if b is not None else None
            elif w == "fillsync":
                vals = [run.value(e, w, field, t) for t in run.threads_of("fillsync")]
                v = " / ".join(fmt_num(x, 1) for x in vals) if any(vals) else None
            else:
                x = run.value(e, w, field)
                v = fmt_num(x, digits) if x is not None else None
            any_value = any_value or v is not None
            cells.append(v if v is not None else "—")
        if any_value:
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def limits_table(run):
    lines = ["| limit | measured | read against it |", "|---|---|---|"]
    app = run.rate("machine", "fdatasync-append")
    over = run.rate("machine", "fdatasync-overwrite")
    seq = run.value("machine", "seqwrite", "mb_per_s")
    mem = run.value("machine", "memcpy", "mb_per_s")
    fs1 = run.rate("mini-kvstore", "fillsync", 1)
    comp = run.value("mini-kvstore", "compact", "live_mb_per_s")
    rec = run.value("machine", "fdatasync-append", "record_bytes")
    lines.append("| fdatasync per second, appending %s-byte records to a growing file | %s | "
                 "mini-kvstore fillsync, 1 thread: %s of it |"
                 % (fmt_num(rec, 0), fmt_rate_spread(run, "machine", "fdatasync-append", 1),
                    pct(fs1, app)))
    lines.append("| fdatasync per second, overwriting a preallocated file | %s | %s |"
                 % (fmt_rate_spread(run, "machine", "fdatasync-overwrite", 1),
                    "mini-kvstore fillsync, 1 thread: %s of it" % pct(fs1, over)))
    lines.append("| sequential write, 1 MiB writes then fdatasync, MiB/s | %s | "
                 "mini-kvstore compaction: %s of it |"
                 % (fmt_rate_spread(run, "machine", "seqwrite", 1), pct(comp, seq)))
    lines.append("| memcpy between 64 MiB buffers, MiB/s | %s | |" % fmt_num(mem, 0))
    doc = run.value("machine", "zstd-decompress", "doc_bytes")
    frame = run.value("machine", "zstd-decompress", "frame_bytes")
    lines.append("| zstd alone: JSON documents of the corpus (%s bytes on average, a %s-byte "
                 "frame each at level %s with a %s KiB dictionary, as compaction writes them) "
                 "decompressed per second, one at a time in random order | %s | the "
                 "compression section |"
                 % (fmt_num(doc, 0), fmt_num(frame, 0),
                    fmt_num(run.value("machine", "zstd-decompress", "level"), 0),
                    fmt_num((run.value("machine", "zstd-decompress", "dict_bytes") or 0) / 1024, 0),
                    fmt_rate_spread(run, "machine", "zstd-decompress", 1)))
    return lines


def pct(a, b):
    if a is None or not b:
        return "—"
    return "{:.0f} %".format(100.0 * a / b)


def check(label, target, value, goal, detail):
    """A row of the targets table: met when value >= goal."""
    if value is None or goal is None:
        return "| %s | %s | — | not measured |" % (label, target)
    ok = value >= goal
    short = 100.0 * (1 - value / goal)
    verdict = "met" if ok else "missed by %s %%" % ("%.1f" % short if short < 10 else
                                                    "%.0f" % short)
    return "| %s | %s | %s | %s |" % (label, target, detail, verdict)


def targets_table(run):
    ours = "mini-kvstore"
    lines = ["\"Missed by X %\": the measured figure falls X % short of the goal (for times "
             "and bytes per key: it would have to shrink by X %).", "",
             "| workload | target | measured | verdict |", "|---|---|---|---|"]
    rr1 = run.rate(ours, "readrandom", 1)
    lm1 = run.rate("lmdb", "readrandom", 1)
    lines.append(check("readrandom, 1 thread", "≥ 1.0× LMDB", rr1, lm1,
                       "%s vs %s gets/s (%s)" % (fmt_rate(rr1), fmt_rate(lm1),
                                                 fmt_ratio(rr1 / lm1) if rr1 and lm1 else "—")))
    rr2 = run.rate(ours, "readrandom", 2)
    lines.append(check("readrandom, 2 threads", "≥ 1.8× itself at 1 thread", rr2,
                       1.8 * rr1 if rr1 else None,
                       "%s gets/s, %s" % (fmt_rate(rr2), fmt_ratio(rr2 / rr1) if rr1 and rr2
                                          else "—")))
    rm1 = run.rate(ours, "readmissing", 1)
    lines.append(check("readmissing", "≥ 2× readrandom", rm1, 2 * rr1 if rr1 else None,
                       "%s gets/s, %s" % (fmt_rate(rm1), fmt_ratio(rm1 / rr1) if rm1 and rr1
                                          else "—")))
    fr = run.rate(ours, "fillrandom", 1)
    ldb = run.rate("leveldb", "fillrandom", 1)
    rdb = run.rate("rocksdb", "fillrandom", 1)
    lines.append(check("fillrandom (sync none)", "≥ 1.5× LevelDB", fr, 1.5 * ldb if ldb else None,
                       "%s vs %s puts/s (%s)" % (fmt_rate(fr), fmt_rate(ldb),
                                                 fmt_ratio(fr / ldb) if fr and ldb else "—")))
    lines.append(check("fillrandom (sync none)", "≥ 2× RocksDB", fr, 2 * rdb if rdb else None,
                       "%s vs %s puts/s (%s)" % (fmt_rate(fr), fmt_rate(rdb),
                                                 fmt_ratio(fr / rdb) if fr and rdb else "—")))
    fs1 = run.rate(ours, "fillsync", 1)
    app = run.rate("machine", "fdatasync-append")
    lines.append(check("fillsync, 1 thread", "≥ the disk's fdatasync rate for appends", fs1, app,
                       "%s puts/s vs %s fdatasync/s (%s)" % (fmt_rate(fs1), fmt_rate(app),
                                                             pct(fs1, app))))
    fs16 = run.rate(ours, "fillsync", 16)
    lines.append(check("fillsync, 16 threads", "≥ 8× fillsync at 1 thread", fs16,
                       8 * fs1 if fs1 else None,
                       "%s puts/s, %s" % (fmt_rate(fs16), fmt_ratio(fs16 / fs1) if fs16 and fs1
                                          else "—")))
    l16 = run.rate("leveldb", "fillsync", 16)
    lines.append(check("fillsync, 16 threads", "≥ 3× LevelDB at 16 threads", fs16,
                       3 * l16 if l16 else None,
                       "%s vs %s puts/s (%s)" % (fmt_rate(fs16), fmt_rate(l16),
                                                 fmt_ratio(fs16 / l16) if fs16 and l16 else "—")))
    fb = run.rate(ours, "fillbatch", 1)
    lines.append(check("fillbatch: durable batches of 100 puts, 1 thread",
                       "≥ 50× fillsync at 1 thread", fb, 50 * fs1 if fs1 else None,
                       "%s puts/s, %s" % (fmt_rate(fb), fmt_ratio(fb / fs1) if fb and fs1
                                          else "—")))
    snap = run.value(ours, "open", "open_ms")
    replay = run.value(ours, "open-replay", "open_ms")
    keys = run.value(ours, "memory", "keys")
    # "≤ 0.5 s" as value ≥ goal: 500 / snap ≥ 1.
    lines.append(check("open via snapshot", "≤ 0.5 s", 500.0 / snap if snap else None, 1.0,
                       "%s ms for %s keys" % (fmt_num(snap, 1), fmt_num(keys, 0))))
    lines.append(check("open via snapshot", "≥ 5× faster than full replay",
                       replay / snap if snap and replay else None, 5.0,
                       "%s ms vs %s ms replaying (%s)" % (
                           fmt_num(snap, 1), fmt_num(replay, 1),
                           fmt_ratio(replay / snap) if snap and replay else "—")))
    idx = run.value(ours, "memory", "index_bytes_per_key")
    ks = (run.config(ours) or {}).get("key_size")
    lines.append(check("index memory, the ordered index included",
                       "≤ key length + 40 bytes per key",
                       (ks + 40) / idx if idx and ks else None, 1.0,
                       "%s bytes per key (limit %s)" % (fmt_num(idx, 1),
                                                        fmt_num(ks + 40 if ks else None, 0))))
    seek = run.value(ours, "seekrandom", "p50_us")
    lm_seek = run.value("lmdb", "seekrandom", "p50_us")
    lines.append(check("seekrandom: 100 keys from a random key", "median ≤ 0.1 ms",
                       100.0 / seek if seek else None, 1.0,
                       "p50 %s µs (LMDB's cursor: %s µs)" % (fmt_num(seek, 2),
                                                            fmt_num(lm_seek, 2))))
    page = run.get("volume-server", "http-list-page", 1)
    p50 = page.get("p50_ms") if page else None
    lines.append(check("HTTP: a page of 100 keys from a random key", "median ≤ 1 ms",
                       1.0 / p50 if p50 else None, 1.0,
                       "p50 %s ms among %s keys" % (fmt_num(p50, 2),
                                                    fmt_num(page.get("keys") if page else None,
                                                            0))))
    walk = run.get("volume-server", "http-list-all", 1)
    secs = walk.get("secs") if walk else None
    lines.append(check("HTTP: every key by pages of 1,000", "≤ 3 s",
                       3.0 / secs if secs else None, 1.0,
                       "%s s for %s keys" % (fmt_num(secs, 2),
                                             fmt_num(walk.get("keys") if walk else None, 0))))
    comp = run.value(ours, "compact", "live_mb_per_s")
    seq = run.value("machine", "seqwrite", "mb_per_s")
    lines.append(check("compact", "live data moved at ≥ 50 % of sequential write bandwidth", comp,
                       0.5 * seq if seq else None,
                       "%s MiB/s vs %s MiB/s (%s)" % (fmt_num(comp, 0), fmt_num(seq, 0),
                                                    pct(comp, seq))))
    p99r = run.value(ours, "readwhilecompacting", "p99_ratio")
    lines.append(check("compact", "foreground p99 during it ≤ 2× without",
                       2.0 / p99r if p99r else None, 1.0,
                       "p99 %s µs during vs %s µs before (%s)" % (
                           fmt_num(run.value(ours, "readwhilecompacting", "p99_us"), 2),
                           fmt_num(run.value(ours, "readwhilecompacting", "p99_baseline_us"), 2),
                           fmt_ratio(p99r))))
    return lines


def load_extra(results):
    """The rows of the compression and preallocation runs, by file name."""
    extra = {}
    for path in sorted(glob.glob(os.path.join(results, "extra", "*.jsonl"))):
        name = os.path.basename(path)[:-len(".jsonl")]
        extra[name] = Run(load_rows(path))
    return extra


def extra_section(extra, run):
    """Compression on the JSON corpus, and durable writes with and without
    preallocated segments: the figures and the targets they answer."""
    def val(name, workload, field):
        r = extra.get(name)
        return r.value(r.engines()[0] if r.engines() else None, workload, field) if r else None

    def rate(name, workload, threads=1):
        r = extra.get(name)
        return r.rate(r.engines()[0], workload, threads) if r and r.engines() else None

    cfg = (extra.get("kvbench-zstd") or Run([])).config("mini-kvstore") or {}
    lines = ["The same corpus for each: %s keys, each its own JSON document (bench/corpus.c: "
             "user records, 200 B to 2 KiB, %s bytes on average). Bytes on disk are the data "
             "directory's at rest after a full compaction (everything in it: for mini-kvstore "
             "the segments, the index snapshot and the dictionary; for RocksDB its SST files, "
             "log and manifest)." % (fmt_num(cfg.get("num"), 0),
                                    fmt_num(cfg.get("value_size"), 0)), "",
             "| store | after compaction | readcompacted, 1 thread | fillrandom |",
             "|---|---|---|---|"]
    for name, title in (("kvbench-none", "mini-kvstore, no compression"),
                        ("kvbench-zstd", "mini-kvstore, zstd + dictionary"),
                        ("kvbench-rocksdb-zstd", "RocksDB, zstd + dictionary")):
        lines.append("| %s | %s MiB | %s | %s |" % (
            title, fmt_num(val(name, "compact", "after_mb"), 1),
            fmt_rate(rate(name, "readcompacted")), fmt_rate(rate(name, "fillrandom"))))
    lines += ["", "| workload | target | measured | verdict |", "|---|---|---|---|"]
    ours = val("kvbench-zstd", "compact", "after_mb")
    rocks = val("kvbench-rocksdb-zstd", "compact", "after_mb")
    # "≤ RocksDB" as value ≥ goal: rocks / ours ≥ 1.
    lines.append(check("bytes on disk, JSON corpus", "≤ RocksDB's (zstd + dictionary)",
                       rocks / ours if ours and rocks else None, 1.0,
                       "%s MiB vs %s MiB" % (fmt_num(ours, 1), fmt_num(rocks, 1))))
    rz, rn = rate("kvbench-zstd", "readcompacted"), rate("kvbench-none", "readcompacted")
    # A compressed read is an uncompressed read plus zstd's work: one that
    # added nothing else, with zstd alone at Z documents a second, would
    # reach Z / (Z + rn) of the uncompressed rate.
    zd = run.rate("machine", "zstd-decompress")
    lines.append(check("readcompacted, JSON corpus", "zstd ≥ 0.6× uncompressed", rz,
                       0.6 * rn if rn else None,
                       "%s vs %s gets/s (%s); zstd alone decompresses %s documents a second: "
                       "an uncompressed read plus that alone would be %s" % (
                           fmt_rate(rz), fmt_rate(rn), fmt_ratio(rz / rn) if rz and rn else "—",
                           fmt_rate(zd), fmt_ratio(zd / (zd + rn)) if zd and rn else "—")))
    on, off = rate("kvbench-preallocate-on", "fillsync"), rate("kvbench-preallocate-off",
                                                                   "fillsync")
    app, ovw = run.rate("machine", "fdatasync-append"), run.rate("machine", "fdatasync-overwrite")
    lines.append(check("fillsync, 1 thread", "preallocated ≥ 1.4× without", on,
                       1.4 * off if off else None,
                       "%s vs %s puts/s (%s); the disk: %s fdatasync/s appending, %s "
                       "overwriting" % (fmt_rate(on), fmt_rate(off),
                                        fmt_ratio(on / off) if on and off else "—",
                                        fmt_rate(app), fmt_rate(ovw))))
    return lines


def chart_data(run, engines, path):
    """One line per workload and thread count, one column per engine; "-"
    where an engine has no figure."""
    with open(path, "w", encoding="utf-8") as f:
        f.write("workload " + " ".join(TITLES[e] for e in engines) + "\n")
        for w in THROUGHPUT:
            for t in run.threads_of(w):
                label = "%s/%d" % (w, t)
                vals = []
                for e in engines:
                    v = run.rate(e, w, t)
                    vals.append("%.0f" % v if v else "-")
                f.write('"%s" %s\n' % (label, " ".join(vals)))
        r = next((x for x in run.rows
                  if x.get("engine") == "redis" and x.get("workload") == "fillsync"), None)
        if r and "redis" in engines:
            vals = ["%.0f" % r["ops_per_sec"] if e == "redis" else "-" for e in engines]
            f.write('"fillsync/%dc" %s\n' % (r["threads"], " ".join(vals)))


def settings_lines(run, engines):
    out = []
    for e in engines:
        c = run.config(e)
        if c and c.get("note"):
            out.append("- **%s**: %s." % (TITLES[e], c["note"]))
    if "redis" in engines:
        out.append("- **Redis**: a private redis-server on 127.0.0.1 with `--appendonly yes "
                   "--appendfsync always --save ''` (a reply only after the AOF is fsynced; "
                   "Redis fsyncs once per event-loop turn, so concurrent clients share it), "
                   "driven by redis-benchmark with 16-byte keys (`key:` and 12 digits, `-r`); "
                   "its memory figure is used_memory growth after the same key space is filled "
                   "without the AOF.")
    return out


def write_markdown(run, args):
    engines = run.engines()
    machine = read_pairs(os.path.join(args.results, "machine.txt"))
    commands = read_lines(os.path.join(args.results, "commands.txt"))
    cfg = run.config("mini-kvstore") or next(
        (r for r in run.rows if r.get("workload") == "config"), {})
    md = []
    md.append("# Benchmarks")
    md.append("")
    md.append("Generated by `make bench` (bench/run.sh, bench/report.py) from one run; do not "
              "edit by hand. Every engine ran on the same machine in the same run, with the "
              "same %s keys of %s bytes and %s-byte values, the same key order and the same "
              "thread counts. Figures are operations per second unless a row says otherwise. "
              "Nothing here is a pass/fail test: the targets below are read off this run."
              % (fmt_num(cfg.get("num"), 0), fmt_num(cfg.get("key_size"), 0),
                 fmt_num(cfg.get("value_size"), 0)))
    md.append("")
    md.append("![throughput per workload and engine](%s)" % args.chart)
    md.append("")
    md.append("## Machine")
    md.append("")
    md.append("| | |")
    md.append("|---|---|")
    for k, v in machine:
        md.append("| %s | %s |" % (k, v))
    md.append("")
    md.append("The machine is a shared 2-core virtual machine: other builds and tests may have "
              "run beside this one (see the load averages above), so single figures can be off "
              "by tens of percent; compare engines within one run, not across runs.")
    md.append("")
    md.append("## Command")
    md.append("")
    md.append("`make bench`, which installed the peers (`scripts/install-deps.sh --bench`), "
              "built the programs into `build/bench/` and ran:")
    md.append("")
    md.append("```")
    md.extend(commands)
    md.append("```")
    md.append("")
    md.append("## Throughput")
    md.append("")
    md.extend(throughput_table(run, engines))
    md.append("")
    md.append("Where a figure has ±, it is the median of several runs (`--repeat`; the "
              "machine's limits: the fastest) and ± is half their spread, (fastest − slowest) "
              "/ 2 over the median: how far this machine moved under the same work. The Redis row is its own workload (50 clients "
              "over loopback, each SET durable before its reply), to read against the fillsync "
              "rows of 16 and 64 threads.")
    md.append("")
    md.append("## Latency")
    md.append("")
    md.extend(latency_table(run, engines))
    md.append("")
    md.append("## Memory, open, compaction")
    md.append("")
    md.extend(other_table(run, engines))
    md.append("")
    md.append("## The machine's limits, measured in the same run")
    md.append("")
    md.extend(limits_table(run))
    md.append("")
    md.append("## Targets")
    md.append("")
    md.extend(targets_table(run))
    md.append("")
    extra = load_extra(args.results)
    if extra:
        md.append("## Compression, and durable writes into preallocated segments")
        md.append("")
        md.extend(extra_section(extra, run))
        md.append("")
    md.append("## Workloads")
    md.append("")
    md.append(WORKLOADS)
    md.append("")
    md.append("## Settings")
    md.append("")
    md.extend(settings_lines(run, engines))
    md.append("")
    with open(args.out, "w", encoding="utf-8") as f:
        f.write("\n".join(md))
    chart_data(run, engines, args.chart_data)


WORKLOADS = """\
In the order they run, each engine in its own process (`build/bench/kvbench`,
`kvbench-leveldb`, `kvbench-rocksdb`, `kvbench-lmdb`; `--help` lists the flags):

- **fillrandom**: every key once, in a random order (a permutation), into a fresh store.
- **memory**: right after fillrandom: the engine's own index size where it reports one
  (mini-kvstore's `kv_stats.index_bytes`), the growth of resident heap (RssAnon) and of
  mapped file pages (RssFile, LMDB's map) since the process started, and the bytes on disk.
- **overwrite**: as many writes again, keys drawn at random.
- **readrandom**: gets of keys drawn at random, all present; per reader thread count.
- **readmissing**: gets of keys that are absent (same length, a first byte no key has).
- **seekrandom**: a range read from a key drawn at random: the 100 keys from it on, in order
  (mini-kvstore's `kv_range`, an LMDB cursor, a LevelDB and RocksDB iterator), keys copied out;
  per reader thread count.
- **readwhilewriting**: readrandom while one more thread overwrites random keys as fast as it
  can; the row is the readers', the writer's rate is in the JSON output.
- **compact**: a full compaction (`kv_compact`, LevelDB/RocksDB `CompactRange` over all keys;
  LMDB has none). Its rate is the live data moved over the compaction's time: the bytes the
  engine says it wrote where it says (mini-kvstore's `kv_stats.compaction_bytes_written`),
  else the store's size at rest afterwards (reopened first, so that obsolete files are gone).
  **readwhilecompacting**: one reader during the compaction, against the same reader for up
  to 2 s just before it.
- **open**: close and reopen the filled store (mini-kvstore loads its index snapshot);
  **open-replay**: the same after removing the snapshot, so the whole log is replayed.
- **deleterandom**: a tenth of the keys, drawn at random.
- **fillseq**: every key in order into a fresh store.
- **fillsync**: random writes into a fresh store, each acknowledged only once durable, per
  writer thread count: `--sync-num` writes up to 4 threads and a quarter of that per thread
  above (2,000 and 500 by default), at most `--sync-duration` seconds per row.
- **fillbatch**: random writes from one thread in durable batches of 100 puts (mini-kvstore's
  `kv_write`, LevelDB's and RocksDB's `WriteBatch` with sync, one LMDB write transaction),
  counted per put: `--sync-num` batches, at most `--sync-duration` seconds.

readrandom, readmissing, seekrandom, fillsync and fillbatch (each run into a fresh store) run `--repeat` times
(3 in `make bench`) and the median run is reported; the disk limits run as often and report
their fastest run (a limit is what the machine can do: other work on it only lowers it). Every workload but
fillsync and fillbatch uses each engine's fast write mode. Latency is measured around
each operation (one clock read per operation, so it includes choosing the key) into a
histogram with 1/8-octave buckets; percentiles are bucket upper edges."""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--chart-data", required=True)
    ap.add_argument("--chart", default="bench.png")
    args = ap.parse_args()
    rows = load(args.results)
    if not rows:
        print("report: no results in %s" % args.results, file=sys.stderr)
        return 1
    write_markdown(Run(rows), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
