"""End-to-end tests of volume-server under hostile connection patterns that
test_server_robustness.py does not cover: a burst of 10,000 connects (in
bounded batches; some send half a request, some a whole one, and hang up
without reading), and slowloris (200 connections each sending one header
byte every 0.5 s). Throughout, a well-behaved client keeps doing /health and
blob round trips on its own connection: every request must succeed, and its
latency percentiles are printed (not asserted: the machine may be loaded).
Afterwards the server's open descriptors (/proc/PID/fd) return to their
baseline and its RSS to near it.

Known limitation, measured here: a client that sends part of a request and
closes at once can leave its connection in CLOSE-WAIT until the server's
CONNECTION_TIMEOUT_SECS (libmicrohttpd 0.9.75 with epoll reads the bytes but
misses the FIN that came with them). So this class runs with a short timeout
and waits (bounded) for it; the number of such lingering connections is
printed."""

import contextlib
import os
import resource
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_harness import ServerTestCase, sanitized_build  # noqa: E402

BURST_CONNECTS = 10000
BURST_BATCH = 500
SLOW_CONNECTIONS = 200
SLOW_ROUNDS = 8  # one byte per connection per round
SLOW_PERIOD = 0.5  # seconds between rounds (load pacing, not synchronisation)
CONNECTION_TIMEOUT = 10  # the server's idle timeout (CONNECTION_TIMEOUT_SECS)
SETTLE_TIMEOUT = CONNECTION_TIMEOUT + 30.0  # seconds for descriptors to return to baseline


class Prober(threading.Thread):
    """A well-behaved client: /health and a blob round trip in a loop; records
    the latency of each round and every failure."""

    def __init__(self, server):
        super().__init__(daemon=True)
        self.server = server
        self.stopping = threading.Event()
        self.latencies = []
        self.failures = []

    def run(self):
        i = 0
        c = self.server.connection(timeout=30)
        while not self.stopping.is_set():
            i += 1
            t0 = time.monotonic()
            try:
                r = self.server.request("GET", "/health", conn=c)
                if r.status != 200:
                    self.failures.append(("health", r.status))
                r = self.server.request("PUT", "/blobs/hostile/%d" % i, b"h%d" % i, conn=c)
                if r.status != 201:
                    self.failures.append(("put", r.status))
                r = self.server.request("GET", "/blobs/hostile/%d" % i, conn=c)
                if r.body != b"h%d" % i:
                    self.failures.append(("get", r.status, r.body[:50]))
                self.latencies.append(time.monotonic() - t0)
            except Exception as e:  # any failure of the prober is a finding
                self.failures.append(("exception", repr(e)))
                c.close()
                c = self.server.connection(timeout=30)
        c.close()

    def percentile(self, p):
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")


class Hostile(ServerTestCase):
    ENV = {"CONNECTION_TIMEOUT_SECS": str(CONNECTION_TIMEOUT), "MAX_CONNECTIONS": "4096"}

    @classmethod
    def setUpClass(cls):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        need = BURST_BATCH + SLOW_CONNECTIONS + 256
        if soft < need:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
        super().setUpClass()

    def open_fds(self):
        return len(os.listdir("/proc/%d/fd" % self.server.proc.pid))

    def connections(self):
        return self.server.request("GET", "/metrics").json()["http_connections"]

    def baseline(self):
        for _ in range(50):  # warm up buffers and the allocator
            self.server.request("GET", "/health")
        return self.open_fds(), self.server.rss_kib()

    def assert_back_to_baseline(self, fds0, rss0, what, rss_slack_kib=16 * 1024):
        deadline = time.monotonic() + SETTLE_TIMEOUT
        print("%s: %d connections still open just after the clients closed" %
              (what, self.connections() - 1), file=sys.stderr)
        while self.connections() > 1 or self.open_fds() > fds0 + 2:
            self.assertLess(time.monotonic(), deadline,
                            "%s: %d connections, %d fds (baseline %d) remain" %
                            (what, self.connections(), self.open_fds(), fds0))
            time.sleep(0.05)  # bounded wait for the server to close them
        # Under a sanitizer or valgrind (tests/valgrind/run.sh sets
        # KV_UNDER_VALGRIND) the RSS is the tool's, not the server's.
        if not sanitized_build() and not os.environ.get("KV_UNDER_VALGRIND"):
            grown = self.server.rss_kib() - rss0
            print("%s: RSS %d KiB over its baseline" % (what, grown), file=sys.stderr)
            self.assertLess(grown, rss_slack_kib, "%s: RSS grew by %d KiB" % (what, grown))

    @contextlib.contextmanager
    def probing(self, what):
        prober = Prober(self.server)
        prober.start()
        try:
            yield
        finally:
            target = len(prober.latencies) + 3
            deadline = time.monotonic() + 15
            while (len(prober.latencies) < target and not prober.failures and
                   time.monotonic() < deadline):
                time.sleep(0.01)
            prober.stopping.set()
            prober.join(timeout=30)
        self.assertEqual(prober.failures, [], self.server.log()[-20000:])
        self.assertGreaterEqual(len(prober.latencies), 3)
        self.assertIsNone(self.server.proc.poll(), "the server exited:\n" + self.server.log())
        print("%s: well-behaved client %d rounds, p50 %.1f ms, p99 %.1f ms, max %.1f ms" %
              (what, len(prober.latencies), 1000 * prober.percentile(0.5),
               1000 * prober.percentile(0.99), 1000 * max(prober.latencies)), file=sys.stderr)

    def test_burst_of_ten_thousand_connects(self):
        fds0, _ = self.baseline()
        # The allocator keeps what the busiest moment needed (about 32 KiB per
        # concurrent connection, and the half requests linger until the
        # timeout), so RSS does not fall back to the cold figure: the baseline
        # is taken after two batches and the bound is loose. It still catches
        # a leak of a few KiB per connection over the other 9,000 connects;
        # `make valgrind` runs the exact accounting.
        rss_warm = None
        with self.probing("connect burst"):
            done = 0
            while done < BURST_CONNECTS:
                if done == 2 * BURST_BATCH:
                    rss_warm = self.server.rss_kib()
                batch = []
                for i in range(min(BURST_BATCH, BURST_CONNECTS - done)):
                    s = socket.create_connection(("127.0.0.1", self.server.port), timeout=30)
                    kind = (done + i) % 4
                    if kind == 1:
                        s.sendall(b"GET /hea")  # half a request
                    elif kind == 2:
                        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")  # never read
                    batch.append(s)
                for s in batch:
                    s.close()
                done += len(batch)
            self.assertEqual(self.server.request("GET", "/health").status, 200)
        self.assert_back_to_baseline(fds0, rss_warm, "connect burst", rss_slack_kib=32 * 1024)

    def test_slowloris(self):
        fds0, rss0 = self.baseline()
        request = b"GET /health HTTP/1.1\r\nHost: slow\r\nX-Slow: "
        with self.probing("slowloris"):
            slow = [socket.create_connection(("127.0.0.1", self.server.port), timeout=30)
                    for _ in range(SLOW_CONNECTIONS)]
            try:
                for rnd in range(SLOW_ROUNDS):
                    for s in slow:
                        s.sendall(request[rnd:rnd + 1])
                    time.sleep(SLOW_PERIOD)
                self.assertGreaterEqual(self.connections(), SLOW_CONNECTIONS)
                # The slow clients still get their answers once they finish.
                for s in slow[:20]:
                    s.sendall(request[SLOW_ROUNDS:] + b"x\r\n\r\n")
                for s in slow[:20]:
                    self.assertTrue(s.recv(4096).startswith(b"HTTP/1.1 200 OK"))
            finally:
                for s in slow:
                    s.close()
        self.assert_back_to_baseline(fds0, rss0, "slowloris")


if __name__ == "__main__":
    unittest.main()
