#!/usr/bin/env python3
"""The cluster part of `make bench`: the gateway's cost, in one run.

- HTTP: wrk GET and durable PUT (SYNC_MODE=always) of 100-byte values,
  against one volume-server direct (plain HTTP) and through the cluster's
  gateway (HTTPS, three shards; with --replicas 1 each write also waits for
  its shard's replica, MIN_REPLICA_ACKS=1), at 32 connections (throughput)
  and at 1 connection (the time one request takes: the difference is what the
  gateway adds to each request).
- RESP: redis-benchmark SET and GET against one volume direct, against
  twemproxy's own port, and through the gateway's TLS port.

    bench/cluster_bench.py --build build --results DIR [--duration 10] [--replicas 1]

Writes DIR/cluster.jsonl (one line per run) and DIR/cluster.md (the table that
bench/run.sh appends to docs/BENCHMARKS.md). Everything listens on 127.0.0.1,
on free ports, in temporary directories, and is stopped at the end, whatever
happens. On a machine of two cores the servers, nginx, twemproxy and the load
generator share them: this measures overhead, not scale.
"""

import argparse
import concurrent.futures
import http.client
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from http_bench import free_port, parse_wrk, wait_http  # noqa: E402

KEYS = 10000


def preload(url, cafile, body, prefix):
    """KEYS blobs, from 8 connections at once (HTTPS verified against cafile)."""
    u = urllib.parse.urlsplit(url)

    def worker(first):
        if u.scheme == "https":
            c = http.client.HTTPSConnection(u.hostname, u.port, timeout=30,
                                            context=ssl.create_default_context(cafile=cafile))
        else:
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        for i in range(first, KEYS, 8):
            c.request("PUT", "%s%d" % (prefix, i), body=body)
            r = c.getresponse()
            r.read()
            if r.status != 201:
                raise RuntimeError("preload of %s: %d" % (url, r.status))
        c.close()

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(worker, range(8)))


def wrk(url, script, conns, duration, env):
    cmd = ["wrk", "-t%d" % min(2, conns), "-c%d" % conns, "-d%ds" % duration, "--latency",
           "-s", os.path.join(HERE, "wrk", script), url]
    full = dict(os.environ, **env)
    out = subprocess.run(cmd, env=full, capture_output=True, text=True,
                         timeout=duration + 60).stdout
    return parse_wrk(out), " ".join(cmd)


def redis_bench(args, n):
    cmd = ["redis-benchmark", "-q", "-n", str(n), "-c", "32", "-r", str(KEYS), "-d", "100",
           "-t", "set,get"] + args
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600).stdout
    rates = {}
    for op, rate in re.findall(r"^(SET|GET): ([\d.]+) requests per second", out, re.M):
        rates[op] = float(rate)
    return rates, " ".join(cmd)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--results", required=True)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--replicas", type=int, default=1)
    ap.add_argument("--redis-num", type=int, default=50000)
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    os.makedirs(a.results, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="kv-cluster-bench-")
    cluster_dir = os.path.join(tmp, "cluster")
    env = dict(os.environ, CLUSTER_DIR=cluster_dir, BUILD=build, REPLICAS=str(a.replicas),
               SYNC_MODE="always", LOG_LEVEL="warn", GATEWAY_PORT="0", GATEWAY_RESP_PORT="0",
               VOLUME_PORTS="0", VOLUME_RESP_PORTS="0", TWEMPROXY_PORT="0",
               TWEMPROXY_STATS_PORT="0")
    cluster_sh = os.path.join(ROOT, "scripts", "cluster.sh")
    direct = None
    rows = []
    try:
        # one volume, direct
        port, rport = free_port(), free_port()
        direct = subprocess.Popen(
            [os.path.join(build, "volume-server")],
            env=dict(os.environ, HOST="127.0.0.1", PORT=str(port), RESP_PORT=str(rport),
                     DATA_DIR=os.path.join(tmp, "direct"), SYNC_MODE="always",
                     LOG_LEVEL="warn"),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_http(port, "/health")
        subprocess.run([cluster_sh, "start"], env=env, check=True, capture_output=True,
                       timeout=180)
        settings = dict(line.rstrip("\n").split("=", 1)
                        for line in open(os.path.join(cluster_dir, "cluster.env")))
        gw_port = int(settings["GATEWAY_PORT"])
        ca = settings["GATEWAY_TLS_CERT"]
        targets = (("one volume, direct (HTTP)", "http://127.0.0.1:%d" % port, None),
                   ("gateway, 3 shards (HTTPS)", "https://127.0.0.1:%d" % gw_port, ca))
        for _, url, cafile in targets:
            preload(url, cafile, b"x" * 100, "/blobs/k100-")
        for workload, script in (("GET", "get.lua"), ("durable PUT", "put.lua")):
            for conns in (32, 1):
                for target, url, _ in targets:
                    (rate, p50, p99, err), cmd = wrk(url, script, conns, a.duration,
                                                    {"KEYS": str(KEYS), "SIZE": "100"})
                    row = {"part": "http", "workload": workload, "target": target,
                           "connections": conns, "ops_per_sec": rate, "p50_ms": p50,
                           "p99_ms": p99, "errors": err, "command": cmd}
                    rows.append(row)
                    print(json.dumps(row), flush=True)
        # RESP
        resp_targets = (("one volume, direct", ["-p", str(rport)]),
                        ("twemproxy (plain, its own port)",
                         ["-p", settings["TWEMPROXY_PORT"]]),
                        ("gateway (TLS) and twemproxy",
                         ["-p", settings["GATEWAY_RESP_PORT"], "--tls", "--cacert", ca]))
        for target, args in resp_targets:
            rates, cmd = redis_bench(["-h", "127.0.0.1"] + args, a.redis_num)
            for op, rate in sorted(rates.items()):
                row = {"part": "resp", "workload": op, "target": target, "connections": 32,
                       "ops_per_sec": rate, "command": cmd}
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        subprocess.run([cluster_sh, "stop"], env=env, capture_output=True, timeout=120)
        if direct is not None:
            direct.terminate()
            direct.wait(timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)

    with open(os.path.join(a.results, "cluster.jsonl"), "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    write_md(a, rows)


def write_md(a, rows):
    def find(part, workload, target_prefix, conns):
        for r in rows:
            if (r["part"], r["workload"], r["connections"]) == (part, workload, conns) and \
                    r["target"].startswith(target_prefix):
                return r
        return None

    lines = ["## The cluster: the gateway's cost", "",
             "`bench/cluster_bench.py`: one volume-server direct against the cluster of "
             "`scripts/cluster.sh` (three shards%s, the nginx gateway over HTTPS, twemproxy "
             "behind its TLS RESP port), all with `SYNC_MODE=always`, in the same run. wrk, "
             "100-byte values among %d keys, %d s a row. On two cores the volumes, nginx, "
             "twemproxy and the load generator share the machine: these figures are the "
             "gateway's overhead, not the cluster's scale (three shards on one machine do "
             "not add cores or disks)."
             % (", each a primary and a replica, `MIN_REPLICA_ACKS=1`: a PUT's 201 waits for "
                "the replica's fdatasync too" if a.replicas else "", KEYS, a.duration), "",
             "| workload | connections | one volume direct (req/s) | gateway (req/s) | ratio | "
             "p50 direct / gateway (ms) |",
             "|---|---:|---:|---:|---:|---|"]
    cost = []
    for workload in ("GET", "durable PUT"):
        for conns in (32, 1):
            d = find("http", workload, "one volume", conns)
            g = find("http", workload, "gateway", conns)
            if not d or not g:
                continue
            ratio = g["ops_per_sec"] / d["ops_per_sec"] if d["ops_per_sec"] else 0
            lines.append("| %s | %d | %.0f | %.0f | %.2f | %.2f / %.2f |"
                         % (workload, conns, d["ops_per_sec"], g["ops_per_sec"], ratio,
                            d["p50_ms"], g["p50_ms"]))
            if conns == 1 and d["ops_per_sec"] and g["ops_per_sec"]:
                cost.append("%s %.0f µs" % (workload, 1e6 / g["ops_per_sec"] - 1e6 / d["ops_per_sec"]))
    lines += ["", "What the gateway adds to one request (1 connection: the time of a request "
              "through the gateway less the time of one direct): %s. That is TLS, a second "
              "HTTP hop, and the njs lookup of the key's shard%s." %
              (", ".join(cost), "; for a PUT also the replica's acknowledgement" if a.replicas
               else ""), "",
              "| redis-benchmark, 32 connections | SET (req/s) | GET (req/s) |", "|---|---:|---:|"]
    for target in ("one volume, direct", "twemproxy (plain, its own port)",
                   "gateway (TLS) and twemproxy"):
        s = find("resp", "SET", target, 32)
        g = find("resp", "GET", target, 32)
        lines.append("| %s | %.0f | %.0f |" % (target, s["ops_per_sec"] if s else 0,
                                                 g["ops_per_sec"] if g else 0))
    lines += ["", "Commands: %s; redis-benchmark `-n %d -c 32 -r %d -d 100 -t set,get`." %
              ("; ".join(sorted({"`%s`" % r["command"] for r in rows if r["part"] == "http"})[:2]),
               a.redis_num, KEYS), ""]
    with open(os.path.join(a.results, "cluster.md"), "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    main()
