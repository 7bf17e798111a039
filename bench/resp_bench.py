#!/usr/bin/env python3
"""The Redis-protocol part of `make bench`: redis-benchmark against
volume-server's RESP port and, in the same run and with the same flags,
against Redis 7 with `appendonly yes` and `appendfsync always` (a reply only
once the write is on stable storage, as volume-server's in SYNC_MODE=always).

    bench/resp_bench.py --build build --results DIR [--data DIR] [--keys N]
    bench/resp_bench.py --binary PATH --only set --sync none --repeat 5 --results DIR

--only runs some workloads (set, get) and no memory or restart rows;
--repeat runs each workload that many times on each server, alternating
between them, and the table gives the median and the range; --sync none
compares SYNC_MODE=none with Redis's `appendfsync no` (neither waits for
the disk); --binary names the volume-server to measure (default: BUILD's).

Rows: SET (durable) and GET, 50 clients, pipelines of 1 and 16; anonymous
resident memory (RssAnon) with the same N keys of 100-byte values; and the
time from start until PING answers with those keys (Redis loads its AOF;
volume-server its index snapshot). Writes DIR/resp.jsonl and DIR/resp.md
(the table bench/run.sh appends to docs/BENCHMARKS.md). Both servers listen
on 127.0.0.1 on free ports and are stopped at the end, whatever happens.
"""

import argparse
import csv
import io
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time

CLIENTS = 50
VALUE = 100
# redis-benchmark's key for -r: "key:" and 12 digits.
KEY_FORMAT = "key:%012d"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ping(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def wait_ping(port, proc, deadline_s=300.0):
    """Seconds from now until PING answers (the caller started proc just
    before); polls every millisecond, bounded."""
    start = time.monotonic()
    while not ping(port):
        if proc.poll() is not None:
            raise RuntimeError("the server exited with %d" % proc.returncode)
        if time.monotonic() - start > deadline_s:
            raise RuntimeError("nothing answered PING on port %d" % port)
        time.sleep(0.001)
    return time.monotonic() - start


def rss_anon_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


class Redis:
    name = "redis"

    def __init__(self, data, sync="always"):
        self.sync = sync
        self.dir = tempfile.mkdtemp(prefix="redis.", dir=data)
        self.port = free_port()
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", self.dir,
             "--appendonly", "yes", "--appendfsync", "always" if self.sync == "always" else "no",
             "--save", "",
             "--logfile", os.path.join(self.dir, "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return wait_ping(self.port, self.proc)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # Redis fsyncs its AOF and exits
            self.proc.wait(timeout=300)

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class Volume:
    name = "volume-server"

    def __init__(self, data, build, sync="always", binary=None):
        self.sync = sync
        self.dir = tempfile.mkdtemp(prefix="volume.", dir=data)
        self.binary = binary or os.path.join(build, "volume-server")
        self.port = free_port()
        self.proc = None

    def start(self):
        env = dict(os.environ, DATA_DIR=os.path.join(self.dir, "data"), PORT="0",
                   RESP_PORT=str(self.port), HOST="127.0.0.1", SYNC_MODE=self.sync,
                   LOG_LEVEL="warn", COMPACTION_INTERVAL_SECS="0")
        self.log = open(os.path.join(self.dir, "server.log"), "ab")
        self.proc = subprocess.Popen([self.binary], env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        return wait_ping(self.port, self.proc)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # saves the index snapshot
            self.proc.wait(timeout=300)
        self.log.close()

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def benchmark(port, test, n, pipeline, keys):
    cmd = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-t", test, "-n", str(n),
           "-c", str(CLIENTS), "-d", str(VALUE), "-r", str(keys), "-P", str(pipeline), "-q",
           "--csv"]
    out = subprocess.run(cmd, capture_output=True, timeout=900, check=True).stdout.decode()
    for row in csv.reader(io.StringIO(out)):
        if row and row[0] == test.upper():
            return {"ops_per_sec": float(row[1]), "p50_ms": float(row[4]),
                    "p99_ms": float(row[6])}, " ".join(cmd[:3] + ["PORT"] + cmd[5:])
    raise RuntimeError("no %s row in: %s" % (test, out))


FILL_CONNECTIONS = 32


def fill(port, keys):
    """keys distinct keys (redis-benchmark's names) of VALUE bytes, through
    FILL_CONNECTIONS redis-cli --pipe at once (durable writes share their
    fdatasyncs across connections)."""
    value = b"v" * VALUE
    procs = []
    for c in range(FILL_CONNECTIONS):
        proc = subprocess.Popen(["redis-cli", "-h", "127.0.0.1", "-p", str(port), "--pipe"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        procs.append((proc, len(range(c, keys, FILL_CONNECTIONS))))
    chunks = [[] for _ in procs]
    for i in range(keys):
        k = (KEY_FORMAT % i).encode()
        chunks[i % FILL_CONNECTIONS].append(
            b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, VALUE, value))
    writers = []
    for (proc, _), chunk in zip(procs, chunks):
        data = b"".join(chunk)
        w = threading.Thread(target=feed, args=(proc, data))
        w.start()
        writers.append(w)
    for w in writers:
        w.join()
    for proc, want in procs:
        out = proc.stdout.read().decode()
        proc.wait(timeout=900)
        m = re.search(r"errors: (\d+), replies: (\d+)", out)
        if proc.returncode != 0 or not m or int(m.group(1)) != 0 or int(m.group(2)) != want:
            raise RuntimeError("filling failed: %s" % out)


def feed(proc, data):
    proc.stdin.write(data)
    proc.stdin.close()


def dbsize(port):
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"DBSIZE\r\n")
        return int(s.recv(64).strip()[1:])


WORKLOADS = [  # (test, pipeline, requests)
    ("set", 1, 20000),
    ("set", 16, 200000),
    ("get", 1, 200000),
    ("get", 16, 2000000),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--results", required=True)
    ap.add_argument("--data", default=None, help="where the data directories go")
    ap.add_argument("--keys", type=int, default=1000000)
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies the request counts")
    ap.add_argument("--smoke", action="store_true",
                    help="a tiny run that checks every row is there (exit 77 without Redis)")
    ap.add_argument("--only", choices=["set", "get"], default=None,
                    help="only this command's rows (no memory or restart rows)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each workload per server")
    ap.add_argument("--sync", choices=["always", "none"], default="always")
    ap.add_argument("--binary", default=None, help="the volume-server to measure")
    args = ap.parse_args()
    if args.smoke:
        if not shutil.which("redis-server") or not shutil.which("redis-benchmark"):
            print("redis-server or redis-benchmark missing: skipped")
            raise SystemExit(77)
        args.keys, args.scale = 2000, 0.005
    data = os.path.abspath(args.data or os.path.join(args.build, "bench-data"))
    os.makedirs(data, exist_ok=True)
    os.makedirs(args.results, exist_ok=True)
    workloads = [w for w in WORKLOADS if args.only in (None, w[0])]
    servers = [Volume(data, args.build, args.sync, args.binary), Redis(data, args.sync)]
    rows = []
    try:
        for s in servers:
            s.start()
        # Throughput first, on the store the SET rows fill; then the GET rows
        # read keys that exist (the fill makes every one of them exist).
        for test, pipeline, n in workloads:
            n = max(1000, int(n * args.scale))
            if test == "get":
                for s in servers:
                    if dbsize(s.port) < args.keys:
                        fill(s.port, args.keys)
            for run in range(args.repeat):
                for s in servers:  # the same flags, one after the other
                    r, cmd = benchmark(s.port, test, n, pipeline, args.keys)
                    rows.append(dict(r, engine=s.name, workload="resp-%s" % test,
                                     pipeline=pipeline, requests=n, command=cmd, run=run,
                                     sync=args.sync))
        if args.only is not None:
            return finish(rows, args, workloads)
        # Memory with the same keys: a fresh start of each, then the fill.
        for s in servers:
            s.stop()
            s.cleanup()
        servers = [Volume(data, args.build), Redis(data)]
        for s in servers:
            s.start()
            fill(s.port, args.keys)
            rows.append({"engine": s.name, "workload": "resp-memory", "keys": dbsize(s.port),
                         "rss_anon_bytes": rss_anon_bytes(s.proc.pid)})
        # Restart: stop (each makes its data durable its own way), start
        # again, time until PING answers.
        for s in servers:
            s.stop()
            secs = s.start()
            rows.append({"engine": s.name, "workload": "resp-restart", "keys": dbsize(s.port),
                         "secs_to_ping": secs})
    finally:
        for s in servers:
            s.cleanup()

    finish(rows, args, workloads)


def finish(rows, args, workloads):
    with open(os.path.join(args.results, "resp.jsonl"), "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    if args.repeat > 1 or args.only is not None:
        write_runs_table(rows, args, workloads)
    else:
        write_table(rows, args)
    if args.smoke:
        want = {("resp-%s" % t, p) for t, p, _ in WORKLOADS}
        for engine in ("volume-server", "redis"):
            got = {(r["workload"], r.get("pipeline")) for r in rows if r["engine"] == engine}
            missing = want - got
            for w in ("resp-memory", "resp-restart"):
                if (w, None) not in got:
                    missing.add((w, None))
            if missing:
                raise SystemExit("missing rows for %s: %s" % (engine, sorted(missing)))


def write_runs_table(rows, args, workloads):
    """The median of the runs of each workload, with their range."""
    def runs(engine, test, pipeline):
        return sorted(r["ops_per_sec"] for r in rows if r["engine"] == engine and
                      r["workload"] == "resp-" + test and r["pipeline"] == pipeline)

    def median(v):
        return statistics.median(v) if v else 0.0

    lines = ["| workload | pipeline | runs | volume-server ops/s: median (min–max) "
             "| Redis ops/s: median (min–max) | ÷ Redis |", "|---|---|---|---|---|---|"]
    for test, pipeline, _ in workloads:
        v, r = runs("volume-server", test, pipeline), runs("redis", test, pipeline)
        if not v or not r:
            continue
        lines.append("| %s (SYNC_MODE=%s / appendfsync %s) | %d | %d | %s (%s–%s) | %s (%s–%s) "
                     "| %.2f× |" % (
                         test.upper(), args.sync, "always" if args.sync == "always" else "no",
                         pipeline, len(v), "{:,.0f}".format(median(v)), "{:,.0f}".format(v[0]),
                         "{:,.0f}".format(v[-1]), "{:,.0f}".format(median(r)),
                         "{:,.0f}".format(r[0]), "{:,.0f}".format(r[-1]),
                         median(v) / median(r)))
    with open(os.path.join(args.results, "resp.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


def write_table(rows, args):
    def find(engine, workload, pipeline=None):
        for r in rows:
            if r["engine"] == engine and r["workload"] == workload and (
                    pipeline is None or r.get("pipeline") == pipeline):
                return r
        return None

    lines = ["## Redis protocol", "",
             "redis-benchmark, %d clients, %d-byte values, random keys among %s "
             "(`-r`), against volume-server's RESP port (SYNC_MODE=always) and, in the same "
             "run and with the same flags, Redis %s with `appendonly yes`, `appendfsync "
             "always`, `save ''` (both reply to a write only once it is on stable storage). "
             "The GET rows read keys that exist. redis-benchmark shares the cores with the "
             "server." % (CLIENTS, VALUE, "{:,}".format(args.keys), redis_version()), "",
             "| workload | pipeline | volume-server ops/s | p50 ms | p99 ms | Redis ops/s "
             "| p50 ms | p99 ms | ÷ Redis |", "|---|---|---|---|---|---|---|---|---|"]
    for test, pipeline, _ in WORKLOADS:
        v = find("volume-server", "resp-" + test, pipeline)
        r = find("redis", "resp-" + test, pipeline)
        if v and r:
            lines.append("| %s%s | %d | %s | %.2f | %.2f | %s | %.2f | %.2f | %.2f× |" % (
                test.upper(), " (durable)" if test == "set" else "", pipeline,
                "{:,.0f}".format(v["ops_per_sec"]), v["p50_ms"], v["p99_ms"],
                "{:,.0f}".format(r["ops_per_sec"]), r["p50_ms"], r["p99_ms"],
                v["ops_per_sec"] / r["ops_per_sec"]))
    v, r = find("volume-server", "resp-memory"), find("redis", "resp-memory")
    if v and r:
        lines.append("")
        lines.append("| with %s keys of %d bytes | volume-server | Redis | ÷ Redis |"
                     % ("{:,}".format(v["keys"]), VALUE))
        lines.append("|---|---|---|---|")
        lines.append("| anonymous resident memory (RssAnon) | %.1f MiB | %.1f MiB | %.2f× |" % (
            v["rss_anon_bytes"] / 1048576, r["rss_anon_bytes"] / 1048576,
            v["rss_anon_bytes"] / r["rss_anon_bytes"]))
        v, r = find("volume-server", "resp-restart"), find("redis", "resp-restart")
        if v and r:
            lines.append("| restart until PING answers | %.3f s | %.3f s (AOF load) | %.2f× |" % (
                v["secs_to_ping"], r["secs_to_ping"], v["secs_to_ping"] / r["secs_to_ping"]))
    with open(os.path.join(args.results, "resp.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


def redis_version():
    out = subprocess.run(["redis-server", "--version"], capture_output=True).stdout.decode()
    m = re.search(r"v=(\S+)", out)
    return m.group(1) if m else "?"


if __name__ == "__main__":
    main()
