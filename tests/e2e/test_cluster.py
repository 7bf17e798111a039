"""End-to-end test of the cluster (scripts/cluster.sh): three shards, each a
primary volume-server and its replica (MIN_REPLICA_ACKS=1), behind the nginx
gateway (HTTPS) and twemproxy (RESP, over TLS at the gateway), all rendered
from deploy/, on free ports in a private directory. Every client verifies the
gateway's certificate.

- 3,000 blobs written through the gateway spread over the three shards and
  are on both nodes of their shard (each node's /metrics total_keys).
- They read back; listing through the gateway returns all of them in byte
  order, page by page (limit, after, X-Next-After), in one streamed answer,
  and between start and end.
- RESP through the gateway: SET, GET, DEL and MGET over the shards; a key set
  over RESP is the blob of the same name over HTTP (one placement for both).
- Failover: kill -9 of a shard's primary while a writer writes: the shard's
  reads still succeed (its replica), its writes fail cleanly (502/503) until
  `cluster.sh promote` of the replica, then succeed; nothing acknowledged is
  lost; the old primary rejoins as a replica. The gateway's /health reports
  each shard and node, and the worst.

The cluster is always torn down, also on failure.

Also usable against the compose cluster (make test-docker): set
KV_GATEWAY_URL=https://127.0.0.1:PORT, KV_GATEWAY_RESP=127.0.0.1:PORT,
KV_TLS_CA=the certificate, and KV_START_NODE, KV_KILL_NODE (kill -9) and
KV_PROMOTE_NODE to commands taking a node's name.
"""

import concurrent.futures
import http.client
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

import redis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_harness import BUILD_DIR, quote_key  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CLUSTER_SH = os.path.join(ROOT, "scripts", "cluster.sh")
NBLOBS = 3000
NRESP = 300
WORKERS = 4
REQUEST_TIMEOUT = 20  # seconds for one request
# seconds for the whole test (it takes a few on an idle machine)
BUDGET = float(os.environ.get("KV_CLUSTER_BUDGET", "180"))
# With a stopped node, how many of its keys to try (all by default). A
# stopped container's address may take seconds to fail ("no route to host").
STOP_SAMPLE = int(os.environ.get("KV_STOP_SAMPLE", "0")) or None


def parse_url(url):
    u = urllib.parse.urlsplit(url)
    return u.hostname, u.port


class Client:
    """Keep-alive HTTPS connections, one per thread, verifying the gateway's
    certificate against the CA file."""

    def __init__(self, url, cafile, timeout=REQUEST_TIMEOUT):
        self.host, self.port = parse_url(url)
        self.timeout = timeout
        self.context = ssl.create_default_context(cafile=cafile)
        self.local = threading.local()
        self.lock = threading.Lock()
        self.conns = []

    def close(self):
        with self.lock:
            for c in self.conns:
                c.close()
            self.conns = []

    def request(self, method, path, body=None, headers=None):
        """(status, body, headers)"""
        for attempt in range(2):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = self.local.conn = http.client.HTTPSConnection(
                    self.host, self.port, timeout=self.timeout, context=self.context)
                with self.lock:
                    self.conns.append(conn)
            try:
                conn.request(method, path, body=body, headers=headers or {})
                resp = conn.getresponse()
                data = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
                    self.local.conn = None
                return resp.status, data, resp
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    ssl.SSLEOFError, ssl.SSLZeroReturnError):
                # A keep-alive connection the server closed (nginx closes
                # idle ones when it reloads): retry once on a new one.
                conn.close()
                self.local.conn = None
                if attempt:
                    raise


def value_of(i):
    return (b"blob %d " % i) * (1 + i % 7)


def key_of(i):
    return "cluster/user:%d/photo %d.jpg" % (i, i)


def byte_order(keys):
    return sorted(keys, key=lambda k: k.encode())


class Writer(threading.Thread):
    """Writes ack/N keys through the gateway, one after another, until
    stopped; remembers the last value of each key that got its 201, and
    counts the writes per shard that succeeded and failed."""

    def __init__(self, gw, shards):
        super().__init__(daemon=True)
        self.gw = gw
        self.done = threading.Event()
        self.lock = threading.Condition()
        self.acked = {}
        self.ok = {s["name"]: 0 for s in shards}
        self.failed = {s["name"]: 0 for s in shards}
        self.error = None

    def run(self):
        n = 0
        try:
            while not self.done.is_set():
                key, value = "ack/%d" % (n % 500), b"write %d" % n
                n += 1
                try:
                    status, body, resp = self.gw.request("PUT", "/blobs/" + quote_key(key), value)
                except OSError:
                    continue
                shard = resp.getheader("X-Shard")
                with self.lock:
                    if status == 201:
                        self.acked[key] = value
                        self.ok[shard] += 1
                    elif status in (502, 503, 504):
                        # not acknowledged (504: durable on the primary,
                        # not confirmed by its replica in time)
                        self.failed[shard] += 1
                    else:
                        raise AssertionError("write of %s: %d %r" % (key, status, body))
                    self.lock.notify_all()
        except BaseException as e:  # reported by the test's thread
            with self.lock:
                self.error = e
                self.lock.notify_all()

    def wait_until(self, what, check, seconds=60):
        deadline = time.monotonic() + seconds
        with self.lock:
            while not check():
                if self.error:
                    raise AssertionError("the writer failed: %r" % self.error)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("the writer: %s (ok %s, failed %s)"
                                         % (what, self.ok, self.failed))
                self.lock.wait(left)

    def wait_for(self, n, shard=None):
        """n more acknowledged writes (to shard, when given)."""
        count = (lambda: self.ok[shard]) if shard else (lambda: sum(self.ok.values()))
        with self.lock:
            target = count() + n
        self.wait_until("%d more writes" % n, lambda: count() >= target)

    def wait_failures(self, shard, n):
        self.wait_until("%d failed writes to %s" % (n, shard), lambda: self.failed[shard] >= n)

    def stop(self):
        self.done.set()
        self.join(timeout=60)
        if self.error:
            raise AssertionError("the writer failed: %r" % self.error)

    def acknowledged(self):
        with self.lock:
            return dict(self.acked)


class ClusterTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="kv-cluster-")
        cls.started = time.monotonic()
        cls.external = bool(os.environ.get("KV_GATEWAY_URL"))
        if cls.external:
            cls.gateway_url = os.environ["KV_GATEWAY_URL"]
            cls.resp_addr = os.environ["KV_GATEWAY_RESP"]
            cls.cafile = os.environ["KV_TLS_CA"]
            cls.start_cmd = os.environ["KV_START_NODE"]
            cls.kill_cmd = os.environ["KV_KILL_NODE"]
            cls.promote_cmd = os.environ["KV_PROMOTE_NODE"]
            cls.env = dict(os.environ)
            return
        if not os.path.exists(os.path.join(BUILD_DIR, "volume-server")):
            raise RuntimeError("no volume-server in %s" % BUILD_DIR)
        cluster_dir = os.path.join(cls.tmp, "cluster")
        cls.env = dict(os.environ)
        cls.env.update({
            "CLUSTER_DIR": cluster_dir,
            "GATEWAY_PORT": "0",
            "GATEWAY_RESP_PORT": "0",
            "VOLUME_PORTS": "0",
            "VOLUME_RESP_PORTS": "0",
            "TWEMPROXY_PORT": "0",
            "TWEMPROXY_STATS_PORT": "0",
            "BUILD": os.path.abspath(BUILD_DIR),
            "START_TIMEOUT": "30",
            # A replica per shard, each write acknowledged by it
            # (MIN_REPLICA_ACKS=1, the cluster's default, needs SYNC_MODE=always).
            "REPLICAS": "1",
            "SYNC_MODE": "always",
            # a loaded machine must not turn an acknowledgement into a 504
            "REPLICA_ACK_TIMEOUT_MS": "10000",
            "LOG_LEVEL": "info",
        })
        cls.start_cmd = CLUSTER_SH + " start"
        cls.kill_cmd = None  # kill -9 of the pid in CLUSTER_DIR/run/NODE.pid
        cls.promote_cmd = CLUSTER_SH + " promote"
        try:
            cls.run_cmd(CLUSTER_SH + " start")
            settings = {}
            with open(os.path.join(cluster_dir, "cluster.env")) as f:
                for line in f:
                    name, _, value = line.rstrip("\n").partition("=")
                    settings[name] = value
            cls.settings = settings
            cls.gateway_url = "https://127.0.0.1:%s" % settings["GATEWAY_PORT"]
            cls.resp_addr = "127.0.0.1:%s" % settings["GATEWAY_RESP_PORT"]
            cls.cafile = settings["GATEWAY_TLS_CERT"]
        except BaseException:
            cls.teardown_cluster()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.teardown_cluster()

    @classmethod
    def teardown_cluster(cls):
        try:
            if not cls.external:
                subprocess.run([CLUSTER_SH, "stop"], env=cls.env, timeout=90,
                               stdin=subprocess.DEVNULL, capture_output=True)
        finally:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def run_cmd(cls, cmd, *args):
        full = cmd + "".join(" " + a for a in args)
        r = subprocess.run(["bash", "-c", full], env=cls.env, timeout=90,
                           stdin=subprocess.DEVNULL, capture_output=True)
        if r.returncode != 0:
            logs = ""
            logdir = os.path.join(cls.env.get("CLUSTER_DIR", "/nonexistent"), "logs")
            if os.path.isdir(logdir):
                for name in sorted(os.listdir(logdir)):
                    with open(os.path.join(logdir, name), "rb") as f:
                        logs += "--- %s\n%s\n" % (name, f.read()[-3000:].decode("utf-8", "replace"))
            raise AssertionError("%s: exit %d\n%s%s\n%s" % (full, r.returncode, r.stdout.decode(),
                                                              r.stderr.decode(), logs))
        return r

    def budget_left(self):
        left = BUDGET - (time.monotonic() - self.started)
        self.assertGreater(left, 0, "the cluster test ran out of its time budget")

    def parallel(self, fn, items):
        with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
            return list(pool.map(fn, items))

    def health(self):
        status, body, _ = self.gw.request("GET", "/health")
        return status, json.loads(body)

    def wait_until(self, what, check, seconds=60):
        """Polls check() (true when done) up to `seconds`; fails naming `what`."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                result = check()
            except OSError as e:
                result = None
                last = repr(e)
            else:
                last = result
            if result:
                return result
            self.assertLess(time.monotonic(), deadline, "%s: %s" % (what, last))
            time.sleep(0.2)

    def kill_node(self, node):
        if self.kill_cmd:
            self.run_cmd(self.kill_cmd, node)
            return
        with open(os.path.join(self.env["CLUSTER_DIR"], "run", node + ".pid")) as f:
            pid = int(f.read())
        os.kill(pid, signal.SIGKILL)

        def gone():
            try:
                with open("/proc/%d/stat" % pid) as f:
                    return f.read().split(") ")[1][0] == "Z"  # a zombie is gone too
            except FileNotFoundError:
                return True

        self.wait_until("%s is gone" % node, gone)

    def node_role(self, node):
        status, body, _ = self.gw.request("GET", "/%s/health" % node)
        return json.loads(body).get("role") if status == 200 else None

    def node_keys(self, node):
        status, body, _ = self.gw.request("GET", "/%s/metrics" % node)
        self.assertEqual(status, 200, body)
        m = json.loads(body)
        self.assertEqual(m["volume_id"], node)
        return m["total_keys"]

    def keys_by_node(self):
        return {n["name"]: self.node_keys(n["name"]) for s in self.shards for n in s["nodes"]}

    def list_all(self, query):
        status, body, resp = self.gw.request("GET", "/blobs?" + query)
        self.assertEqual(status, 200, body[:300])
        self.assertIsNone(resp.getheader("X-Next-After"))
        return json.loads(body)

    def list_pages(self, query, limit):
        keys, after, pages = [], None, 0
        while True:
            q = "%s&limit=%d" % (query, limit)
            if after is not None:
                # the next page: after the last key instead of from start=
                q = "&".join(p for p in q.split("&") if not p.startswith("start="))
                q += "&after=" + after
            status, body, resp = self.gw.request("GET", "/blobs?" + q)
            self.assertEqual(status, 200, body[:300])
            page = json.loads(body)
            self.assertLessEqual(len(page), limit)
            keys += page
            pages += 1
            after = resp.getheader("X-Next-After")
            if after is None:
                return keys, pages
            self.assertEqual(urllib.parse.unquote(after), page[-1])

    def test_cluster(self):
        self.gw = gw = Client(self.gateway_url, self.cafile)
        self.addCleanup(gw.close)

        # The gateway's health: every shard and node, healthy.
        status, h = self.health()
        self.assertEqual((status, h["status"], h["role"]), (200, "healthy", "gateway"), h)
        self.shards = h["shards"]
        self.assertEqual([s["name"] for s in self.shards], ["shard-1", "shard-2", "shard-3"])
        for s in self.shards:
            self.assertEqual(s["status"], "healthy", s)
            self.assertEqual([n["role"] for n in s["nodes"]][0], "primary", s)
            for n in s["nodes"]:
                status, body, _ = gw.request("GET", "/%s/health" % n["name"])
                self.assertEqual(status, 200, body)
                self.assertEqual(json.loads(body)["volume_id"], n["name"])
                # Its status page, whose URLs are relative: under /NAME/ they
                # reach the same node (tests/browser runs it in a browser).
                status, page, _ = gw.request("GET", "/%s/ui" % n["name"])
                self.assertEqual(status, 200, page[:200])
                self.assertIn(b'src="ui/app.js"', page)
        # nginx's own errors are JSON too.
        status, body, _ = gw.request("GET", "/no/such/endpoint")
        self.assertEqual(status, 404, body)
        self.assertIn("error", json.loads(body))
        base = self.keys_by_node()

        # 3,000 blobs through the gateway.
        t0 = time.monotonic()

        def put(i):
            status, body, resp = gw.request("PUT", "/blobs/" + quote_key(key_of(i)), value_of(i))
            self.assertEqual(status, 201, body)
            self.assertEqual(json.loads(body)["key"], key_of(i))
            return resp.getheader("X-Shard")

        owner = self.parallel(put, range(NBLOBS))
        t_put = time.monotonic() - t0
        self.budget_left()

        # Each shard got its share, and each of its nodes holds all of it.
        by_shard = {s["name"]: owner.count(s["name"]) for s in self.shards}
        print("\nper-shard blobs (%d through the gateway): %s"
              % (NBLOBS, ", ".join("%s=%d" % kv for kv in sorted(by_shard.items()))))
        self.assertEqual(sum(by_shard.values()), NBLOBS)
        for name, n in by_shard.items():
            self.assertGreater(n, NBLOBS // 10, "shard %s got too few keys: %s" % (name, by_shard))
        for s in self.shards:
            for n in s["nodes"]:
                want = base[n["name"]] + by_shard[s["name"]]
                self.wait_until("%s holds its shard's keys" % n["name"],
                                lambda: self.node_keys(n["name"]) == want)

        # Each reads back through the gateway.
        t0 = time.monotonic()

        def get(i):
            status, body, _ = gw.request("GET", "/blobs/" + quote_key(key_of(i)))
            return status, body

        for i, (status, body) in enumerate(self.parallel(get, range(NBLOBS))):
            self.assertEqual(status, 200, (i, body[:200]))
            self.assertEqual(body, value_of(i))
        t_get = time.monotonic() - t0

        # A query string or another spelling of the key does not move it.
        for i in range(0, NBLOBS, 97):
            k = key_of(i)
            status, body, _ = gw.request("GET", "/blobs/" + quote_key(k) + "?x=%d" % i)
            self.assertEqual((status, body), (200, value_of(i)))
            status, body, _ = gw.request("GET", "/blobs/" + urllib.parse.quote(k, safe=""))
            self.assertEqual((status, body), (200, value_of(i)))
        self.budget_left()

        # The listing, merged over the shards: every key, in byte order,
        # page by page and in one streamed answer; start, end and after.
        expected = byte_order(key_of(i) for i in range(NBLOBS))
        q = "prefix=" + urllib.parse.quote("cluster/")
        paged, pages = self.list_pages(q, 400)
        self.assertEqual(paged, expected)
        self.assertEqual(pages, (NBLOBS + 399) // 400)
        self.assertEqual(self.list_all(q), expected)
        lo, hi = expected[1000], expected[1700]
        window = "%s&start=%s&end=%s" % (q, urllib.parse.quote(lo), urllib.parse.quote(hi))
        self.assertEqual(self.list_all(window), expected[1000:1700])
        self.assertEqual(self.list_pages(window, 123)[0], expected[1000:1700])
        status, body, resp = gw.request(
            "GET", "/blobs?%s&after=%s&limit=5" % (q, urllib.parse.quote(lo)))
        self.assertEqual(json.loads(body), expected[1001:1006])
        self.assertEqual(urllib.parse.unquote(resp.getheader("X-Next-After")), expected[1005])
        # The volumes' own errors pass through.
        status, body, _ = gw.request("GET", "/blobs?limit=0")
        self.assertEqual(status, 400, body)
        self.assertIn("error", json.loads(body))
        self.budget_left()

        # RESP through the gateway (TLS) and twemproxy.
        host, port = self.resp_addr.rsplit(":", 1)
        r = redis.Redis(host=host, port=int(port), ssl=True, ssl_ca_certs=self.cafile,
                        ssl_cert_reqs="required", socket_timeout=REQUEST_TIMEOUT)
        self.addCleanup(r.close)
        rkeys = ["resp/é %d" % i for i in range(NRESP)]
        for i, k in enumerate(rkeys):
            self.assertTrue(r.set(k, b"r%d" % i))
        self.assertEqual(r.mget(rkeys), [b"r%d" % i for i in range(NRESP)])
        resp_shards = set()
        for i, k in enumerate(rkeys):
            # One placement for both protocols: the blob of the same name.
            status, body, resp = gw.request("GET", "/blobs/" + quote_key(k))
            self.assertEqual((status, body), (200, b"r%d" % i), k)
            resp_shards.add(resp.getheader("X-Shard"))
        self.assertEqual(resp_shards, {s["name"] for s in self.shards})
        self.assertEqual(r.get(key_of(5)), value_of(5))
        self.assertEqual(r.delete(*rkeys[::2]), NRESP // 2)
        self.assertEqual(r.mget(rkeys[:4]), [None, b"r1", None, b"r3"])
        status, _, _ = gw.request("GET", "/blobs/" + quote_key(rkeys[0]))
        self.assertEqual(status, 404)
        r.delete(*rkeys)
        self.budget_left()

        # Failover. kill -9 a shard's primary while a writer writes over
        # every shard: the shard's reads go on (its replica), its writes
        # fail cleanly (502/503) until its replica is promoted, then succeed.
        victim = self.shards[1]
        primary, replica = [n["name"] for n in victim["nodes"]]
        writer = Writer(gw, self.shards)
        writer.start()
        self.addCleanup(writer.stop)
        writer.wait_for(50)
        self.kill_node(primary)
        theirs = [i for i in range(NBLOBS) if owner[i] == victim["name"]]
        tried = [i for i in range(NBLOBS) if owner[i] != victim["name"]] + theirs[:STOP_SAMPLE]
        for i, (status, body) in zip(tried, self.parallel(get, tried)):
            self.assertEqual((status, body), (200, value_of(i)), i)
        # Writes of its keys fail (they are not moved to another shard, nor
        # written to the replica); the other shards' writes succeed.
        i = min(theirs)
        status, body, _ = gw.request("PUT", "/blobs/" + quote_key(key_of(i)), b"moved?")
        self.assertIn(status, (502, 503), body)
        self.assertIn("error", json.loads(body))
        j = next(k for k in range(NBLOBS) if owner[k] != victim["name"])
        status, body, _ = gw.request("PUT", "/blobs/" + quote_key(key_of(j)), value_of(j))
        self.assertEqual(status, 201, body)
        # The gateway's health names the shard and the node.
        status, h = self.health()
        self.assertEqual((status, h["status"]), (503, "read-only"), h)
        shard = next(x for x in h["shards"] if x["name"] == victim["name"])
        self.assertEqual(shard["status"], "read-only", h)
        self.assertEqual({n["name"]: n["status"] for n in shard["nodes"]},
                         {primary: "down", replica: "healthy"}, h)
        writer.wait_failures(victim["name"], 5)
        self.budget_left()

        # Promote the replica: its shard takes writes again.
        self.run_cmd(self.promote_cmd, replica)
        status, body, resp = gw.request("PUT", "/blobs/" + quote_key(key_of(i)), value_of(i))
        self.assertEqual(status, 201, body)
        self.assertEqual(json.loads(body)["volume_id"], replica)
        writer.wait_for(50, shard=victim["name"])
        writer.stop()
        # Nothing acknowledged is lost: every write that got its 201, the
        # last of each key, reads back; and the 3,000 blobs.
        acked = writer.acknowledged()
        self.assertGreater(len(acked), 100)
        for k, v in acked.items():
            status, body, _ = gw.request("GET", "/blobs/" + quote_key(k))
            self.assertEqual((status, body), (200, v), k)
        for i, (status, body) in enumerate(self.parallel(get, range(NBLOBS))):
            self.assertEqual((status, body), (200, value_of(i)), i)
        # RESP reaches the new primary (twemproxy follows the promotion).
        r2 = redis.Redis(host=host, port=int(port), ssl=True, ssl_ca_certs=self.cafile,
                         ssl_cert_reqs="required", socket_timeout=REQUEST_TIMEOUT)
        self.addCleanup(r2.close)

        def resp_set():
            try:
                return r2.set(key_of(i), value_of(i))
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as e:
                # twemproxy restarting (a restarted container's address
                # may take a moment to answer again)
                print("RESP through the gateway: %r" % e)
                return None

        self.wait_until("RESP writes reach the new primary", resp_set)
        self.assertEqual(r2.get(key_of(i)), value_of(i))
        self.budget_left()

        # The old primary rejoins as the new primary's replica: the shard
        # is whole again, and the old primary holds what the new one holds.
        self.run_cmd(self.start_cmd, primary)
        self.wait_until("%s rejoins as a replica" % primary,
                        lambda: self.node_role(primary) == "replica")
        self.wait_until("%s catches up" % primary,
                        lambda: self.node_keys(primary) == self.node_keys(replica))
        status, h = self.wait_until("the gateway reports every shard healthy",
                                    lambda: (lambda x: x if x[0] == 200 else None)(self.health()))
        self.assertEqual(h["status"], "healthy", h)
        shard = next(x for x in h["shards"] if x["name"] == victim["name"])
        self.assertEqual({n["name"]: n["role"] for n in shard["nodes"]},
                         {primary: "replica", replica: "primary"}, h)
        print("timings: %d PUTs %.1f s, %d GETs %.1f s, whole test %.1f s"
              % (NBLOBS, t_put, NBLOBS, t_get, time.monotonic() - self.started))


if __name__ == "__main__":
    unittest.main(verbosity=2)
