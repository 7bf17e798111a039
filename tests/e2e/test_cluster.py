"""End-to-end test of the three-volume cluster (scripts/cluster.sh): three
volume-server processes behind the nginx gateway rendered from
deploy/nginx.conf.template, on a private port range and directory.

3,000 blobs written through the gateway land on all three volumes (counted from
each volume's /metrics total_keys), each reads back through the gateway,
stopping one volume fails only the keys that hash to it, and restarting it
brings them back. Each volume's status page is served under /NAME/ui. The
cluster is always torn down, also on failure.

Also usable against another deployment of the same gateway (the compose
cluster, make test-docker): set KV_GATEWAY_URL=http://127.0.0.1:PORT and
KV_VOLUME_URLS="vol-1=http://127.0.0.1:P1 vol-2=... vol-3=..." and
KV_STOP_VOLUME / KV_START_VOLUME to commands taking a volume name.
"""

import concurrent.futures
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_harness import BUILD_DIR, free_port, quote_key  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CLUSTER_SH = os.path.join(ROOT, "scripts", "cluster.sh")
NBLOBS = 3000
WORKERS = 4
REQUEST_TIMEOUT = 20  # seconds for one request
# seconds for the whole test (it takes a few on an idle machine)
BUDGET = float(os.environ.get("KV_CLUSTER_BUDGET", "120"))
# With a stopped volume, how many of its keys to try (all by default). A
# stopped container's address may take seconds to fail ("no route to host").
STOP_SAMPLE = int(os.environ.get("KV_STOP_SAMPLE", "0")) or None


def parse_url(url):
    u = urllib.parse.urlsplit(url)
    return u.hostname, u.port


class Client:
    """Keep-alive connections, one per thread."""

    def __init__(self, url, timeout=REQUEST_TIMEOUT):
        self.host, self.port = parse_url(url)
        self.timeout = timeout
        self.local = threading.local()
        self.lock = threading.Lock()
        self.conns = []

    def close(self):
        with self.lock:
            for c in self.conns:
                c.close()
            self.conns = []

    def request(self, method, path, body=None, headers=None):
        for attempt in range(2):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = self.local.conn = http.client.HTTPConnection(
                    self.host, self.port, timeout=self.timeout)
                with self.lock:
                    self.conns.append(conn)
            try:
                conn.request(method, path, body=body, headers=headers or {})
                resp = conn.getresponse()
                data = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
                    self.local.conn = None
                return resp.status, data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # A keep-alive connection the server closed: retry once on a new one.
                conn.close()
                self.local.conn = None
                if attempt:
                    raise


def value_of(i):
    return (b"blob %d " % i) * (1 + i % 7)


def key_of(i):
    return "cluster/user:%d/photo %d.jpg" % (i, i)


class ClusterTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="kv-cluster-")
        cls.started = time.monotonic()
        external = os.environ.get("KV_GATEWAY_URL")
        if external:
            cls.gateway_url = external
            cls.volumes = dict(v.split("=", 1) for v in os.environ["KV_VOLUME_URLS"].split())
            cls.stop_cmd = os.environ["KV_STOP_VOLUME"]
            cls.start_cmd = os.environ["KV_START_VOLUME"]
            cls.env = dict(os.environ)
            return
        if not os.path.exists(os.path.join(BUILD_DIR, "volume-server")):
            raise RuntimeError("no volume-server in %s" % BUILD_DIR)
        if not (shutil.which("nginx") or os.path.exists("/usr/sbin/nginx")):
            raise RuntimeError("nginx is not installed: scripts/install-deps.sh installs nginx-light")
        # The volumes take free ports themselves (PORT=0) and keep them across
        # restarts; nginx cannot say which port it took, so the gateway's is
        # probed for.
        gateway_port = free_port()
        cluster_dir = os.path.join(cls.tmp, "cluster")
        cls.env = dict(os.environ)
        cls.env.update({
            "CLUSTER_DIR": cluster_dir,
            "GATEWAY_PORT": str(gateway_port),
            "VOLUME_PORTS": "0 0 0",
            "BUILD": os.path.abspath(BUILD_DIR),
            "START_TIMEOUT": "30",
            # Routing is under test, not durability: let the OS flush.
            "SYNC_MODE": "none",
            "LOG_LEVEL": "info",
        })
        cls.gateway_url = "http://127.0.0.1:%d" % gateway_port
        cls.stop_cmd = CLUSTER_SH + " stop"
        cls.start_cmd = CLUSTER_SH + " start"
        try:
            cls.run_cmd(CLUSTER_SH + " start")
            cls.volumes = {}
            for name in ("vol-1", "vol-2", "vol-3"):
                with open(os.path.join(cluster_dir, "run", name + ".port")) as f:
                    cls.volumes[name] = "http://127.0.0.1:%d" % int(f.read())
        except BaseException:
            cls.teardown_cluster()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.teardown_cluster()

    @classmethod
    def teardown_cluster(cls):
        try:
            if not os.environ.get("KV_GATEWAY_URL"):
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

    def wait_direct_health(self, name, deadline):
        while True:
            c = Client(self.volumes[name], timeout=2)
            try:
                status, body = c.request("GET", "/health")
            except OSError as e:
                status, body = None, repr(e)
            finally:
                c.close()
            if status == 200:
                return
            self.assertLess(time.monotonic(), deadline, "%s unreachable: %s" % (name, body))
            time.sleep(0.25)

    def metrics_keys(self):
        counts = {}
        for name, url in sorted(self.volumes.items()):
            c = Client(url)
            try:
                status, body = c.request("GET", "/metrics")
            finally:
                c.close()
            self.assertEqual(status, 200, body)
            m = json.loads(body)
            self.assertEqual(m["volume_id"], name)
            counts[name] = m["total_keys"]
        return counts

    def parallel(self, fn, items):
        with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
            return list(pool.map(fn, items))

    def test_cluster(self):
        gw = Client(self.gateway_url)
        self.addCleanup(gw.close)
        base = self.metrics_keys()

        # Health of the gateway and of each volume through it.
        status, body = gw.request("GET", "/health")
        self.assertEqual(status, 200, body)
        for name in self.volumes:
            status, body = gw.request("GET", "/%s/health" % name)
            self.assertEqual(status, 200, body)
            self.assertEqual(json.loads(body)["volume_id"], name)
            # Its status page, whose URLs are relative: under /NAME/ they
            # reach the same volume (tests/browser runs it in a browser).
            status, page = gw.request("GET", "/%s/ui" % name)
            self.assertEqual(status, 200, page[:200])
            self.assertIn(b'src="ui/app.js"', page)
            for asset in ("ui/app.js", "ui/style.css", "ui/chart.min.js"):
                status, body = gw.request("GET", "/%s/%s" % (name, asset))
                self.assertEqual(status, 200, (asset, body[:200]))

        # 3,000 blobs through the gateway.
        t0 = time.monotonic()

        def put(i):
            status, body = gw.request("PUT", "/blobs/" + quote_key(key_of(i)), value_of(i))
            self.assertEqual(status, 201, body)
            reply = json.loads(body)
            self.assertEqual(reply["key"], key_of(i))
            return reply["volume_id"]

        owner = self.parallel(put, range(NBLOBS))
        t_put = time.monotonic() - t0
        self.budget_left()

        counts = self.metrics_keys()
        added = {name: counts[name] - base[name] for name in counts}
        by_reply = {name: owner.count(name) for name in self.volumes}
        print("\nper-volume keys from /metrics total_keys (%d blobs through the gateway): %s"
              % (NBLOBS, ", ".join("%s=%d" % kv for kv in sorted(added.items()))))
        self.assertEqual(added, by_reply)
        self.assertEqual(sum(added.values()), NBLOBS)
        for name, n in added.items():
            self.assertGreater(n, NBLOBS // 10, "volume %s got too few keys: %s" % (name, added))

        # Each reads back through the gateway.
        t0 = time.monotonic()

        def get(i):
            return gw.request("GET", "/blobs/" + quote_key(key_of(i)))

        for i, (status, body) in enumerate(self.parallel(get, range(NBLOBS))):
            self.assertEqual(status, 200, (i, body[:200]))
            self.assertEqual(body, value_of(i))
        t_get = time.monotonic() - t0

        # A query string or another spelling of the key does not move it.
        for i in range(0, NBLOBS, 97):
            k = key_of(i)
            status, body = gw.request("GET", "/blobs/" + quote_key(k) + "?x=%d" % i)
            self.assertEqual((status, body), (200, value_of(i)))
            status, body = gw.request("GET", "/blobs/" + urllib.parse.quote(k, safe=""))
            self.assertEqual((status, body), (200, value_of(i)))
        # Listing through the gateway is per volume.
        status, body = gw.request("GET", "/blobs")
        self.assertEqual(status, 501, body)
        victim = sorted(self.volumes)[1]
        status, body = gw.request("GET", "/%s/blobs?prefix=cluster/&limit=5" % victim)
        self.assertEqual(status, 200, body)
        self.assertEqual(len(json.loads(body)), 5)
        self.budget_left()

        # Stop one volume: exactly its keys fail, the others still read.
        self.run_cmd(self.stop_cmd, victim)
        expected = [i for i in range(NBLOBS) if owner[i] == victim]
        tried = [i for i in range(NBLOBS) if owner[i] != victim] + expected[:STOP_SAMPLE]
        results = dict(zip(tried, self.parallel(get, tried)))
        failed = {i for i, (status, _) in results.items() if status != 200}
        self.assertEqual(failed, set(expected[:STOP_SAMPLE]))
        for i, (status, body) in results.items():
            if owner[i] == victim:
                self.assertIn(status, (502, 504), body[:200])
            else:
                self.assertEqual(body, value_of(i))
        # Writes of its keys fail too (they are not moved to another volume).
        i = min(expected)
        status, body = gw.request("PUT", "/blobs/" + quote_key(key_of(i)), b"moved?")
        self.assertIn(status, (502, 504), body)
        self.budget_left()

        # Restart it: all are back (and that write did not happen anywhere).
        self.run_cmd(self.start_cmd, victim)
        # Until the gateway reaches it again (bounded): a restarted container
        # may need a moment (its process starts, the gateway's ARP entry is
        # refreshed); cluster.sh start itself waits for /health.
        deadline = time.monotonic() + 60
        while True:
            try:
                status, body = gw.request("GET", "/%s/health" % victim)
            except OSError as e:
                status, body = None, repr(e)
            if status == 200:
                break
            self.assertLess(time.monotonic(), deadline, "%s did not come back: %s" % (victim, body))
            time.sleep(0.25)
        for i, (status, body) in enumerate(self.parallel(get, range(NBLOBS))):
            self.assertEqual((status, body), (200, value_of(i)), i)
        # The test's own host reaches it again too (bounded): a container
        # restarted at the same address has a new MAC, and the host's
        # neighbour entry for the old one can drop packets for a while.
        self.wait_direct_health(victim, deadline=time.monotonic() + 60)
        self.assertEqual(self.metrics_keys(), counts)
        print("timings: %d PUTs %.1f s, %d GETs %.1f s, whole test %.1f s"
              % (NBLOBS, t_put, NBLOBS, t_get, time.monotonic() - self.started))


if __name__ == "__main__":
    unittest.main(verbosity=2)
