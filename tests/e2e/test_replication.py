"""End-to-end tests of replication with real volume-server processes on
127.0.0.1: a replica catches up from empty, from behind and after its own
kill -9 (under writes, and in the middle of a catch-up, where it keeps every
position it acknowledged), with records of every kind and size arriving
byte-identical; a
record damaged on the way is refused and fetched again; writes to a replica
get 403 (HTTP) and -READONLY (RESP); MIN_REPLICA_ACKS=1 gives 504 while the
replica is away and 201 again once it is back; a primary killed under load
loses no acknowledged write once its replica is promoted, and comes back as
a replica with exactly the new primary's contents; a replica whose position
the primary compacted away resyncs in full.

Run by ctest with KV_BUILD_DIR set to the build directory.
"""

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_harness import BUILD_DIR, Server, stop_and_check  # noqa: E402

KVSTORE = os.path.join(BUILD_DIR, "kvstore")

WAIT = 60.0  # seconds: a bound on any wait for a condition, never a duration
PRIMARY_ENV = {"COMPACTION_INTERVAL_SECS": "0", "RESP_PORT": "off"}


def value_of(key, version=0):
    """A value whose bytes depend on key and version; sizes vary from 0 B to
    several MiB with the key's name."""
    if key.startswith("size-"):
        n = int(key.split("-")[1])
    else:
        n = zlib.crc32(key.encode()) % 3000
    unit = ("%s/%d;" % (key, version)).encode()
    return (unit * (n // len(unit) + 1))[:n]


def metrics(server):
    try:
        r = server.request("GET", "/metrics")
    except http.client.RemoteDisconnected:
        raise AssertionError("no answer to /metrics; the server's log:\n" + server.log()[-8000:])
    assert r.status == 200, r
    return r.json()["replication"]


def position(figures):
    p = figures["position"]
    return (p["segment"], p["offset"])


def contents(server):
    """Every key of server with its value."""
    r = server.request("GET", "/blobs")
    assert r.status == 200, r
    out = {}
    conn = server.connection()
    for key in r.json():
        g = server.request("GET", "/blobs/" + key, conn=conn)
        assert g.status == 200, (key, g)
        out[key] = g.body
    conn.close()
    return out


def wait_until(what, cond, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.02)  # polling a condition (bounded)


def caught_up(primary, replica):
    """Waits until replica holds primary's whole durable log (a replica
    that swaps a full copy in stops answering for a moment)."""
    def same():
        try:
            return position(metrics(replica)) == position(metrics(primary))
        except (ConnectionError, http.client.HTTPException):
            return False
    try:
        wait_until("the replica to catch up", same)
    except AssertionError:
        raise AssertionError("the replica did not catch up: primary at %r, replica at %r;"
                             " replica's log:\n%s" % (metrics(primary)["position"],
                                                      metrics(replica), replica.log()[-6000:]))


def put(server, key, value, conn=None, headers=None):
    return server.request("PUT", "/blobs/" + key, body=value, conn=conn, headers=headers)


class Proxy:
    """A TCP proxy to a port; with damage set, it flips one byte of the first
    response from upstream that is longer than 4 KiB (inside its body); with
    stall_after set, it passes that many bytes from upstream (over all
    connections) and then nothing more until it is closed."""

    def __init__(self, port):
        self.port_up = port
        self.damage = False
        self.damaged = 0
        self.stall_after = None
        self.passed = 0
        self.lock = threading.Lock()
        self.released = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.closed = False
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while not self.closed:
            try:
                down, _ = self.sock.accept()
            except OSError:
                return
            up = socket.create_connection(("127.0.0.1", self.port_up))
            threading.Thread(target=self.pump, args=(down, up, False), daemon=True).start()
            threading.Thread(target=self.pump, args=(up, down, True), daemon=True).start()

    def pump(self, src, dst, from_upstream):
        try:
            while True:
                data = src.recv(1 << 16)
                if not data:
                    break
                if from_upstream and self.damage and len(data) > 4096:
                    b = bytearray(data)
                    b[len(b) - 100] ^= 0x01
                    data = bytes(b)
                    self.damage = False
                    self.damaged += 1
                if from_upstream and self.stall_after is not None:
                    with self.lock:
                        room = max(0, min(len(data), self.stall_after - self.passed))
                        self.passed += room
                    if room < len(data):
                        dst.sendall(data[:room])
                        self.released.wait()
                        break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.closed = True
        self.released.set()
        self.sock.close()


class ReplicationTestCase(unittest.TestCase):
    def start(self, env=None, data_dir=None):
        s = Server(env=dict(PRIMARY_ENV, **(env or {})), data_dir=data_dir)
        self.addCleanup(s.cleanup)
        return s.start()

    def replica_of(self, primary, env=None, port=None):
        e = {"REPLICA_OF": "127.0.0.1:%d" % (port or primary.port), "VOLUME_ID": "replica"}
        e.update(env or {})
        return self.start(e)

    def finish(self, *servers):
        """Stops each server: exit 0, and no sanitizer report in its log."""
        for server in servers:
            stop_and_check(self, server)

    def assert_same(self, primary, replica):
        want, got = contents(primary), contents(replica)
        self.assertEqual(sorted(want), sorted(got))
        for key in want:
            self.assertEqual(want[key], got[key], key)


class CatchUp(ReplicationTestCase):
    SIZES = [0, 1, 100, 4096, 65536, 1 << 20, 5 << 20]

    def write_mix(self, primary, version):
        """Sets of every size, overwrites and deletes."""
        conn = primary.connection()
        for n in self.SIZES:
            self.assertEqual(put(primary, "size-%d" % n, value_of("size-%d" % n, version),
                                 conn=conn).status, 201)
        for i in range(300):
            key = "k%03d" % i
            self.assertEqual(put(primary, key, value_of(key, version), conn=conn).status, 201)
        for i in range(0, 300, 7):
            r = primary.request("DELETE", "/blobs/k%03d" % i, conn=conn)
            self.assertEqual(r.status, 204)
        conn.close()

    def test_replica_catches_up_from_empty_then_from_behind_byte_identical(self):
        primary = self.start({"COMPRESSION": "zstd", "SEGMENT_SIZE_MB": "4"})
        self.write_mix(primary, 1)
        replica = self.replica_of(primary)
        caught_up(primary, replica)
        self.assert_same(primary, replica)
        self.assertEqual(replica.stop(), 0)

        self.write_mix(primary, 2)
        replica.start()
        caught_up(primary, replica)
        self.assert_same(primary, replica)
        self.assertEqual(metrics(replica)["full_resyncs"], 0)
        self.assertEqual(replica.stop(), 0)
        # The CLI reads a replica's directory as any other: its own records
        # (its position) are not keys.
        p = subprocess.run([KVSTORE, "--data-dir", replica.data_dir, "count"],
                           capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(int(p.stdout.split()[0]), len(contents(primary)))
        replica.start()
        caught_up(primary, replica)
        health = replica.request("GET", "/health").json()
        self.assertEqual(health["role"], "replica")
        self.assertEqual(health["primary"], "127.0.0.1:%d" % primary.port)
        self.assertEqual(health["lag_bytes"], 0)
        self.assertEqual(primary.request("GET", "/health").json()["role"], "primary")
        self.finish(replica, primary)

    def test_replica_catches_up_after_its_own_kill_9_under_writes(self):
        primary = self.start({"SEGMENT_SIZE_MB": "1"})
        replica = self.replica_of(primary)
        stop = threading.Event()
        failures = []

        def writer():
            conn = primary.connection()
            i = 0
            while not stop.is_set():
                key = "w%05d" % (i % 2000)
                status = put(primary, key, value_of(key, i), conn=conn).status
                if status != 201:
                    failures.append(status)
                    break
                i += 1
            conn.close()

        th = threading.Thread(target=writer)
        th.start()
        try:
            wait_until("the replica to store writes", lambda: metrics(replica)["position"]
                       ["offset"] > 100000 or metrics(replica)["position"]["segment"] > 1)
            replica.proc.kill()
            replica.wait()
            replica.start()
        finally:
            stop.set()
            th.join()
        self.assertEqual(failures, [])
        caught_up(primary, replica)
        self.assert_same(primary, replica)
        self.finish(replica, primary)

    def test_a_replica_killed_during_catch_up_keeps_every_position_it_acknowledged(self):
        """96 MiB behind: the follower's batches are 32 MiB. The primary's
        answers are cut off inside the second batch, so the replica is
        caught mid-catch-up: it has stored and acknowledged the first batch
        only. Killed with -9 there, it comes back (still cut off from the
        primary) holding exactly that position: not less than it reported
        or than the primary counted as acknowledged, and nothing of the
        batch it had half received. Then it catches up, identical."""
        primary = self.start({"SEGMENT_SIZE_MB": "256"})
        conn = primary.connection()
        big = 4 << 20
        for i in range(24):
            key = "big%02d" % i
            self.assertEqual(put(primary, key, value_of("size-%d" % big, i), conn=conn).status,
                             201)
        conn.close()
        end = position(metrics(primary))
        proxy = Proxy(primary.port)
        self.addCleanup(proxy.close)
        proxy.stall_after = 40 << 20
        replica = self.replica_of(primary, port=proxy.port)

        def first_batch_acknowledged():
            reported = position(metrics(replica))
            if reported == (0, 0):
                return None
            peers = metrics(primary)["replicas"]
            acked = [position(p) for p in peers if p["id"] == "replica"]
            return (reported, acked[0]) if acked and acked[0] == reported else None

        reported, acked = wait_until("the first batch to be stored and acknowledged",
                                     first_batch_acknowledged)
        self.assertLess(reported, end)
        self.assertGreater(metrics(replica)["lag_bytes"], 0)
        replica.proc.kill()
        replica.wait()
        self.assertEqual(position(metrics(primary)["replicas"][0]), acked)

        replica.start()
        recovered = position(metrics(replica))
        self.assertEqual(recovered, reported)
        self.assertGreaterEqual(recovered, acked)
        self.assertEqual(replica.stop(), 0)

        replica.env["REPLICA_OF"] = "127.0.0.1:%d" % primary.port
        replica.start()
        caught_up(primary, replica)
        self.assert_same(primary, replica)
        self.assertEqual(metrics(replica)["full_resyncs"], 0)
        self.finish(replica, primary)

    def test_a_record_damaged_on_the_way_is_refused_and_fetched_again(self):
        primary = self.start()
        proxy = Proxy(primary.port)
        self.addCleanup(proxy.close)
        proxy.damage = True
        for i in range(50):
            self.assertEqual(put(primary, "d%02d" % i, value_of("size-1000", i)).status, 201)
        replica = self.replica_of(primary, port=proxy.port)
        caught_up(primary, replica)
        self.assertEqual(proxy.damaged, 1)
        self.assertGreaterEqual(metrics(replica)["refused_batches"], 1)
        self.assert_same(primary, replica)
        self.finish(replica, primary)

    def test_writes_to_a_replica_are_refused_naming_the_primary(self):
        primary = self.start()
        replica = self.replica_of(primary, {"RESP_PORT": "0"})
        for method in ("PUT", "POST", "DELETE"):
            r = replica.request(method, "/blobs/x", body=b"v" if method != "DELETE" else None)
            self.assertEqual(r.status, 403, method)
            self.assertIn("127.0.0.1:%d" % primary.port, r.json()["error"])
        self.assertEqual(replica.request("GET", "/blobs/x").status, 404)
        with socket.create_connection(("127.0.0.1", replica.resp_port), timeout=10) as s:
            s.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$1\r\nv\r\n*2\r\n$4\r\nINFO\r\n"
                      b"$11\r\nreplication\r\n")
            data = b""
            while b"full_resyncs" not in data:
                chunk = s.recv(65536)
                self.assertTrue(chunk, data)
                data += chunk
        self.assertTrue(data.startswith(b"-READONLY "), data)
        self.assertIn(b"127.0.0.1:%d" % primary.port, data.split(b"\r\n")[0])
        self.assertIn(b"role:slave", data)
        self.finish(replica, primary)


class SemiSync(ReplicationTestCase):
    def test_min_replica_acks_gives_504_without_the_replica_and_201_once_it_is_back(self):
        timeout_ms = 400
        primary = self.start({"MIN_REPLICA_ACKS": "1",
                              "REPLICA_ACK_TIMEOUT_MS": str(timeout_ms), "RESP_PORT": "0"})
        started = time.monotonic()
        r = put(primary, "lonely", b"v1")
        self.assertEqual(r.status, 504)
        self.assertIn("durable on the primary", r.json()["error"])
        self.assertIn("not confirmed by 1 replica", r.json()["error"])
        # Within the timeout: not before it (no replica could answer), and
        # long before a bound that only a hang would pass.
        self.assertLess(time.monotonic() - started, WAIT)
        self.assertEqual(primary.request("GET", "/blobs/lonely").body, b"v1")
        with socket.create_connection(("127.0.0.1", primary.resp_port), timeout=10) as s:
            s.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$1\r\nv\r\n")
            self.assertTrue(s.recv(4096).startswith(b"-NOREPLICAS "))

        replica = self.replica_of(primary)
        caught_up(primary, replica)
        r = put(primary, "together", b"v2")
        self.assertEqual(r.status, 201)
        self.assertEqual(replica.request("GET", "/blobs/together").body, b"v2")
        self.assertEqual(primary.request("DELETE", "/blobs/together").status, 204)
        self.assertEqual(replica.request("GET", "/blobs/together").status, 404)

        self.assertEqual(replica.stop(), 0)
        self.assertEqual(put(primary, "alone-again", b"v3").status, 504)
        replica.start()
        caught_up(primary, replica)
        self.assertEqual(put(primary, "back", b"v4").status, 201)
        m = metrics(primary)
        self.assertGreaterEqual(m["acks_timed_out"], 3)
        self.assertGreaterEqual(m["acks_waited"], 5)
        self.assertEqual([p["id"] for p in m["replicas"]], ["replica"])
        self.finish(replica, primary)


class Promotion(ReplicationTestCase):
    def test_a_promoted_replica_has_every_acknowledged_write_and_the_old_primary_rejoins(self):
        primary = self.start({"MIN_REPLICA_ACKS": "1", "REPLICA_ACK_TIMEOUT_MS": "5000"})
        replica = self.replica_of(primary)
        acked = {}
        lock = threading.Lock()
        stop = threading.Event()
        others = []

        def writer(t):
            conn = primary.connection()
            i = 0
            try:
                while not stop.is_set():
                    key = "t%d-%05d" % (t, i % 500)
                    value = value_of(key, i)
                    status = put(primary, key, value, conn=conn).status
                    if status == 201:
                        with lock:
                            acked[key] = value
                    else:
                        others.append(status)
                    i += 1
            except (OSError, http.client.HTTPException):
                pass  # the primary was killed
            conn.close()

        threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
        for th in threads:
            th.start()
        wait_until("writes", lambda: len(acked) >= 400)
        primary.proc.kill()
        for th in threads:
            th.join()
        primary.wait()
        self.assertEqual(others, [])

        r = replica.request("POST", "/admin/promote")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(replica.request("GET", "/health").json()["role"], "primary")
        conn = replica.connection()
        for key, value in acked.items():
            g = replica.request("GET", "/blobs/" + key, conn=conn)
            self.assertEqual(g.status, 200, key)
            self.assertEqual(g.body, value, key)
        for i in range(50):
            self.assertEqual(put(replica, "after-%d" % i, b"new", conn=conn).status, 201)
        conn.close()

        # The old primary, alone for a while, takes a write the new primary
        # never sees; then it comes back as a replica of the new one, and
        # whatever it has that the new primary lacks is gone.
        primary.env.pop("MIN_REPLICA_ACKS")
        primary.start()
        self.assertEqual(put(primary, "only-on-the-old", b"lost").status, 201)
        self.assertEqual(primary.stop(), 0)
        primary.env["REPLICA_OF"] = "127.0.0.1:%d" % replica.port
        primary.start()
        wait_until("the old primary's resync", lambda: "the full copy is now" in primary.log())
        caught_up(replica, primary)
        self.assert_same(replica, primary)
        self.assertEqual(primary.request("GET", "/blobs/only-on-the-old").status, 404)
        self.assertEqual(primary.request("PUT", "/blobs/x", body=b"v").status, 403)
        self.finish(primary, replica)


class Resync(ReplicationTestCase):
    def test_full_resync_after_the_primary_compacted_away_the_replicas_position(self):
        primary = self.start({"SEGMENT_SIZE_MB": "1"})
        for i in range(200):
            self.assertEqual(put(primary, "r%03d" % i, value_of("size-3000", i)).status, 201)
        replica = self.replica_of(primary, {"SEGMENT_SIZE_MB": "1"})
        caught_up(primary, replica)
        self.assertEqual(replica.stop(), 0)
        for v in range(1, 6):
            for i in range(200):
                key = "r%03d" % i
                self.assertEqual(put(primary, key, value_of(key, v)).status, 201)
        for i in range(0, 200, 3):
            self.assertEqual(primary.request("DELETE", "/blobs/r%03d" % i).status, 204)
        self.assertEqual(primary.request("POST", "/admin/compact").status, 200)
        replica.start()
        wait_until("a full resync", lambda: "the full copy is now" in replica.log())
        caught_up(primary, replica)
        self.assert_same(primary, replica)
        self.assertEqual(metrics(replica)["full_resyncs"], 1)
        self.assertFalse(os.path.exists(replica.data_dir + ".resync"))
        self.finish(replica, primary)


if __name__ == "__main__":
    unittest.main(verbosity=2)
