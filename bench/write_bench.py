#!/usr/bin/env python3
"""The durable-write part of `make bench`: volume-server's durable PUT
(wrk) against Redis's durable SET (redis-benchmark, `appendonly yes`,
`appendfsync always`) at several connection counts, in the same run, with the
figures that say how well writes share their fdatasyncs.

    bench/write_bench.py --build build --results DIR [--clients 8,32,128]
                         [--rounds 3] [--duration 8] [--warmup 3] [--no-redis]

For each round and each connection count it runs, one after the other:
volume-server in SYNC_MODE=always under wrk's PUT of 100-byte bodies to keys
drawn among 10,000; the same server binary in SYNC_MODE=none (the rate
without the disk); and redis-server under redis-benchmark's SET of 100-byte
values to keys drawn among 10,000. Between each volume-server run it reads
/metrics before and after, so writes per fdatasync (puts over fsyncs) and the
batch figures (writes per fdatasync histogram, wait for a batch) are the
run's own. Each run also counts the CPU time, per request, of the server
process (all its threads, from /proc) and of the client (wrk or
redis-benchmark): with every writer in one fdatasync, a round lasts a sync
plus the time every connection takes to be answered and send its next
request, and on a machine the client shares that time is their CPU. Medians
over the rounds are reported; the slowest round's ratio to the median shows
the steadiness. Before the first round, each server runs
once for --warmup seconds at the first connection count, not recorded: the
first run after a long benchmark (Redis's as much as ours) is otherwise
slower than the ones after it, whatever the server.

Writes DIR/write.jsonl (one line per run) and DIR/write.md (the table that
bench/run.sh appends to docs/BENCHMARKS.md). Servers listen on 127.0.0.1 on
free ports, in temporary directories, and are stopped at the end.
"""

import argparse
import http.client
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
KEYS = 10000
SIZE = 100


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port, path, deadline_s=20.0):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            if c.getresponse().status < 500:
                return
        except OSError:
            pass
        time.sleep(0.05)  # the port is not open yet: retry, bounded
    raise RuntimeError("nothing answered on port %d" % port)


def metrics(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics")
    r = c.getresponse()
    body = r.read()
    c.close()
    if r.status != 200:
        raise RuntimeError("/metrics: %d" % r.status)
    return json.loads(body)


def hist_delta(after, before):
    """A histogram of /metrics (buckets [low, high, count], the empty ones
    left out) over one run: after's counts less before's."""
    if not isinstance(after, dict) or "buckets" not in after:
        return None
    prev = {}
    if isinstance(before, dict):
        prev = {(b[0], b[1]): b[2] for b in before.get("buckets", [])}
    out = [[lo, hi, n - prev.get((lo, hi), 0)] for lo, hi, n in after["buckets"]]
    total = after.get("count", 0) - (before or {}).get("count", 0)
    total_sum = after.get("sum", 0) - (before or {}).get("sum", 0)
    return {"buckets": out, "count": total, "sum": total_sum}


def hist_quantile(h, q):
    """The upper edge of the bucket that holds quantile q."""
    if not h or h["count"] <= 0:
        return None
    want, seen = q * h["count"], 0
    for _, hi, n in sorted(h["buckets"], key=lambda b: b[1]):
        seen += n
        if seen >= want:
            return hi
    return None


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}
TICK = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid):
    """User and system CPU seconds of a running process, all its threads."""
    with open("/proc/%d/stat" % pid, encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def children_cpu_s():
    """User and system CPU seconds of the children waited for so far."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def cpu_figures(row, requests, server_s, client_s):
    """Adds CPU microseconds per request of the server and the client."""
    if requests > 0:
        row["server_cpu_us_per_request"] = server_s / requests * 1e6
        row["client_cpu_us_per_request"] = client_s / requests * 1e6


def parse_wrk(text):
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if not m:
        raise RuntimeError("wrk printed no rate:\n" + text)
    lat = {}
    for pct, val, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", text, re.M):
        lat[pct] = float(val) * UNITS[unit]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    sock = re.search(r"Socket errors:.*", text)
    return (float(m.group(1)), lat.get("50", 0.0), lat.get("99", 0.0),
            int(errors.group(1)) if errors else 0, sock.group(0) if sock else "")


def wrk_put(port, clients, duration):
    threads = 2 if clients >= 2 else 1
    cmd = ["wrk", "-t%d" % threads, "-c%d" % clients, "-d%ds" % duration, "--latency",
           "-s", os.path.join(HERE, "wrk", "put.lua"), "http://127.0.0.1:%d" % port]
    env = dict(os.environ, PREFIX="/blobs/w-", SIZE=str(SIZE), KEYS=str(KEYS))
    out = subprocess.run(cmd, env=env, capture_output=True, text=True,
                         timeout=duration + 60).stdout
    return parse_wrk(out), " ".join(cmd[:-3] + ["bench/wrk/put.lua", cmd[-1].rsplit(":", 1)[0]])


class VolumeServer:
    def __init__(self, build, tmp, sync_mode):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="data-", dir=tmp)
        env = dict(os.environ, PORT=str(self.port), HOST="127.0.0.1", DATA_DIR=self.dir,
                   SYNC_MODE=sync_mode, LOG_LEVEL="warn", COMPACTION_INTERVAL_SECS="0")
        self.log = open(os.path.join(tmp, "vs-%s.log" % sync_mode), "ab")
        self.proc = subprocess.Popen([os.path.join(build, "volume-server")], env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self.log)
        wait_http(self.port, "/health")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def run_ours(build, tmp, sync_mode, clients, duration):
    vs = VolumeServer(build, tmp, sync_mode)
    try:
        before = metrics(vs.port)
        server0, client0 = process_cpu_s(vs.proc.pid), children_cpu_s()
        (rate, p50, p99, errors, sock), cmd = wrk_put(vs.port, clients, duration)
        server1, client1 = process_cpu_s(vs.proc.pid), children_cpu_s()
        after = metrics(vs.port)
    finally:
        vs.stop()
    puts = after["puts"] - before["puts"]
    syncs = after["fsyncs"] - before["fsyncs"]
    row = {"engine": "volume-server", "workload": "http-put", "sync_mode": sync_mode,
           "clients": clients, "requests_per_sec": rate, "p50_ms": p50, "p99_ms": p99,
           "errors": errors, "socket_errors": sock, "puts": puts, "fsyncs": syncs,
           "writes_per_sync": puts / syncs if syncs else None,
           "command": "SYNC_MODE=%s volume-server; %s" % (sync_mode, cmd)}
    cpu_figures(row, puts, server1 - server0, client1 - client0)
    # The names /metrics gives them (the status page reads the same ones).
    for name, get in (("writes_per_sync_histogram", lambda m: m.get("writes_per_fsync")),
                      ("batch_wait_us_histogram",
                       lambda m: m.get("latency_us", {}).get("batch_wait"))):
        h = hist_delta(get(after), get(before))
        if h:
            row[name] = h
    return row


def start_redis(tmp):
    port = free_port()
    d = tempfile.mkdtemp(prefix="redis-", dir=tmp)
    proc = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--dir", d,
         "--appendonly", "yes", "--appendfsync", "always", "--save", "",
         "--daemonize", "no", "--logfile", os.path.join(d, "redis.log")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        r = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), "ping"],
                           capture_output=True, text=True)
        if r.stdout.strip() == "PONG":
            return proc, port, d
        time.sleep(0.05)  # not listening yet: retry, bounded
    proc.kill()
    proc.wait()
    raise RuntimeError("redis-server did not start")


def run_redis(tmp, clients, duration):
    proc, port, d = start_redis(tmp)
    # About duration seconds at the rates this machine reaches.
    n = int(duration * 8000 * clients ** 0.5)
    cmd = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-t", "set", "-n", str(n),
           "-c", str(clients), "-d", str(SIZE), "-r", str(KEYS), "-P", "1", "-q", "--csv"]
    try:
        server0, client0 = process_cpu_s(proc.pid), children_cpu_s()
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration * 10 + 60).stdout
        server1, client1 = process_cpu_s(proc.pid), children_cpu_s()
    finally:
        subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), "shutdown", "nosave"],
                       capture_output=True)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()  # reaped here, not inside the next measured run
        shutil.rmtree(d, ignore_errors=True)
    for line in out.splitlines():
        cells = [c.strip('"') for c in line.split(",")]
        if cells and cells[0] == "SET":
            row = {"engine": "redis", "workload": "set", "clients": clients,
                   "requests_per_sec": float(cells[1]), "p50_ms": float(cells[4]),
                   "p99_ms": float(cells[6]), "errors": 0,
                   "command": "redis-server --appendonly yes --appendfsync always --save ''; "
                              + " ".join(cmd[:3] + ["PORT"] + cmd[5:])}
            cpu_figures(row, n, server1 - server0, client1 - client0)
            return row
    raise RuntimeError("redis-benchmark printed no SET line:\n" + out)


def median_row(rows):
    """The median run of rows by rate, with the slowest round's ratio."""
    rates = [r["requests_per_sec"] for r in rows]
    med = statistics.median(rates)
    row = dict(min(rows, key=lambda r: abs(r["requests_per_sec"] - med)))
    row["median_rate"] = med
    row["rounds"] = rates
    row["worst_over_median"] = min(rates) / med if med else None
    wps = [r["writes_per_sync"] for r in rows if r.get("writes_per_sync")]
    if wps:
        row["median_writes_per_sync"] = statistics.median(wps)
    for side in ("server", "client"):
        cpu = [r["%s_cpu_us_per_request" % side] for r in rows
               if r.get("%s_cpu_us_per_request" % side)]
        if cpu:
            row["median_%s_cpu_us" % side] = statistics.median(cpu)
    return row


def fmt(v, digits=0):
    if v is None:
        return "—"
    return "{:,.{d}f}".format(v, d=digits)


def report(rows, args):
    by = {}
    for r in rows:
        key = (r["engine"], r.get("sync_mode"), r["clients"])
        by.setdefault(key, []).append(r)
    med = {k: median_row(v) for k, v in by.items()}
    lines = [
        "## Durable writes: volume-server against Redis", "",
        "Each row: %d round(s) of %d s, the median reported; volume-server's durable PUT "
        "(wrk, `bench/wrk/put.lua`) and Redis's SET (redis-benchmark, `appendonly yes`, "
        "`appendfsync always`, so each reply waits for its fsync), both with %d-byte values "
        "to keys drawn among %s, one after the other in the same run; each run on a fresh "
        "server. \"No fsync\" is the same volume-server in `SYNC_MODE=none`. Writes per "
        "fdatasync are the run's acknowledged writes over its fdatasyncs (from `/metrics`), "
        "and the wait for a batch is the time from a write's submission to the start of "
        "the write of its batch (the `batch_wait_us` histogram, p50 / p99 bucket edges). "
        "\"Slowest round\" is the slowest round's rate over the median. Before the "
        "first round each server runs once for %d s, not recorded (a warm-up). wrk and "
        "redis-benchmark share the 2 cores with the servers."
        % (args.rounds, args.duration, SIZE, "{:,}".format(KEYS), args.warmup), "",
        "| clients | durable PUT/s | Redis SET/s | ÷ Redis | no-fsync PUT/s | durable ÷ no-fsync "
        "| writes per fdatasync | ÷ clients | batch wait p50 / p99 µs | p50 / p99 ms "
        "| slowest round |",
        "|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in args.clients:
        ours = med.get(("volume-server", "always", c))
        none = med.get(("volume-server", "none", c))
        redis = med.get(("redis", None, c))
        if ours is None:
            continue
        rate = ours["median_rate"]
        wps = ours.get("median_writes_per_sync")
        wait = ours.get("batch_wait_us_histogram")
        wait_txt = "—"
        if wait:
            wait_txt = "%s / %s" % (fmt(hist_quantile(wait, 0.5)), fmt(hist_quantile(wait, 0.99)))
        lines.append("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %.2f / %.2f | %s |" % (
            c, fmt(rate), fmt(redis["median_rate"]) if redis else "—",
            "%.2f×" % (rate / redis["median_rate"]) if redis else "—",
            fmt(none["median_rate"]) if none else "—",
            "%.2f×" % (rate / none["median_rate"]) if none else "—",
            fmt(wps, 1), "%.2f" % (wps / c) if wps else "—", wait_txt,
            ours["p50_ms"], ours["p99_ms"],
            "%.2f" % ours["worst_over_median"] if ours["worst_over_median"] else "—"))
    lines += ["", "CPU time per request, µs (medians over the rounds): the server process, "
              "all its threads, and the client that drove it (wrk for volume-server, "
              "redis-benchmark for Redis).", "",
              "| clients | durable: server / wrk | no fsync: server / wrk "
              "| Redis: server / redis-benchmark |", "|---|---|---|---|"]

    def cpu_cell(row):
        if not row or "median_server_cpu_us" not in row:
            return "—"
        return "%.1f / %.1f" % (row["median_server_cpu_us"], row.get("median_client_cpu_us", 0))

    for c in args.clients:
        if ("volume-server", "always", c) not in med:
            continue
        lines.append("| %d | %s | %s | %s |" % (
            c, cpu_cell(med.get(("volume-server", "always", c))),
            cpu_cell(med.get(("volume-server", "none", c))), cpu_cell(med.get(("redis", None, c)))))
    lines += ["", "Targets (read off this run; nothing fails on a number):", "",
              "| target | measured | verdict |", "|---|---|---|"]

    def verdict(ok):
        return "—" if ok is None else ("met" if ok else "missed")

    for c in args.clients:
        ours = med.get(("volume-server", "always", c))
        if ours is None:
            continue
        wps = ours.get("median_writes_per_sync")
        lines.append("| writes per fdatasync at %d clients ≥ 0.9 × %d | %s (%s) | %s |" % (
            c, c, fmt(wps, 1), "%.2f ×" % (wps / c) if wps else "—",
            verdict(wps / c >= 0.9 if wps else None)))
    for c in args.clients:
        ours = med.get(("volume-server", "always", c))
        redis = med.get(("redis", None, c))
        none = med.get(("volume-server", "none", c))
        if ours is None:
            continue
        if c < max(args.clients) and redis:
            ratio = ours["median_rate"] / redis["median_rate"]
            lines.append("| durable PUT at %d clients ≥ 1.0 × Redis SET | %s vs %s (%.2f ×) | %s |"
                         % (c, fmt(ours["median_rate"]), fmt(redis["median_rate"]), ratio,
                            verdict(ratio >= 1.0)))
        elif c == max(args.clients) and none:
            ratio = ours["median_rate"] / none["median_rate"]
            lines.append("| durable PUT at %d clients ≥ 0.9 × PUT without fsync | %s vs %s "
                         "(%.2f ×) | %s |" % (c, fmt(ours["median_rate"]),
                                              fmt(none["median_rate"]), ratio,
                                              verdict(ratio >= 0.9)))
    worst = [(c, med[("volume-server", "always", c)]["worst_over_median"]) for c in args.clients
             if ("volume-server", "always", c) in med and args.rounds > 1]
    if worst:
        lowest = min(worst, key=lambda cw: cw[1])
        lines.append("| no durable round below 0.8 × its median | slowest %.2f × (%d clients) | %s |"
                     % (lowest[1], lowest[0], verdict(lowest[1] >= 0.8)))
    lines += ["", "Rounds, requests per second:", ""]
    for (eng, mode, c), rs in sorted(by.items(), key=lambda kv: (kv[0][2], kv[0][0],
                                                                  kv[0][1] or "")):
        name = eng if mode is None else "%s (%s)" % (eng, mode)
        lines.append("- %s, %d clients: %s" % (name, c, ", ".join(
            fmt(r["requests_per_sec"]) for r in rs)))
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--results", required=True)
    ap.add_argument("--clients", default="8,32,128")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=3,
                    help="seconds of one unrecorded run of each server before the rounds")
    ap.add_argument("--no-redis", action="store_true")
    ap.add_argument("--no-none", action="store_true", help="skip the SYNC_MODE=none runs")
    args = ap.parse_args()
    args.clients = [int(c) for c in args.clients.split(",")]
    os.makedirs(args.results, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="kv-writebench-")
    rows = []
    def runs_of(c, duration):
        runs = [("always", lambda: run_ours(args.build, tmp, "always", c, duration))]
        if not args.no_none:
            runs.append(("none", lambda: run_ours(args.build, tmp, "none", c, duration)))
        if not args.no_redis and shutil.which("redis-server"):
            runs.append(("redis", lambda: run_redis(tmp, c, duration)))
        return runs

    try:
        if args.warmup > 0:
            for name, fn in runs_of(args.clients[0], args.warmup):
                row = fn()
                print("write-bench: warm-up, %s, %d clients: %s/s (not recorded)" % (
                    name, args.clients[0], fmt(row["requests_per_sec"])), flush=True)
        for rnd in range(args.rounds):
            for c in args.clients:
                for name, fn in runs_of(c, args.duration):
                    load = os.getloadavg()[0]
                    row = fn()
                    row["round"] = rnd
                    row["load_before"] = load
                    rows.append(row)
                    print("write-bench: round %d, %s, %d clients: %s/s%s (load %.2f)" % (
                        rnd + 1, name, c, fmt(row["requests_per_sec"]),
                        ", %.1f writes per fdatasync" % row["writes_per_sync"]
                        if row.get("writes_per_sync") else "", load), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    with open(os.path.join(args.results, "write.jsonl"), "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    lines = report(rows, args)
    with open(os.path.join(args.results, "write.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
