"""Crash loop: kill -9 the real volume-server under load, restart, verify.

Each cycle starts volume-server on one data directory (SYNC_MODE=always, 1 MiB
segments, background compaction every second from 2 segments), runs several
client threads doing PUTs, overwrites and DELETEs with self-checking values,
kills the server with SIGKILL after a random 0.3-1.5 s of load, restarts it
and checks the model:

- every key reads back as one of its allowed values: the last acknowledged
  value (201 for a PUT, 204 for a DELETE, which allows only "absent"), plus the
  value of a request that was in flight at the kill (either outcome allowed);
- so no acknowledged write is lost and no acknowledged delete comes back;
- the store accepts a new write.

Each key belongs to one client thread, so the operations on a key are
sequential and its allowed set is well defined. After a check the model is
reset to what was observed.

Run by ctest as a unit test (CRASH_CYCLES cycles, default 20). With SOAK_SECS
set (`make soak`), it loops for that many seconds, keeps going after a
failure, prints cycles, operations checked and failures, and exits non-zero
when any check failed.
"""

import hashlib
import http.client
import os
import random
import shutil
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server_harness as h  # noqa: E402

ABSENT = None
CLIENTS = 4
KEYS_PER_CLIENT = 40
LOAD_MIN, LOAD_MAX = 0.3, 1.5  # seconds of load before the kill (compaction ticks every 1 s)
REQUEST_TIMEOUT = 60  # seconds; generous: the machine may be loaded
ENV = {"SYNC_MODE": "always", "SEGMENT_SIZE_MB": "1", "COMPACTION_INTERVAL_SECS": "1",
       "COMPACTION_THRESHOLD": "2"}


def make_value(key, seq, rng):
    """A value that names its key and sequence number and checks itself:
    "key|seq|len|sha256(prefix+pad)[:16]|pad"."""
    pad = bytes(rng.getrandbits(8) for _ in range(16)) * rng.choice((1, 4, 64, 512, 1024))
    head = ("%s|%d|%d|" % (key, seq, len(pad))).encode()
    digest = hashlib.sha256(head + pad).hexdigest()[:16].encode()
    return head + digest + b"|" + pad


def value_is_intact(key, value):
    parts = value.split(b"|", 4)
    if len(parts) != 5 or parts[0] != key.encode():
        return False
    head = b"|".join(parts[:3]) + b"|"
    return (int(parts[2]) == len(parts[4]) and
            hashlib.sha256(head + parts[4]).hexdigest()[:16].encode() == parts[3])


class Model:
    """Per key, the set of values the store may hold (ABSENT for none)."""

    def __init__(self, keys):
        self.allowed = {k: {ABSENT} for k in keys}
        self.acked = 0

    def begin(self, key, value):
        self.allowed[key].add(value)  # in flight: either outcome allowed

    def ack(self, key, value):
        self.allowed[key] = {value}
        self.acked += 1


class Client(threading.Thread):
    """One client: random operations on its own keys until told to stop or
    until the server goes away."""

    def __init__(self, port, keys, model, stop, seed, seq_base):
        super().__init__(daemon=True)
        self.port, self.keys, self.model, self.stop = port, keys, model, stop
        self.rng = random.Random(seed)
        self.seq = seq_base
        self.unexpected = []

    def run(self):
        conn = None
        try:
            while not self.stop.is_set():
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                      timeout=REQUEST_TIMEOUT)
                key = self.rng.choice(self.keys)
                self.seq += 1
                if self.rng.random() < 0.2:
                    value, method, body, ok = ABSENT, "DELETE", None, 204
                else:
                    value = make_value(key, self.seq, self.rng)
                    method, body, ok = "PUT", value, 201
                self.model.begin(key, value)
                conn.request(method, "/blobs/" + h.quote_key(key), body=body)
                resp = conn.getresponse()
                resp.read()
                if resp.status == ok:
                    self.model.ack(key, value)
                elif method == "DELETE" and resp.status == 404:
                    self.model.ack(key, ABSENT)  # it was already absent
                elif resp.status not in (500, 503, 507):
                    self.unexpected.append("%s %s -> %d" % (method, key, resp.status))
                if resp.will_close:
                    conn.close()
                    conn = None
        except (OSError, http.client.HTTPException):
            pass  # the server was killed: the request in flight is unknown
        finally:
            if conn is not None:
                conn.close()


class CrashLoop:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.seed = seed
        self.tmp = tempfile.mkdtemp(prefix="kv-crash-")
        self.data_dir = os.path.join(self.tmp, "data")
        self.keys = [["c%d/k%03d" % (c, i) for i in range(KEYS_PER_CLIENT)]
                     for c in range(CLIENTS)]
        self.model = Model([k for ks in self.keys for k in ks])
        self.cycles = self.checked = self.compactions = 0
        self.failures = []
        self.seq = 0

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start_server(self):
        return h.Server(env=ENV, data_dir=self.data_dir).start()

    def fail(self, msg):
        self.failures.append("cycle %d (seed %d): %s" % (self.cycles, self.seed, msg))

    def cycle(self):
        server = self.start_server()
        try:
            self.verify(server)
            stop = threading.Event()
            clients = []
            for c in range(CLIENTS):
                self.seq += 1000000
                clients.append(Client(server.port, self.keys[c], self.model, stop,
                                      self.rng.getrandbits(32), self.seq))
            for t in clients:
                t.start()
            # Bounded wait: let the load run, then kill at a random moment.
            time.sleep(self.rng.uniform(LOAD_MIN, LOAD_MAX))
            self.compactions += self.read_compactions(server)
            server.proc.kill()
            stop.set()
            server.wait()
            for t in clients:
                t.join(REQUEST_TIMEOUT)
                if t.is_alive():
                    self.fail("a client did not finish after the kill")
                for u in t.unexpected:
                    self.fail("unexpected status: " + u)
        finally:
            server.cleanup()
        self.cycles += 1

    def read_compactions(self, server):
        try:
            m = server.request("GET", "/metrics", timeout=REQUEST_TIMEOUT).json()
        except (OSError, http.client.HTTPException, ValueError):
            return 0
        for name in ("compactions", "compactions_total"):
            if isinstance(m.get(name), int):
                return m[name]
        engine = m.get("engine") if isinstance(m.get("engine"), dict) else {}
        return engine.get("compactions", 0) if isinstance(engine.get("compactions"), int) else 0

    def verify(self, server):
        """Checks every key against the model, then that a new write is
        accepted; resets the model to what was observed."""
        conn = server.connection(REQUEST_TIMEOUT)
        try:
            for key, allowed in self.model.allowed.items():
                r = server.request("GET", "/blobs/" + h.quote_key(key), conn=conn)
                if r.status == 200:
                    got = r.body
                    if not value_is_intact(key, got):
                        self.fail("%s: damaged value %r" % (key, got[:80]))
                elif r.status == 404:
                    got = ABSENT
                else:
                    self.fail("%s: GET gave %d" % (key, r.status))
                    continue
                self.checked += 1
                if got not in allowed:
                    want = sorted(("absent" if v is None else v[:40].decode("latin-1"))
                                  for v in allowed)
                    have = "absent" if got is None else got[:40].decode("latin-1")
                    self.fail("%s: read %s, allowed %s" % (key, have, want))
                self.model.allowed[key] = {got}
            probe = b"probe-%d" % self.cycles
            r = server.request("PUT", "/blobs/probe", probe, conn=conn)
            if r.status != 201:
                self.fail("the store refused a new write: %d" % r.status)
            elif server.request("GET", "/blobs/probe", conn=conn).body != probe:
                self.fail("the probe write does not read back")
        finally:
            conn.close()

    def final_check(self):
        server = self.start_server()
        try:
            self.verify(server)
            h.stop_and_check(unittest.TestCase(), server)
        finally:
            server.cleanup()


def seed_from_env():
    return int(os.environ.get("CRASH_SEED") or random.SystemRandom().getrandbits(31))


class CrashLoopTest(unittest.TestCase):
    def test_kill_9_under_load_loses_no_acknowledged_operation(self):
        cycles = int(os.environ.get("CRASH_CYCLES", "20"))
        loop = CrashLoop(seed_from_env())
        try:
            for _ in range(cycles):
                loop.cycle()
                self.assertEqual(loop.failures, [], "\n".join(loop.failures[:20]))
            loop.final_check()
            self.assertEqual(loop.failures, [], "\n".join(loop.failures[:20]))
            self.assertGreater(loop.model.acked, 0, "no operation was acknowledged")
        finally:
            loop.cleanup()
        print("crash loop: seed %d, %d cycles, %d acknowledged operations, %d key checks, "
              "%d compactions seen" % (loop.seed, loop.cycles, loop.model.acked, loop.checked,
                                       loop.compactions), file=sys.stderr)


def soak(secs):
    loop = CrashLoop(seed_from_env())
    deadline = time.monotonic() + secs
    reported = 0
    try:
        while time.monotonic() < deadline:
            loop.cycle()
            for f in loop.failures[reported:]:
                print("FAILURE " + f, flush=True)
            reported = len(loop.failures)
            if loop.cycles % 10 == 0:
                print("soak: %d cycles, %d acknowledged operations, %d key checks, %d failures"
                      % (loop.cycles, loop.model.acked, loop.checked, len(loop.failures)),
                      flush=True)
        loop.final_check()
        for f in loop.failures[reported:]:
            print("FAILURE " + f, flush=True)
    finally:
        loop.cleanup()
    print("soak done: seed %d, %d cycles, %d acknowledged operations, %d key checks, "
          "%d compactions seen, %d failures" % (loop.seed, loop.cycles, loop.model.acked,
                                                loop.checked, loop.compactions,
                                                len(loop.failures)))
    return 1 if loop.failures else 0


if __name__ == "__main__":
    if os.environ.get("SOAK_SECS"):
        sys.exit(soak(float(os.environ["SOAK_SECS"])))
    unittest.main()
