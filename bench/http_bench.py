#!/usr/bin/env python3
"""The HTTP part of `make bench`: wrk against volume-server and, in the same
run, against nginx serving files of the same sizes from a private config, the
near-limit for an HTTP server on this machine; then listings (GET /blobs)
from a volume of --list-keys keys: pages of 100 from random keys, and every
key by pages of 1,000.

    bench/http_bench.py --build build --results DIR [--duration 10] [--list-keys N]

Writes DIR/http.jsonl (one line per run) and DIR/http.md (the tables that
bench/run.sh appends to docs/BENCHMARKS.md). The servers listen on
127.0.0.1 on free ports and are stopped at the end, whatever happens.
"""

import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
KEYS = 10000
SIZES = (100, 4096)


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


def preload(port, size, prefix):
    """KEYS blobs of size bytes, from 8 connections at once."""
    body = b"x" * size

    def worker(first):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for i in range(first, KEYS, 8):
            c.request("PUT", "/blobs/%s%d" % (prefix, i), body=body)
            r = c.getresponse()
            r.read()
            if r.status != 201:
                raise RuntimeError("preload: %d" % r.status)
        c.close()

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def parse_wrk(text):
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    lat = {}
    for pct, val, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", text, re.M):
        lat[pct] = float(val) * UNITS[unit]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    return rate, lat.get("50", 0.0), lat.get("99", 0.0), int(errors.group(1)) if errors else 0


def run_wrk(port, script, env, duration):
    cmd = ["wrk", "-t2", "-c32", "-d%ds" % duration, "--latency", "-s",
           os.path.join(HERE, "wrk", script), "http://127.0.0.1:%d" % port]
    full = dict(os.environ)
    full.update(env)
    out = subprocess.run(cmd, env=full, capture_output=True, text=True,
                         timeout=duration + 60).stdout
    return parse_wrk(out), " ".join(cmd)


NGINX_CONF = """
worker_processes 2;
worker_rlimit_nofile 16384;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    sendfile off;  # faster than sendfile for files this small, here
    keepalive_requests 1000000;
    open_file_cache max=12000 inactive=60s;
    open_file_cache_valid 60s;
    server {{
        listen 127.0.0.1:{port};
        root {tmp}/www;
    }}
}}
"""


LIST_PAGES = 2000  # pages of 100 from random keys


def start_volume(build, data, tmp, name):
    port = free_port()
    env = dict(os.environ, PORT=str(port), HOST="127.0.0.1", DATA_DIR=data, SYNC_MODE="always",
               LOG_LEVEL="warn", COMPACTION_INTERVAL_SECS="0")
    proc = subprocess.Popen([os.path.join(build, "volume-server")], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(tmp, name + ".log"), "wb"))
    return proc, port


def get(conn, path):
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    if r.status != 200:
        raise RuntimeError("GET %s: %d %r" % (path, r.status, body[:200]))
    return body, r.getheader("X-Next-After")


def bench_listing(build, tmp, keys):
    """A volume of keys keys (bench/fill.c: 16-byte decimal keys, 100-byte
    values), listed by one client on one connection: pages of 100 from
    random keys (each request timed), then every key by pages of 1,000
    (the whole walk timed, the client parsing each page)."""
    data = os.path.join(tmp, "list-data")
    subprocess.run([os.path.join(build, "bench", "kvbench-fill"), "--dir", data,
                    "--num", str(keys)], check=True, timeout=600)
    proc, port = start_volume(build, data, tmp, "list")
    try:
        wait_http(port, "/health")
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        rng = random.Random(7)
        times = []
        for _ in range(LIST_PAGES):
            start = "%016d" % rng.randrange(keys)
            t0 = time.perf_counter()
            body, _ = get(c, "/blobs?start=%s&limit=100" % start)
            times.append((time.perf_counter() - t0) * 1e3)
            if len(json.loads(body)) != min(100, keys - int(start)):
                raise RuntimeError("a page from %s holds the wrong keys" % start)
        times.sort()
        page = {"engine": "volume-server", "workload": "http-list-page", "threads": 1,
                "keys": keys, "pages": LIST_PAGES, "p50_ms": statistics.median(times),
                "p99_ms": times[int(0.99 * len(times)) - 1],
                "command": "GET /blobs?start=<random key>&limit=100, %d times, one connection"
                % LIST_PAGES}
        t0 = time.perf_counter()
        seen, pages, after = 0, 0, None
        while True:
            path = "/blobs?limit=1000" + ("&after=" + after if after else "")
            body, after = get(c, path)
            seen += len(json.loads(body))
            pages += 1
            if after is None:
                break
        secs = time.perf_counter() - t0
        if seen != keys:
            raise RuntimeError("paging read %d keys of %d" % (seen, keys))
        walk = {"engine": "volume-server", "workload": "http-list-all", "threads": 1,
                "keys": keys, "pages": pages, "secs": secs,
                "command": "GET /blobs?limit=1000&after=<X-Next-After> until the end, "
                "one connection"}
        c.close()
        return [page, walk]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--results", required=True)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--list-keys", type=int, default=1000000)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="kv-httpbench-")
    os.chmod(tmp, 0o755)  # nginx's workers run as another user when started by root
    procs = []
    rows = []
    try:
        vport = free_port()
        env = dict(os.environ, PORT=str(vport), RESP_PORT="off", HOST="127.0.0.1",
                   DATA_DIR=os.path.join(tmp, "data"), SYNC_MODE="always",
                   LOG_LEVEL="warn", COMPACTION_INTERVAL_SECS="0")
        vs = subprocess.Popen([os.path.join(args.build, "volume-server")], env=env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=open(os.path.join(tmp, "vs.log"), "wb"))
        procs.append(vs)
        wait_http(vport, "/health")
        for size in SIZES:
            preload(vport, size, "k%d-" % size)

        nport = free_port()
        www = os.path.join(tmp, "www")
        os.makedirs(www)
        for size in SIZES:
            d = os.path.join(www, "k%d" % size)
            os.makedirs(d)
            for i in range(KEYS):
                with open(os.path.join(d, str(i)), "wb") as f:
                    f.write(b"x" * size)
        conf = os.path.join(tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(tmp=tmp, port=nport))
        ng = subprocess.Popen(["nginx", "-c", conf, "-p", tmp], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(ng)
        wait_http(nport, "/k100/0")
        c = http.client.HTTPConnection("127.0.0.1", nport, timeout=5)
        c.request("GET", "/k100/0")
        if c.getresponse().status != 200:
            raise RuntimeError("nginx does not serve the files: see %s/error.log" % tmp)

        for size in SIZES:
            (rate, p50, p99, err), cmd = run_wrk(
                vport, "get.lua", {"PREFIX": "/blobs/k%d-" % size}, args.duration)
            rows.append(("volume-server", "GET", size, rate, p50, p99, err, cmd))
            (rate, p50, p99, err), cmd = run_wrk(
                nport, "get.lua", {"PREFIX": "/k%d/" % size}, args.duration)
            rows.append(("nginx", "GET", size, rate, p50, p99, err, cmd))
        for size in SIZES:
            (rate, p50, p99, err), cmd = run_wrk(
                vport, "put.lua", {"PREFIX": "/blobs/w%d-" % size, "SIZE": str(size)},
                args.duration)
            rows.append(("volume-server", "PUT (durable)", size, rate, p50, p99, err, cmd))
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=60)
        procs = []
        listing = bench_listing(args.build, tmp, args.list_keys)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)

    with open(os.path.join(args.results, "http.jsonl"), "w") as f:
        for eng, method, size, rate, p50, p99, err, cmd in rows:
            f.write(json.dumps({"engine": eng, "workload": "http-%s" % method.split()[0].lower(),
                                "size": size, "requests_per_sec": rate, "p50_ms": p50,
                                "p99_ms": p99, "errors": err, "command": cmd}) + "\n")
        for row in listing:
            f.write(json.dumps(row) + "\n")
    nginx = {(m, s): r for e, m, s, r, *_ in rows if e == "nginx"}
    lines = ["## HTTP", "",
             "wrk, 2 threads, 32 connections, %d s per row, keys drawn at random among "
             "10,000 existing blobs; volume-server in sync mode `always` (a `201` is "
             "durable); nginx serving files of the same sizes from a private "
             "configuration, in the same run. wrk shares the 2 cores with the server."
             % args.duration, "",
             "| server | request | body | requests/s | p50 ms | p99 ms | errors | ÷ nginx |",
             "|---|---|---|---|---|---|---|---|"]
    for eng, method, size, rate, p50, p99, err, _ in rows:
        ratio = ""
        if eng == "volume-server" and (method, size) in nginx:
            ratio = "%.2f×" % (rate / nginx[(method, size)])
        lines.append("| %s | %s | %d B | %s | %.2f | %.2f | %d | %s |" % (
            eng, method, size, "{:,.0f}".format(rate), p50, p99, err, ratio))
    page, walk = listing
    lines += ["", "Listings (`GET /blobs`) from a volume of {:,} keys (16-byte decimal keys, "
              "100-byte values, written by `build/bench/kvbench-fill`), one client on one "
              "keep-alive connection, in the same run; the client (Python) parses every page."
              .format(page["keys"]), "",
              "| listing | measured |", "|---|---|",
              "| a page of 100 keys from a random key (`?start=&limit=100`), %d pages "
              "| p50 %.2f ms, p99 %.2f ms |" % (page["pages"], page["p50_ms"], page["p99_ms"]),
              "| every key by pages of 1,000 (`?limit=1000&after=`), %d pages | %.2f s |"
              % (walk["pages"], walk["secs"])]
    with open(os.path.join(args.results, "http.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
