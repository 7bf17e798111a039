#!/usr/bin/env python3
"""The HTTP part of `make bench`: wrk against volume-server and, in the same
run, against nginx serving files of the same sizes from a private config, the
near-limit for an HTTP server on this machine.

    bench/http_bench.py --build build --results DIR [--duration 10]

Writes DIR/http.jsonl (one line per run) and DIR/http.md (the table that
bench/run.sh appends to docs/BENCHMARKS.md). Both servers listen on
127.0.0.1 on free ports and are stopped at the end, whatever happens.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--results", required=True)
    ap.add_argument("--duration", type=int, default=10)
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
    with open(os.path.join(args.results, "http.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
