#!/usr/bin/env python3
"""volume-server's Redis protocol driven by real clients, unchanged: redis-py
(Debian's python3-redis), redis-cli and redis-benchmark (redis-tools), and
twemproxy (nutcracker) in front of three volumes. Every command of this build
with Redis's replies, SCAN that misses no key while others write, INFO's
fields, CLIENT, COMMAND, CONFIG, and the commands that wait for the disk."""

import os
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import redis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_harness import Server, ServerTestCase, free_port, stop_and_check  # noqa: E402

TIMEOUT = 60


class RedisPy(ServerTestCase):
    def setUp(self):
        self.r = redis.Redis(host="127.0.0.1", port=self.server.resp_port,
                             socket_timeout=TIMEOUT)
        self.addCleanup(self.r.close)

    def test_strings(self):
        r = self.r
        self.assertTrue(r.set("s:a", "1"))
        self.assertEqual(r.get("s:a"), b"1")
        self.assertIsNone(r.get("s:none"))
        self.assertTrue(r.set("s:a", "22", keepttl=True))
        self.assertEqual(r.mget("s:a", "s:none", "s:a"), [b"22", None, b"22"])
        self.assertEqual(r.strlen("s:a"), 2)
        self.assertEqual(r.strlen("s:none"), 0)
        self.assertTrue(r.set("s:r", "Hello World"))
        self.assertEqual(r.getrange("s:r", 0, 4), b"Hello")
        self.assertEqual(r.getrange("s:r", -5, -1), b"World")
        self.assertEqual(r.getrange("s:r", 6, 100), b"World")
        self.assertEqual(r.getrange("s:r", 5, 2), b"")
        self.assertEqual(r.getrange("s:none", 0, -1), b"")
        self.assertEqual(r.getex("s:r"), b"Hello World")
        self.assertEqual(r.getex("s:r", persist=True), b"Hello World")

    def test_keys_commands(self):
        r = self.r
        r.set("k:1", "a")
        r.set("k:2", "b")
        self.assertEqual(r.exists("k:1", "k:2", "k:none", "k:1"), 3)
        self.assertEqual(r.type("k:1"), b"string")
        self.assertEqual(r.type("k:none"), b"none")
        self.assertEqual(r.ttl("k:1"), -1)
        self.assertEqual(r.pttl("k:none"), -2)
        self.assertFalse(r.persist("k:1"))
        self.assertEqual(r.delete("k:1", "k:none"), 1)
        self.assertEqual(r.unlink("k:2"), 1)
        self.assertEqual(r.exists("k:1", "k:2"), 0)
        # One batch of deletes: a key named twice counts once, as in Redis.
        r.set("k:3", "c")
        r.set("k:4", "d")
        self.assertEqual(r.delete("k:3", "k:3", "k:none", "k:4"), 2)
        self.assertEqual(r.exists("k:3", "k:4"), 0)

    def test_keys_randomkey_dbsize_and_flushdb(self):
        server = Server().start()
        self.addCleanup(stop_and_check, self, server)
        r = redis.Redis(port=server.resp_port, socket_timeout=TIMEOUT)
        self.addCleanup(r.close)
        self.assertIsNone(r.randomkey())
        names = ["user:1", "user:2", "user:10", "item:1", "us"]
        for n in names:
            r.set(n, n)
        self.assertEqual(r.dbsize(), 5)
        self.assertEqual(sorted(r.keys("user:*")), [b"user:1", b"user:10", b"user:2"])
        self.assertEqual(sorted(r.keys("user:?")), [b"user:1", b"user:2"])
        self.assertEqual(sorted(r.keys("*[mr]:1")), [b"item:1", b"user:1"])
        self.assertEqual(len(r.keys("*")), 5)
        self.assertIn(r.randomkey().decode(), names)
        self.assertTrue(r.flushdb())
        self.assertEqual(r.dbsize(), 0)
        self.assertEqual(r.keys("*"), [])

    def test_scan_visits_every_key_once_in_pages(self):
        r = self.r
        keys = {("scan:%04d" % i).encode() for i in range(1000)}
        with r.pipeline(transaction=False) as p:
            for k in keys:
                p.set(k, "v")
            p.execute()
        seen = list(r.scan_iter(match="scan:*", count=37))
        self.assertEqual(len(seen), len(keys))
        self.assertEqual(set(seen), keys)
        cursor, page = r.scan(0, match="scan:*", count=10)
        self.assertNotEqual(cursor, 0)
        self.assertLessEqual(len(page), 10)
        self.assertEqual(list(r.scan_iter(match="scan:*", _type="hash")), [])
        with self.assertRaisesRegex(redis.ResponseError, "invalid cursor"):
            r.scan(12345)

    def test_scan_misses_no_key_present_for_the_whole_scan(self):
        r = self.r
        stable = {("stay:%04d" % i).encode() for i in range(600)}
        with r.pipeline(transaction=False) as p:
            for k in stable:
                p.set(k, "v")
            p.execute()
        stop = threading.Event()

        def churn():
            w = redis.Redis(port=self.server.resp_port, socket_timeout=TIMEOUT)
            i = 0
            while not stop.is_set() and i < 20000:
                # Keys that sort before, between and after the stable ones.
                w.set("sta:%d" % i, "x")
                w.set("stay:%04d.%d" % (i % 600, i), "x")
                w.delete("stay:%04d.%d" % ((i - 1) % 600, i - 1))
                w.set("stz:%d" % i, "x")
                i += 1
            w.close()

        t = threading.Thread(target=churn)
        t.start()
        try:
            seen = set(r.scan_iter(match="stay:*", count=25))
        finally:
            stop.set()
            t.join()
        self.assertEqual(stable - seen, set())

    def test_server_commands(self):
        r = self.r
        self.assertTrue(r.ping())
        self.assertEqual(r.echo("hi"), b"hi")
        secs, usecs = r.time()
        self.assertLess(abs(secs - time.time()), 60)
        self.assertTrue(r.save())
        self.assertGreater(r.lastsave().timestamp(), 0)
        self.assertTrue(r.bgsave())  # "+Background saving started"
        cfg = r.config_get("maxclients")
        self.assertEqual(cfg, {"maxclients": "4096"})
        self.assertEqual(r.config_get("appendfsync"), {"appendfsync": "always"})
        self.assertIn("databases", r.config_get("*"))
        with self.assertRaisesRegex(redis.ResponseError, "not supported"):
            r.config_set("maxclients", "1")
        self.assertGreater(r.command_count(), 30)
        table = r.command()
        self.assertEqual(table["get"]["arity"], 2)
        self.assertIn("readonly", table["get"]["flags"])
        self.assertEqual(table["mget"]["last_key_pos"], -1)
        self.assertIn("expire", table)

    def test_client_commands(self):
        r = redis.Redis(port=self.server.resp_port, socket_timeout=TIMEOUT,
                        single_connection_client=True)
        self.addCleanup(r.close)
        self.assertTrue(r.client_setname("tester"))
        self.assertEqual(r.client_getname(), "tester")
        my_id = r.client_id()
        self.assertGreater(my_id, 0)
        mine = [c for c in r.client_list() if c["id"] == str(my_id)]
        self.assertEqual(len(mine), 1)
        self.assertEqual(mine[0]["name"], "tester")
        self.assertEqual(mine[0]["cmd"], "client")
        self.assertTrue(r.execute_command("CLIENT", "SETINFO", "LIB-NAME", "redis-py"))
        with self.assertRaises(redis.ResponseError):
            r.client_setname("has space")

    def test_client_list_shows_commands_queued_inside_multi(self):
        other = redis.Redis(port=self.server.resp_port, socket_timeout=TIMEOUT,
                            single_connection_client=True)
        self.addCleanup(other.close)
        other_id = other.client_id()

        def multi_field():
            return [c for c in self.r.client_list() if c["id"] == str(other_id)][0]["multi"]

        self.assertEqual(multi_field(), "-1")
        self.assertEqual(other.execute_command("MULTI"), b"OK")
        self.assertEqual(multi_field(), "0")
        other.execute_command("SET", "multi:a", "1")
        other.execute_command("SET", "multi:b", "2")
        self.assertEqual(multi_field(), "2")
        self.assertEqual(other.execute_command("EXEC"), [b"OK", b"OK"])
        self.assertEqual(multi_field(), "-1")

    def test_info_has_the_fields_tools_read(self):
        self.r.set("info:k", "v")
        info = self.r.info()
        self.assertEqual(info["redis_version"], "7.0.0")
        self.assertEqual(info["role"], "master")
        self.assertGreaterEqual(info["connected_clients"], 1)
        self.assertGreaterEqual(info["db0"]["keys"], 1)
        self.assertEqual(info["tcp_port"], self.server.resp_port)
        self.assertEqual(info["aof_enabled"], 1)
        for section in ("server", "clients", "persistence", "stats", "replication", "keyspace"):
            self.assertTrue(self.r.info(section), section)
        stats = self.r.info("commandstats")
        self.assertGreaterEqual(stats["cmdstat_set"]["calls"], 1)
        lat = self.r.info("latencystats")
        self.assertIn("p99", lat["latency_percentiles_usec_set"])

    def test_errors_are_response_errors(self):
        with self.assertRaisesRegex(redis.ResponseError, "unknown command"):
            self.r.execute_command("NOSUCH")
        with self.assertRaisesRegex(redis.ResponseError, "wrong number of arguments"):
            self.r.execute_command("GET")
        with self.assertRaisesRegex(redis.ResponseError, "syntax error"):
            self.r.execute_command("SET", "a", "b", "BOGUS")

    def test_a_pipeline_of_writes_and_reads_keeps_its_order(self):
        with self.r.pipeline(transaction=False) as p:
            for i in range(300):
                p.set("order", i)
                p.get("order")
            out = p.execute()
        for i in range(300):
            self.assertEqual(out[2 * i], True)
            self.assertEqual(out[2 * i + 1], str(i).encode())

    def test_many_connections_write_at_once(self):
        errors = []

        def writer(n):
            try:
                c = redis.Redis(port=self.server.resp_port, socket_timeout=TIMEOUT)
                for i in range(50):
                    c.set("many:%d:%d" % (n, i), "%d" % i)
                c.close()
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(20)]
        for t in threads:
            t.start()
        # Meanwhile CLIENT LIST and INFO read every loop's connections and
        # counters from another thread.
        listed = 0
        while any(t.is_alive() for t in threads):
            listed = max(listed, len(self.r.client_list()))
            self.assertIn("connected_clients", self.r.info("clients"))
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertGreaterEqual(listed, 1)
        self.assertEqual(self.r.mget(["many:%d:49" % n for n in range(20)]), [b"49"] * 20)


class RedisTools(ServerTestCase):
    def cli(self, *args, stdin=None):
        p = subprocess.run(["redis-cli", "-p", str(self.server.resp_port), *args],
                           input=stdin, capture_output=True, timeout=TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout.decode()

    def test_redis_cli_one_shot_commands(self):
        self.assertEqual(self.cli("set", "cli:k", "hello world"), "OK\n")
        self.assertEqual(self.cli("get", "cli:k"), "hello world\n")
        self.assertEqual(self.cli("--no-raw", "get", "cli:none"), "(nil)\n")
        self.assertEqual(self.cli("--no-raw", "exists", "cli:k"), "(integer) 1\n")
        self.assertIn("ERR unknown command", self.cli("nosuch"))
        self.assertIn("redis_version:7.0.0", self.cli("info", "server"))

    def test_redis_cli_scan_and_pipe(self):
        data = "".join("SET pipe:%d %d\r\n" % (i, i) for i in range(500))
        out = self.cli("--pipe", stdin=data.encode())
        self.assertIn("errors: 0, replies: 500", out)
        keys = self.cli("--scan", "--pattern", "pipe:*").split()
        self.assertEqual(len(keys), 500)
        self.assertEqual(len(set(keys)), 500)

    def test_redis_cli_reads_commands_from_stdin(self):
        out = self.cli(stdin=b"set stdin:k v\nget stdin:k\nping\n")
        self.assertEqual(out, "OK\nv\nPONG\n")

    def test_redis_benchmark_runs_against_it(self):
        p = subprocess.run(["redis-benchmark", "-p", str(self.server.resp_port), "-t",
                            "set,get,mget,ping", "-n", "2000", "-c", "8", "-P", "4", "-r", "1000",
                            "-q", "--csv"], capture_output=True, timeout=TIMEOUT * 2)
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = [line for line in p.stdout.decode().splitlines() if line.startswith('"')]
        names = {row.split(",")[0].strip('"') for row in rows}
        for want in ("SET", "GET", "PING_INLINE", "PING_MBULK"):
            self.assertIn(want, names, p.stdout)


class Twemproxy(unittest.TestCase):
    """twemproxy (nutcracker, ketama) in front of three volumes' RESP ports."""

    def test_keys_spread_over_three_volumes_and_read_back_through_the_proxy(self):
        servers = []
        for i in range(3):
            s = Server(env={"VOLUME_ID": "vol-%d" % (i + 1)}).start()
            self.addCleanup(stop_and_check, self, s)
            servers.append(s)
        tmp = tempfile.mkdtemp(prefix="nutcracker-")
        port = free_port()
        conf = os.path.join(tmp, "nutcracker.yml")
        with open(conf, "w") as f:
            f.write("kv:\n  listen: 127.0.0.1:%d\n  hash: fnv1a_64\n  distribution: ketama\n"
                    "  redis: true\n  auto_eject_hosts: false\n  timeout: 10000\n  servers:\n"
                    % port)
            for i, s in enumerate(servers):
                f.write("    - 127.0.0.1:%d:1 vol-%d\n" % (s.resp_port, i + 1))
        log = open(os.path.join(tmp, "nutcracker.log"), "wb")
        proxy = subprocess.Popen(["nutcracker", "-c", conf, "-s", str(free_port()),
                                  "-o", os.path.join(tmp, "n.log")],
                                 stdout=log, stderr=subprocess.STDOUT)

        def stop_proxy():
            proxy.terminate()
            proxy.wait(timeout=30)
            log.close()

        self.addCleanup(stop_proxy)
        r = redis.Redis(port=port, socket_timeout=TIMEOUT)
        self.addCleanup(r.close)
        deadline = time.monotonic() + TIMEOUT
        while True:  # until the proxy listens (bounded)
            try:
                r.set("probe", "1")
                break
            except redis.ConnectionError:
                self.assertIsNone(proxy.poll(), "nutcracker exited")
                self.assertLess(time.monotonic(), deadline, "nutcracker did not start")
                time.sleep(0.05)
        keys = ["tw:%d" % i for i in range(300)]
        for k in keys:
            self.assertTrue(r.set(k, k.upper()))
        self.assertEqual(r.mget(keys), [k.upper().encode() for k in keys])
        per_volume = []
        for s in servers:
            direct = redis.Redis(port=s.resp_port, socket_timeout=TIMEOUT)
            per_volume.append(len(direct.keys("tw:*")))
            direct.close()
        self.assertEqual(sum(per_volume), 300)
        for n in per_volume:
            self.assertGreater(n, 30, per_volume)  # every volume holds a share
        self.assertEqual(r.delete("tw:1"), 1)
        self.assertIsNone(r.get("tw:1"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
