#!/usr/bin/env python3
"""The Redis protocol's conditional and atomic commands, driven by real
clients (redis-py, redis-cli): SET with NX, XX and GET, SETNX, GETSET,
GETDEL, INCR/INCRBY/DECR/DECRBY, APPEND, MSET, MSETNX, RENAME, and
MULTI/EXEC/DISCARD with WATCH/UNWATCH. Their replies and errors are compared
with a real Redis 7 run side by side (when redis-server is installed); INCR
from many connections at once sums exactly; a WATCHed key changed from
another connection makes EXEC answer a null array and write nothing."""

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import redis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import resp_client as rc  # noqa: E402
from server_harness import ServerTestCase, free_port  # noqa: E402

TIMEOUT = 60

# Each script runs on an empty keyspace, one command after another on one
# connection, against volume-server and against Redis; every reply (errors
# by their text) must be the same.
SCRIPTS = {
    "set_options": [
        ("SET", "a", "1", "NX"), ("SET", "a", "2", "NX"), ("GET", "a"),
        ("SET", "b", "1", "XX"), ("GET", "b"), ("SET", "a", "3", "XX"), ("GET", "a"),
        ("SET", "a", "4", "GET"), ("SET", "c", "5", "GET"), ("GET", "c"),
        ("SET", "a", "6", "NX", "GET"), ("SET", "d", "7", "NX", "GET"), ("GET", "d"),
        ("SET", "e", "8", "XX", "GET"), ("SET", "d", "9", "XX", "GET"), ("GET", "d"),
        ("SET", "a", "1", "NX", "XX"), ("SET", "a", "1", "XX", "NX"), ("SET", "a", "1", "BOGUS"),
        ("SET", "a", "1", "GET", "GET"), ("SET", "a", "x", "KEEPTTL", "GET"),
    ],
    "setnx_getset_getdel": [
        ("SETNX", "k", "1"), ("SETNX", "k", "2"), ("GET", "k"), ("GETSET", "k", "3"),
        ("GETSET", "new", "4"), ("GET", "new"), ("GETDEL", "k"), ("GETDEL", "k"),
        ("EXISTS", "k"), ("SETNX", "k"), ("GETSET", "k"), ("GETDEL",),
    ],
    "counters": [
        ("INCR", "n"), ("INCR", "n"), ("INCRBY", "n", "40"), ("DECR", "n"),
        ("DECRBY", "n", "-10"), ("DECRBY", "n", "51"), ("GET", "n"), ("INCRBY", "m", "-7"),
        ("SET", "s", "abc"), ("INCR", "s"), ("SET", "s", " 1"), ("INCR", "s"),
        ("SET", "s", "01"), ("INCR", "s"), ("SET", "s", "1.5"), ("INCRBY", "s", "1"),
        ("INCRBY", "n", "1.5"), ("INCRBY", "n", "x"), ("INCRBY", "n", ""),
        ("SET", "big", "9223372036854775807"), ("INCR", "big"), ("GET", "big"),
        ("SET", "small", "-9223372036854775808"), ("DECR", "small"),
        ("DECRBY", "n", "-9223372036854775808"), ("INCRBY", "n", "9223372036854775808"),
        ("SET", "z", "-0"), ("INCR", "z"), ("SET", "z", "-5"), ("INCR", "z"),
        ("INCR",), ("INCRBY", "n"),
    ],
    "append": [
        ("APPEND", "a", "Hello"), ("APPEND", "a", " World"), ("GET", "a"),
        ("APPEND", "a", ""), ("APPEND", "e", ""), ("EXISTS", "e"), ("STRLEN", "a"),
        ("APPEND", "a"),
    ],
    "mset_msetnx": [
        ("MSET", "a", "1", "b", "2"), ("MGET", "a", "b", "c"), ("MSETNX", "c", "3", "a", "9"),
        ("MGET", "a", "c"), ("MSETNX", "c", "3", "d", "4"), ("MGET", "c", "d"),
        ("MSET", "a"), ("MSET", "a", "1", "b"), ("MSETNX", "x", "1", "y"),
        ("MSET", "r", "1", "r", "2"), ("GET", "r"),
    ],
    "rename": [
        ("SET", "src", "v"), ("RENAME", "src", "dst"), ("EXISTS", "src"), ("GET", "dst"),
        ("RENAME", "src", "dst"), ("RENAME", "dst", "dst"), ("GET", "dst"),
        ("SET", "other", "o"), ("RENAME", "dst", "other"), ("GET", "other"),
        ("EXISTS", "dst"), ("RENAME", "none", "none"), ("RENAME", "a"),
    ],
    "multi_exec": [
        ("MULTI",), ("SET", "t", "1"), ("INCR", "t"), ("GET", "t"), ("APPEND", "t", "x"),
        ("INCR", "t"), ("MGET", "t", "u"), ("DEL", "t", "u"), ("EXISTS", "t"), ("PING",),
        ("ECHO", "e"), ("EXEC",),
        ("MULTI",), ("EXEC",),
        ("EXEC",), ("DISCARD",),
        ("MULTI",), ("SET", "d", "1"), ("DISCARD",), ("EXISTS", "d"),
        ("MULTI",), ("MULTI",), ("WATCH", "x"), ("SET", "w", "1"), ("EXEC",), ("GET", "w"),
        ("MULTI",), ("SET", "q", "1"), ("NOSUCHCOMMAND",), ("EXEC",), ("EXISTS", "q"),
        ("MULTI",), ("SET", "q", "1"), ("GET",), ("EXEC",), ("EXISTS", "q"),
        ("MULTI",), ("SET", "q", "1", "BOGUS"), ("SET", "q", "2"), ("INCR", "q"),
        ("RENAME", "nokey", "q2"), ("EXEC",), ("GET", "q"),
        ("MULTI",), ("SETNX", "q", "9"), ("GETSET", "q", "10"), ("GETDEL", "q"), ("SET", "q", "7"),
        ("MSETNX", "q", "1", "q3", "3"), ("MSET", "q4", "4"), ("RENAME", "q4", "q5"),
        ("SET", "q", "8", "GET"), ("UNWATCH",), ("EXEC",), ("MGET", "q", "q3", "q4", "q5"),
    ],
    # TTLs far away, so that both servers round them to the same second
    "expiry": [
        ("SET", "a", "1", "EX", "1000"), ("RENAME", "a", "b"), ("TTL", "b"), ("TTL", "a"),
        ("SET", "c", "2"), ("RENAME", "b", "c"), ("TTL", "c"), ("SET", "d", "3"),
        ("SET", "e", "4", "EX", "1000"), ("RENAME", "d", "e"), ("TTL", "e"),
        ("GETEX", "e", "EX", "500"), ("TTL", "e"), ("GETEX", "e", "PERSIST"), ("TTL", "e"),
        ("GETEX", "e"), ("GETEX", "none", "EX", "5"), ("GETEX", "e", "EX"),
        ("GETEX", "e", "KEEPTTL"), ("GETRANGE", "e", "0", "-1"), ("GETRANGE", "e", "x", "1"),
        ("MULTI",), ("EXPIRE", "c", "1000"), ("TTL", "c"), ("EXPIRE", "c", "500", "GT"),
        ("EXPIRE", "c", "500", "LT"), ("TTL", "c"), ("PERSIST", "c"), ("PERSIST", "c"),
        ("TTL", "c"), ("EXPIRE", "c", "100", "XX"), ("EXPIRE", "c", "100", "NX"),
        ("EXPIRE", "c", "200", "NX"), ("TTL", "c"), ("SETEX", "s", "1000", "x"), ("TTL", "s"),
        ("PSETEX", "p", "1000000", "y"), ("TTL", "p"), ("GETEX", "s", "PERSIST"), ("TTL", "s"),
        ("GETEX", "c", "EX", "2000"), ("TTL", "c"), ("RENAME", "c", "r"), ("TTL", "r"),
        ("TTL", "c"), ("GETRANGE", "r", "0", "0"), ("SUBSTR", "r", "-1", "-1"),
        ("EXPIREAT", "r", "1"), ("EXISTS", "r"), ("PTTL", "r"), ("EXPIRE", "nokey", "10"),
        ("TTL", "nokey"), ("EXPIRE", "s", "x"), ("EXPIRE", "s", "10", "BOGUS"),
        ("EXPIRE", "s", "10", "NX", "XX"), ("SETEX", "s", "0", "v"), ("PSETEX", "s", "x", "v"),
        ("GETEX", "s", "EX"), ("INCR", "p"), ("EXEC",),
        ("TTL", "c"), ("TTL", "s"), ("TTL", "p"), ("EXISTS", "r"), ("GET", "p"),
        ("GETEX", "nokey", "EX", "0"), ("GETEX", "nokey", "EX", "x"), ("GETEX", "p", "EX", "0"),
        ("GETEX", "nokey", "EX"), ("PEXPIRE", "p", "-9223372036854775808"), ("EXISTS", "p"),
    ],
    # A later command of the transaction that keeps the expiry (INCR,
    # APPEND, SET KEEPTTL) keeps the one the transaction gave the key.
    "expiry_kept_in_multi": [
        ("SET", "k", "1"), ("MULTI",), ("EXPIRE", "k", "1000"), ("INCR", "k"), ("TTL", "k"),
        ("EXEC",), ("TTL", "k"),
        ("MULTI",), ("SETEX", "s", "1000", "1"), ("INCR", "s"), ("APPEND", "s", "x"),
        ("TTL", "s"), ("EXEC",), ("TTL", "s"),
        ("SET", "p", "1", "EX", "1000"), ("MULTI",), ("PERSIST", "p"), ("INCR", "p"),
        ("TTL", "p"), ("EXEC",), ("TTL", "p"),
        ("SET", "g", "5", "EX", "1000"), ("MULTI",), ("EXPIRE", "g", "-1"), ("INCR", "g"),
        ("TTL", "g"), ("EXEC",), ("TTL", "g"), ("GET", "g"),
        ("SET", "a", "1", "EX", "1000"), ("MULTI",), ("RENAME", "a", "b"), ("INCR", "b"),
        ("TTL", "b"), ("EXEC",), ("TTL", "b"),
        ("SET", "d", "1", "EX", "1000"), ("MULTI",), ("DEL", "d"), ("SET", "d", "v", "KEEPTTL"),
        ("TTL", "d"), ("EXEC",), ("TTL", "d"),
        ("MULTI",), ("SET", "w", "w", "KEEPTTL"), ("EXPIRE", "w", "1000"),
        ("SET", "w", "x", "KEEPTTL"), ("TTL", "w"), ("GETSET", "w", "y"), ("TTL", "w"),
        ("EXEC",), ("TTL", "w"),
    ],
    "watch": [
        ("SET", "w", "1"), ("WATCH", "w", "absent"), ("MULTI",), ("INCR", "w"), ("EXEC",),
        ("GET", "w"), ("WATCH", "w"), ("UNWATCH",), ("MULTI",), ("INCR", "w"), ("EXEC",),
        ("WATCH", "w"), ("MULTI",), ("DISCARD",), ("MULTI",), ("INCR", "w"), ("EXEC",),
    ],
}


def normalize(reply):
    if isinstance(reply, rc.Error):
        return ("error", str(reply))
    if isinstance(reply, list):
        return [normalize(r) for r in reply]
    return reply


class RedisServer:
    """A real Redis on a free port of 127.0.0.1, in a temporary directory."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="redis-ref-")
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", self.dir,
             "--save", "", "--appendonly", "no"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + TIMEOUT
        while True:  # bounded wait until it answers
            try:
                with rc.Conn(self.port, timeout=2) as c:
                    if c.call("PING") == "PONG":
                        return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("redis-server did not start")
            time.sleep(0.01)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@unittest.skipIf(shutil.which("redis-server") is None, "redis-server is not installed")
class SameRepliesAsRedis(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.redis = RedisServer()

    @classmethod
    def tearDownClass(cls):
        cls.redis.stop()
        super().tearDownClass()

    def run_script(self, name):
        got = {}
        for who, port in (("volume-server", self.server.resp_port), ("redis", self.redis.port)):
            with rc.Conn(port) as c:
                c.call("FLUSHALL")
                got[who] = [normalize(c.pipeline([cmd])[0]) for cmd in SCRIPTS[name]]
        for cmd, mine, theirs in zip(SCRIPTS[name], got["volume-server"], got["redis"]):
            self.assertEqual(mine, theirs, "%s: %r" % (name, cmd))

    def test_set_options(self):
        self.run_script("set_options")

    def test_setnx_getset_getdel(self):
        self.run_script("setnx_getset_getdel")

    def test_counters(self):
        self.run_script("counters")

    def test_append(self):
        self.run_script("append")

    def test_mset_msetnx(self):
        self.run_script("mset_msetnx")

    def test_rename(self):
        self.run_script("rename")

    def test_expiry(self):
        self.run_script("expiry")

    def test_expiry_kept_in_multi(self):
        self.run_script("expiry_kept_in_multi")

    def test_multi_exec(self):
        self.run_script("multi_exec")

    def test_watch(self):
        self.run_script("watch")


class RedisPy(ServerTestCase):
    def client(self):
        r = redis.Redis(host="127.0.0.1", port=self.server.resp_port, socket_timeout=TIMEOUT)
        self.addCleanup(r.close)
        return r

    def test_set_nx_xx_get(self):
        r = self.client()
        self.assertTrue(r.set("py:a", "1", nx=True))
        self.assertIsNone(r.set("py:a", "2", nx=True))
        self.assertIsNone(r.set("py:none", "2", xx=True))
        self.assertFalse(r.exists("py:none"))
        self.assertEqual(r.set("py:a", "3", get=True), b"1")
        self.assertTrue(r.set("py:a", "4", xx=True))
        self.assertEqual(r.get("py:a"), b"4")

    def test_counters_and_their_errors(self):
        r = self.client()
        self.assertEqual(r.incr("py:n"), 1)
        self.assertEqual(r.incrby("py:n", 10), 11)
        self.assertEqual(r.decr("py:n"), 10)
        self.assertEqual(r.decrby("py:n", 20), -10)
        r.set("py:s", "text")
        with self.assertRaisesRegex(redis.ResponseError, "value is not an integer or out of range"):
            r.incr("py:s")
        r.set("py:max", str(2**63 - 1))
        with self.assertRaisesRegex(redis.ResponseError, "increment or decrement would overflow"):
            r.incr("py:max")
        self.assertEqual(r.get("py:max"), str(2**63 - 1).encode())

    def test_getset_getdel_append_rename(self):
        r = self.client()
        self.assertIsNone(r.getset("py:g", "1"))
        self.assertEqual(r.getset("py:g", "2"), b"1")
        self.assertEqual(r.getdel("py:g"), b"2")
        self.assertIsNone(r.getdel("py:g"))
        self.assertEqual(r.append("py:ap", "ab"), 2)
        self.assertEqual(r.append("py:ap", "cd"), 4)
        self.assertEqual(r.get("py:ap"), b"abcd")
        self.assertTrue(r.rename("py:ap", "py:ap2"))
        self.assertEqual(r.get("py:ap2"), b"abcd")
        self.assertFalse(r.exists("py:ap"))
        with self.assertRaisesRegex(redis.ResponseError, "no such key"):
            r.rename("py:ap", "py:ap3")

    def test_mset_and_msetnx_are_all_or_nothing(self):
        r = self.client()
        self.assertTrue(r.mset({"py:m1": "1", "py:m2": "2"}))
        self.assertFalse(r.msetnx({"py:m3": "3", "py:m1": "x"}))
        self.assertEqual(r.mget("py:m1", "py:m3"), [b"1", None])
        self.assertTrue(r.msetnx({"py:m3": "3", "py:m4": "4"}))
        self.assertEqual(r.mget("py:m3", "py:m4"), [b"3", b"4"])

    def test_a_transaction_reads_its_own_writes(self):
        r = self.client()
        with r.pipeline(transaction=True) as p:
            p.set("py:t", "5")
            p.incr("py:t")
            p.get("py:t")
            p.append("py:t", "0")
            p.getdel("py:t")
            p.exists("py:t")
            self.assertEqual(p.execute(), [True, 6, b"6", 2, b"60", 0])

    def test_incr_from_many_connections_sums_exactly(self):
        threads, per, errors = 8, 150, []
        self.client().delete("py:counter")

        def worker():
            try:
                c = redis.Redis(port=self.server.resp_port, socket_timeout=TIMEOUT)
                for i in range(per):
                    if i % 3 == 0:
                        c.incrby("py:counter", 2)
                        c.decr("py:counter")
                    else:
                        c.incr("py:counter")
                c.close()
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        ts = [threading.Thread(target=worker) for _ in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(self.client().get("py:counter"), str(threads * per).encode())

    def test_transactions_from_many_connections_are_serializable(self):
        # Each transaction moves one unit from a to b: the sum stays 0 and
        # each side moves exactly as often as transactions were acknowledged.
        r = self.client()
        r.mset({"py:a": "0", "py:b": "0"})
        threads, per, errors = 6, 60, []

        def worker():
            try:
                c = redis.Redis(port=self.server.resp_port, socket_timeout=TIMEOUT)
                for _ in range(per):
                    with c.pipeline(transaction=True) as p:
                        p.decr("py:a")
                        p.incr("py:b")
                        a, b = p.execute()
                        if a + b != 0:
                            errors.append((a, b))
                c.close()
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        ts = [threading.Thread(target=worker) for _ in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(r.mget("py:a", "py:b"),
                         [str(-threads * per).encode(), str(threads * per).encode()])

    def test_a_watched_key_changed_by_another_connection_makes_exec_null(self):
        r, other = self.client(), self.client()
        r.set("py:w", "1")
        with r.pipeline(transaction=True) as p:
            p.watch("py:w", "py:w-absent")
            self.assertEqual(p.get("py:w"), b"1")  # immediate mode after WATCH
            other.set("py:w", "2")
            p.multi()
            p.set("py:w", "from-tx")
            p.set("py:w-other", "from-tx")
            with self.assertRaises(redis.WatchError):
                p.execute()
        self.assertEqual(r.get("py:w"), b"2")
        self.assertFalse(r.exists("py:w-other"))
        # A watched key created meanwhile counts as a change too.
        with r.pipeline(transaction=True) as p:
            p.watch("py:w-absent")
            other.set("py:w-absent", "x")
            p.multi()
            p.set("py:w-other", "from-tx")
            with self.assertRaises(redis.WatchError):
                p.execute()
        self.assertFalse(r.exists("py:w-other"))
        # Unchanged: EXEC goes through.
        with r.pipeline(transaction=True) as p:
            p.watch("py:w")
            p.multi()
            p.incr("py:w")
            self.assertEqual(p.execute(), [3])

    def test_watch_retry_loop_as_clients_write_it(self):
        # The usual optimistic loop of redis-py, from many connections: every
        # transaction that went through counted exactly once.
        self.client().set("py:opt", "0")
        threads, per, errors = 6, 40, []

        def worker():
            try:
                c = redis.Redis(port=self.server.resp_port, socket_timeout=TIMEOUT)

                def bump(p):
                    v = int(p.get("py:opt"))
                    p.multi()
                    p.set("py:opt", str(v + 1))

                for _ in range(per):
                    c.transaction(bump, "py:opt")
                c.close()
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        ts = [threading.Thread(target=worker) for _ in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(self.client().get("py:opt"), str(threads * per).encode())


class SameRepliesAsRedisWithoutSync(SameRepliesAsRedis):
    """The same with SYNC_MODE=none, where a lone write runs on the event
    loop and a pipelined one through the engine's queue."""
    ENV = {"SYNC_MODE": "none"}


class RedisPyWithoutSync(RedisPy):
    ENV = {"SYNC_MODE": "none"}


class RedisCli(ServerTestCase):
    def cli(self, *args, stdin=None):
        out = subprocess.run(["redis-cli", "-p", str(self.server.resp_port)] + list(args),
                             input=stdin, capture_output=True, timeout=TIMEOUT)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout.decode()

    def test_a_transaction_typed_into_redis_cli(self):
        out = self.cli(stdin=b"MULTI\nSET cli:t 1\nINCRBY cli:t 41\nGET cli:t\nEXEC\n")
        self.assertEqual(out.split("\n")[:8], ["OK", "QUEUED", "QUEUED", "QUEUED",
                                               "OK", "42", "42", ""])
        self.assertEqual(self.cli("getdel", "cli:t"), "42\n")
        self.assertEqual(self.cli("--no-raw", "getdel", "cli:t"), "(nil)\n")


if __name__ == "__main__":
    unittest.main(verbosity=2)
