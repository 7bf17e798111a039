#!/usr/bin/env python3
"""The replication part of `make bench`: a primary and a replica
(volume-server processes on 127.0.0.1, same machine, same disk), three
figures in one run:

  - durable PUT/s with wrk against a primary alone, then against a primary
    with MIN_REPLICA_ACKS=1 and its replica (the ratio of the two);
  - replica lag under a steady load of durable PUTs (at most RATE a second,
    wrk): a probe writes a key every 10 ms on the primary and, once it has
    its 201, reads the replica until the value is there; the time between is
    one lag sample (p50, p99, max);
  - catch-up: CATCHUP_MB of 64 KiB blobs written to a primary, then an empty
    replica started; the time until its position is the primary's gives MB/s.

    bench/repl_bench.py --build build --results DIR --data DIR [--duration 10]
    bench/repl_bench.py --build build --results DIR --data DIR --only catchup \
        --catchup-mb 1024 --catchup-runs 3

Writes DIR/repl.jsonl and DIR/repl.md (appended to docs/BENCHMARKS.md by
bench/run.sh). Every server is stopped at the end, whatever happens.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from http_bench import parse_wrk  # noqa: E402

LISTENING = re.compile(r"listening on http://[^\s:/]+:(\d+)")
WAIT = 300.0  # seconds: a bound on any wait, never a duration


class Volume:
    def __init__(self, binary, data, env):
        self.data = data
        self.log_path = data + ".log"
        full = dict(os.environ)
        full.update({"PORT": "0", "RESP_PORT": "off", "DATA_DIR": data, "HOST": "127.0.0.1",
                     "COMPACTION_INTERVAL_SECS": "0", "LOG_LEVEL": "warn"})
        full.update(env)
        full["LOG_LEVEL"] = "info"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([binary], env=full, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.monotonic() + 30
        self.port = None
        while self.port is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("volume-server did not start: " + self.read_log())
            m = LISTENING.search(self.read_log())
            if m:
                self.port = int(m.group(1))
            else:
                time.sleep(0.02)  # not started yet (bounded)

    def read_log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def conn(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def request(self, method, path, body=None, conn=None):
        c = conn or self.conn()
        c.request(method, path, body=body)
        r = c.getresponse()
        data = r.read()
        if conn is None:
            c.close()
        return r.status, data

    def position(self):
        _, body = self.request("GET", "/metrics")
        p = json.loads(body)["replication"]["position"]
        return (p["segment"], p["offset"])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def wait_caught_up(primary, replica):
    deadline = time.monotonic() + WAIT
    while replica.position() != primary.position():
        if time.monotonic() > deadline:
            raise RuntimeError("the replica did not catch up")
        time.sleep(0.05)  # polling a condition (bounded; /metrics is not free)


def wrk(port, duration, env, connections=32):
    cmd = ["wrk", "-t2", "-c%d" % connections, "-d%ds" % duration, "--latency", "-s",
           os.path.join(HERE, "wrk", "put.lua"), "http://127.0.0.1:%d" % port]
    full = dict(os.environ)
    full.update(env)
    out = subprocess.run(cmd, env=full, capture_output=True, text=True,
                         timeout=duration + 60).stdout
    rate, p50, p99, errors = parse_wrk(out)
    return {"rps": rate, "p50_s": p50, "p99_s": p99, "errors": errors}, " ".join(cmd)


def percentile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else 0.0


def semisync(binary, root, duration):
    """Durable PUT/s alone and with MIN_REPLICA_ACKS=1, in the same run."""
    out = {}
    alone = Volume(binary, os.path.join(root, "alone"), {})
    try:
        out["alone"], out["cmd"] = wrk(alone.port, duration, {"PREFIX": "/blobs/p-"})
    finally:
        alone.stop()
    primary = Volume(binary, os.path.join(root, "semi-p"), {"MIN_REPLICA_ACKS": "1"})
    replica = None
    try:
        replica = Volume(binary, os.path.join(root, "semi-r"),
                         {"REPLICA_OF": "127.0.0.1:%d" % primary.port, "VOLUME_ID": "r"})
        primary.request("PUT", "/blobs/warm", b"x")
        wait_caught_up(primary, replica)
        out["semisync"], _ = wrk(primary.port, duration, {"PREFIX": "/blobs/p-"})
        _, m = primary.request("GET", "/metrics")
        rep = json.loads(m)["replication"]
        out["acks_timed_out"] = rep["acks_timed_out"]
    finally:
        if replica:
            replica.stop()
        primary.stop()
    return out


def lag(binary, root, duration, rate):
    """Lag samples of probe writes under a steady load of durable PUTs."""
    primary = Volume(binary, os.path.join(root, "lag-p"), {})
    replica = None
    samples = []
    try:
        replica = Volume(binary, os.path.join(root, "lag-r"),
                         {"REPLICA_OF": "127.0.0.1:%d" % primary.port, "VOLUME_ID": "r"})
        primary.request("PUT", "/blobs/warm", b"x")
        wait_caught_up(primary, replica)
        conns = 128
        delay_ms = 1000.0 * conns / rate
        load = {}

        def run_load():
            load["wrk"], load["cmd"] = wrk(primary.port, duration,
                                           {"PREFIX": "/blobs/l-", "DELAY_MS": "%d" % round(delay_ms)},
                                           connections=conns)

        th = threading.Thread(target=run_load)
        th.start()
        time.sleep(1.0)  # let the load reach its rate before sampling
        pc, rc = primary.conn(), replica.conn()
        end = time.monotonic() + duration - 2
        i = 0
        while time.monotonic() < end:
            value = b"probe-%d" % i
            status, _ = primary.request("PUT", "/blobs/probe", value, conn=pc)
            assert status == 201
            t0 = time.monotonic()
            while True:
                status, got = replica.request("GET", "/blobs/probe", conn=rc)
                if got == value:
                    break
            samples.append((time.monotonic() - t0) * 1000.0)
            i += 1
            time.sleep(0.01)  # the probe's period
        th.join()
        return {"samples": len(samples), "p50_ms": percentile(samples, 0.5),
                "p99_ms": percentile(samples, 0.99), "max_ms": max(samples) if samples else 0,
                "load_rps": load["wrk"]["rps"], "cmd": load["cmd"], "rate": rate}
    finally:
        if replica:
            replica.stop()
        primary.stop()


def catchup(binary, root, megabytes, repeat=1):
    """MB/s of an empty replica catching up with megabytes of 64 KiB blobs;
    with repeat > 1, that many empty replicas one after the other against
    the same primary (the best run is the figure, every run is kept)."""
    primary = Volume(binary, os.path.join(root, "cu-p"), {"SEGMENT_SIZE_MB": "256"})
    replica = None
    try:
        body = os.urandom(64 * 1024)
        n = megabytes * 16
        per = (n + 3) // 4

        def writer(t):
            c = primary.conn()
            for i in range(t * per, min(n, (t + 1) * per)):
                status, _ = primary.request("PUT", "/blobs/c%07d" % i, body, conn=c)
                assert status == 201

        ths = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
        for th in ths:
            th.start()
        for th in ths:
            th.join()
        _, m = primary.request("GET", "/metrics")
        total = json.loads(m)["total_bytes"]
        runs = []
        for i in range(repeat):
            data = os.path.join(root, "cu-r%d" % i)
            start = time.monotonic()
            replica = Volume(binary, data,
                             {"REPLICA_OF": "127.0.0.1:%d" % primary.port, "VOLUME_ID": "r%d" % i,
                              "SEGMENT_SIZE_MB": "256"})
            print("catch-up run %d: replica pid %d, primary pid %d"
                  % (i + 1, replica.proc.pid, primary.proc.pid), file=sys.stderr, flush=True)
            wait_caught_up(primary, replica)
            secs = time.monotonic() - start
            replica.stop()
            replica = None
            shutil.rmtree(data, ignore_errors=True)
            runs.append({"seconds": secs, "mb_s": total / secs / 1e6})
            print("catch-up run %d: %.0f MB/s (%.2f s)" % (i + 1, runs[-1]["mb_s"], secs),
                  file=sys.stderr)
        best = max(runs, key=lambda r: r["mb_s"])
        return {"bytes": total, "seconds": best["seconds"], "mb_s": best["mb_s"], "runs": runs}
    finally:
        if replica:
            replica.stop()
        primary.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--results", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--rate", type=int, default=10000)
    ap.add_argument("--catchup-mb", type=int, default=1024)
    ap.add_argument("--catchup-runs", type=int, default=1,
                    help="empty replicas to time, one after the other, against one primary")
    ap.add_argument("--only", choices=("semisync", "lag", "catchup"),
                    help="run one part only (its figure is printed, no files are written)")
    args = ap.parse_args()
    binary = os.path.join(args.build, "volume-server")
    os.makedirs(args.results, exist_ok=True)
    os.makedirs(args.data, exist_ok=True)
    root = tempfile.mkdtemp(prefix="repl-bench-", dir=args.data)
    if args.only:
        parts = {"semisync": lambda: semisync(binary, root, args.duration),
                 "lag": lambda: lag(binary, root, args.duration, args.rate),
                 "catchup": lambda: catchup(binary, root, args.catchup_mb, args.catchup_runs)}
        try:
            print(json.dumps(parts[args.only]()))
        finally:
            shutil.rmtree(root, ignore_errors=True)
        return
    try:
        s = semisync(binary, root, args.duration)
        l = lag(binary, root, args.duration, args.rate)
        c = catchup(binary, root, args.catchup_mb, args.catchup_runs)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    with open(os.path.join(args.results, "repl.jsonl"), "w") as f:
        for row in (s, l, c):
            f.write(json.dumps(row) + "\n")
    ratio = s["semisync"]["rps"] / s["alone"]["rps"] if s["alone"]["rps"] else 0
    with open(os.path.join(args.results, "repl.md"), "w") as f:
        f.write("## Replication\n\n")
        f.write("A primary and a replica, volume-server processes on 127.0.0.1, the same "
                "machine and disk; `bench/repl_bench.py` (commands below).\n\n")
        f.write("| figure | value |\n|---|---|\n")
        f.write("| durable PUT/s, primary alone (wrk, 32 connections, 100 B) | %.0f |\n"
                % s["alone"]["rps"])
        f.write("| durable PUT/s, `MIN_REPLICA_ACKS=1` with its replica | %.0f (%.2f×; "
                "%d timed out) |\n" % (s["semisync"]["rps"], ratio, s["acks_timed_out"]))
        f.write("| replica lag under %.0f durable PUT/s (probe every 10 ms: 201 on the "
                "primary to visible on the replica), p50 / p99 / max | %.1f / %.1f / %.1f ms "
                "(%d samples) |\n" % (l["load_rps"], l["p50_ms"], l["p99_ms"], l["max_ms"],
                                      l["samples"]))
        f.write("| catch-up of an empty replica %.0f MiB behind (64 KiB blobs) | %.0f MB/s "
                "(%.1f s) |\n" % (c["bytes"] / 1048576, c["mb_s"], c["seconds"]))
        f.write("\nCommands: `%s` (the load: `%s`).\n" % (s["cmd"], l["cmd"]))
    print(open(os.path.join(args.results, "repl.md")).read())


if __name__ == "__main__":
    main()
