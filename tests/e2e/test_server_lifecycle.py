"""End-to-end tests of volume-server's life: configuration (environment,
flags, --help, --version, invalid values), start-up failures, logs, and the
orderly stop on SIGTERM/SIGINT that keeps every acknowledged blob."""

import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_harness import BINARY, Server, assert_clean_log, stop_and_check  # noqa: E402

ALL_SETTINGS = ["HOST", "PORT", "VOLUME_ID", "DATA_DIR", "COMPACTION_THRESHOLD",
                "COMPACTION_INTERVAL_SECS", "MAX_REQUEST_SIZE_MB", "SYNC_MODE",
                "SEGMENT_SIZE_MB", "THREADS", "AUTH_TOKEN", "LOG_LEVEL", "MAX_CONNECTIONS",
                "CONNECTION_TIMEOUT_SECS", "MAX_BODY_MEMORY_MB", "SHUTDOWN_GRACE_SECS",
                "COMPRESSION", "RESP_PORT", "RESP_IDLE_TIMEOUT_SECS", "RESP_MAX_ARGS",
                "RESP_OUTPUT_LIMIT_MB", "REPLICA_OF", "MIN_REPLICA_ACKS",
                "REPLICA_ACK_TIMEOUT_MS"]


def run(args=(), env=None, timeout=20):
    """Runs the binary to completion (for cases where it must not start)."""
    full_env = {k: v for k, v in os.environ.items() if k not in ALL_SETTINGS}
    full_env.update({"DATA_DIR": "/nonexistent-should-not-be-created", "PORT": "0",
                     "RESP_PORT": "0"})
    full_env.update(env or {})
    return subprocess.run([BINARY] + list(args), env=full_env, capture_output=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


class Configuration(unittest.TestCase):

    def test_invalid_values_stop_the_start_naming_the_variable(self):
        cases = [("PORT", "abc"), ("PORT", "70000"), ("PORT", "-1"), ("PORT", " 80"),
                 ("PORT", "80x"), ("SYNC_MODE", "sometimes"), ("SYNC_MODE", "ALWAYS"),
                 ("THREADS", "0"), ("THREADS", "100000"), ("MAX_REQUEST_SIZE_MB", "0"),
                 ("MAX_REQUEST_SIZE_MB", "99999999999999999999999"), ("LOG_LEVEL", "loud"),
                 ("VOLUME_ID", "a b"), ("VOLUME_ID", ""), ("VOLUME_ID", "x" * 65),
                 ("SEGMENT_SIZE_MB", "0"), ("SEGMENT_SIZE_MB", "4096"),
                 ("COMPACTION_THRESHOLD", ""), ("COMPACTION_INTERVAL_SECS", "1.5"),
                 ("AUTH_TOKEN", ""), ("AUTH_TOKEN", "has space"), ("HOST", ""),
                 ("MAX_CONNECTIONS", "0"), ("CONNECTION_TIMEOUT_SECS", "0"),
                 ("DATA_DIR", ""), ("MAX_BODY_MEMORY_MB", "0"),
                 ("SHUTDOWN_GRACE_SECS", "3601"), ("SHUTDOWN_GRACE_SECS", "-1"),
                 ("SHUTDOWN_GRACE_SECS", "1s"),
                 ("COMPRESSION", "lz4"), ("COMPRESSION", "ZSTD"),
                 ("RESP_PORT", "on"),
                 ("RESP_PORT", "65536"), ("RESP_PORT", "-1"), ("RESP_PORT", "Off"),
                 ("RESP_IDLE_TIMEOUT_SECS", "0"), ("RESP_MAX_ARGS", "1"),
                 ("RESP_OUTPUT_LIMIT_MB", "0"), ("REPLICA_OF", "localhost"),
                 ("REPLICA_OF", "h:0"), ("REPLICA_OF", "h:65536"),
                 ("REPLICA_OF", "http://h:80"), ("REPLICA_OF", "h :80"),
                 ("MIN_REPLICA_ACKS", "65"), ("MIN_REPLICA_ACKS", "x"),
                 ("REPLICA_ACK_TIMEOUT_MS", "0")]
        for name, value in cases:
            p = run(env={name: value})
            self.assertEqual(p.returncode, 2, (name, value, p.stderr))
            err = p.stderr.decode()
            self.assertIn(name, err, (name, value))
            self.assertNotIn("listening", err)
        self.assertFalse(os.path.exists("/nonexistent-should-not-be-created"))

    def test_body_memory_below_the_request_size_is_refused(self):
        p = run(env={"MAX_REQUEST_SIZE_MB": "10", "MAX_BODY_MEMORY_MB": "5"})
        self.assertEqual(p.returncode, 2)
        self.assertIn("MAX_BODY_MEMORY_MB", p.stderr.decode())
        self.assertIn("MAX_REQUEST_SIZE_MB", p.stderr.decode())

    def test_invalid_flags_name_the_variable(self):
        for args, name in ((["--port=abc"], "PORT"), (["--port", "abc"], "PORT"),
                           (["--sync-mode", "never"], "SYNC_MODE"),
                           (["--threads"], "THREADS")):
            p = run(args)
            self.assertEqual(p.returncode, 2, args)
            self.assertIn(name, p.stderr.decode(), args)
        for args in (["--bogus=1"], ["positional"], ["-p", "1"]):
            p = run(args)
            self.assertEqual(p.returncode, 2, args)
            self.assertIn("--help", p.stderr.decode(), args)

    def test_every_flag_help_lists_is_one_the_parser_knows(self):
        out = run(["--help"]).stdout.decode()
        flags = re.findall(r"^  ([A-Z_]+) +(--[a-z-]+) +default", out, re.M)
        self.assertEqual(sorted(name for name, _ in flags), sorted(ALL_SETTINGS))
        for name, flag in flags:
            self.assertEqual(flag, "--" + name.lower().replace("_", "-"))
            # Without its value the flag is known, and named with its variable.
            p = run([flag])
            self.assertEqual(p.returncode, 2, flag)
            self.assertIn("%s (%s) needs a value" % (flag, name), p.stderr.decode())

    def test_min_replica_acks_needs_sync_mode_always(self):
        p = run(env={"MIN_REPLICA_ACKS": "1", "SYNC_MODE": "interval"})
        self.assertEqual(p.returncode, 2)
        self.assertIn("MIN_REPLICA_ACKS", p.stderr.decode())
        self.assertIn("SYNC_MODE=always", p.stderr.decode())

    def test_a_secret_is_not_echoed(self):
        p = run(env={"AUTH_TOKEN": "almost secret"})
        self.assertEqual(p.returncode, 2)
        self.assertNotIn("almost secret", p.stderr.decode())

    def test_help_lists_every_setting_with_its_flag_and_default(self):
        p = run(["--help"], env={"PORT": "invalid"})  # --help works regardless
        self.assertEqual(p.returncode, 0)
        out = p.stdout.decode()
        for name in ALL_SETTINGS:
            self.assertIn(name, out)
            self.assertIn("--" + name.lower().replace("_", "-"), out)
        for default in ("9002", "vol-1", "127.0.0.1", "always", "info", "64", "100"):
            self.assertIn("default " + default, out)

    def test_version(self):
        p = run(["--version"])
        self.assertEqual(p.returncode, 0)
        self.assertRegex(p.stdout.decode(), r"^volume-server \d+\.\d+\.\d+")

    def test_flags_win_over_the_environment(self):
        server = Server(env={"VOLUME_ID": "from-env", "LOG_LEVEL": "error"},
                        args=["--volume-id", "from-flag", "--port=0", "--log-level", "info"])
        try:
            server.start()
            self.assertEqual(server.request("GET", "/health").json()["volume_id"], "from-flag")
            self.assertIn("VOLUME_ID=from-flag", server.log())
        finally:
            stop_and_check(self, server)

    def test_start_line_shows_the_effective_settings_but_not_the_token(self):
        server = Server(env={"AUTH_TOKEN": "tok-123", "SYNC_MODE": "interval",
                             "THREADS": "3"}).start()
        try:
            log = server.log()
            self.assertIn("listening on http://127.0.0.1:%d" % server.port, log)
            for setting in ("SYNC_MODE=interval", "THREADS=3", "AUTH_TOKEN=set",
                            "MAX_REQUEST_SIZE_MB=100", "VOLUME_ID=vol-1"):
                self.assertIn(setting, log)
            self.assertNotIn("tok-123", log)
        finally:
            stop_and_check(self, server)

    def test_debug_logs_one_line_per_request(self):
        server = Server(env={"LOG_LEVEL": "debug"}).start()
        try:
            server.request("PUT", "/blobs/logged", b"abc")
            server.request("GET", "/blobs/nothing-here")
            self.assertEqual(server.stop(), 0)
            log = server.log()
            self.assertRegex(log, r"debug +PUT /blobs/logged 201 ")
            self.assertRegex(log, r"debug +GET /blobs/nothing-here 404 ")
        finally:
            server.cleanup()

    def test_busy_port_fails_naming_port(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            port = s.getsockname()[1]
            p = run(env={"PORT": str(port), "DATA_DIR": self.tmp_dir()})
        self.assertEqual(p.returncode, 1)
        self.assertIn("PORT=%d" % port, p.stderr.decode())

    def test_locked_data_dir_fails(self):
        server = Server().start()
        try:
            p = run(env={"DATA_DIR": server.data_dir})
            self.assertEqual(p.returncode, 1)
            err = p.stderr.decode()
            self.assertIn("DATA_DIR=" + server.data_dir, err)
        finally:
            stop_and_check(self, server)

    def tmp_dir(self):
        path = tempfile.mkdtemp(prefix="vs-e2e-")
        self.addCleanup(shutil.rmtree, path, True)
        return os.path.join(path, "data")


class Shutdown(unittest.TestCase):

    def test_sigint_stops_cleanly_and_saves_the_snapshot(self):
        server = Server().start()
        try:
            self.assertEqual(server.request("PUT", "/blobs/a", b"1").status, 201)
            self.assertEqual(server.stop(signal.SIGINT), 0, server.log())
            assert_clean_log(self, server.log())
            self.assertIn("received SIGINT", server.log())
            self.assertTrue(os.path.exists(os.path.join(server.data_dir, "index.snapshot")))
        finally:
            server.cleanup()

    def start_upload(self, server, key):
        """An upload of 10 bytes of which 5 are sent; the server has it in
        progress when this returns."""
        slow = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        slow.sendall(b"PUT /blobs/%s HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234" %
                     key.encode())
        self.wait_in_flight(server, 1)
        return slow

    def wait_for_log(self, server, pattern):
        deadline = time.monotonic() + 20
        while re.search(pattern, server.log()) is None:
            self.assertLess(time.monotonic(), deadline, "no %r in the log:\n%s" %
                            (pattern, server.log()))
            time.sleep(0.01)  # the server has not logged it yet (bounded)

    def assert_refused_while_draining(self, r):
        self.assertEqual(r.status, 503)
        self.assertEqual(r.json(), {"error": "Server is shutting down"})
        self.assertEqual(r.headers["Connection"], "close")

    def test_during_the_drain_new_requests_get_503_and_an_upload_in_flight_completes(self):
        server = Server(env={"SHUTDOWN_GRACE_SECS": "120"}).start()
        try:
            idle = server.connection()
            server.request("GET", "/health", conn=idle)  # a kept-alive connection
            slow = self.start_upload(server, "slow")
            server.send_signal(signal.SIGTERM)
            # The upload is in progress; so may be the last /metrics probe
            # of start_upload, answered but not yet completed on the server.
            self.wait_for_log(server, r"shutdown: draining (1 request|2 requests) in "
                                            r"progress for up to 120000 ms; new requests get 503")
            # New connections are still accepted, and their requests get
            # 503, uploads before their body...
            self.assert_refused_while_draining(server.request("GET", "/health"))
            self.assert_refused_while_draining(
                server.upload("PUT", "/blobs/refused", b"x" * 100000))
            # ...and so does a new request on a connection opened before.
            self.assert_refused_while_draining(server.request("GET", "/health", conn=idle))
            # The upload that was under way completes within the grace.
            slow.sendall(b"56789")
            self.assertTrue(slow.recv(4096).startswith(b"HTTP/1.1 201 Created"))
            slow.close()
            idle.close()
            self.assertEqual(server.wait(), 0, server.log())
            assert_clean_log(self, server.log())
            self.assertNotIn("still in progress", server.log())
            again = Server(data_dir=server.data_dir).start()
            try:
                self.assertEqual(again.request("GET", "/blobs/slow").body, b"0123456789")
                self.assertEqual(again.request("GET", "/blobs/refused").status, 404)
            finally:
                stop_and_check(self, again)
        finally:
            server.cleanup()

    def test_an_upload_slower_than_the_grace_is_cut_and_not_stored(self):
        server = Server(env={"SHUTDOWN_GRACE_SECS": "1"}).start()
        try:
            slow = self.start_upload(server, "too-slow")
            server.send_signal(signal.SIGTERM)
            # The server waits out the grace, then cuts the upload and exits.
            self.assertEqual(server.wait(), 0, server.log())
            assert_clean_log(self, server.log())
            self.assertIn("shutdown: 1 request still in progress after 1000 ms "
                          "(SHUTDOWN_GRACE_SECS); cutting it", server.log())
            # The client sees its connection closed without a response: a
            # reset, or the end of the stream.
            try:
                slow.sendall(b"56789")
                reply = slow.recv(4096)
            except (ConnectionResetError, BrokenPipeError):
                reply = b""
            slow.close()
            self.assertEqual(reply, b"")
            again = Server(data_dir=server.data_dir).start()
            try:
                self.assertEqual(again.request("GET", "/blobs/too-slow").status, 404)
            finally:
                stop_and_check(self, again)
        finally:
            server.cleanup()

    def wait_in_flight(self, server, n):
        deadline = time.monotonic() + 10
        while server.request("GET", "/metrics").json()["http_in_flight"] - 1 != n:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.01)

    def test_sigterm_under_load_keeps_every_acknowledged_blob(self):
        server = Server().start()
        acked = {}
        lock = threading.Lock()
        bad = []
        stop = threading.Event()

        def writer(w):
            c = server.connection(timeout=20)
            try:
                write_until_refused(w, c)
            finally:
                c.close()

        def write_until_refused(w, c):
            i = 0
            while not stop.is_set():
                key = "load/%d/%d" % (w, i)
                value = (b"%d-%d;" % (w, i)) * (1 + i % 50)
                try:
                    c.request("PUT", "/blobs/" + key, body=value)
                    resp = c.getresponse()
                    resp.read()
                except (OSError, http.client.HTTPException):
                    return  # the server closed the connection: done
                if resp.status == 201:
                    with lock:
                        acked[key] = value
                elif resp.status == 503:
                    return
                else:
                    bad.append((key, resp.status))
                    return
                i += 1

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(16)]
        try:
            for t in threads:
                t.start()
            deadline = time.monotonic() + 20
            while len(acked) < 500:  # let the load build up (bounded)
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.01)
            server.send_signal(signal.SIGTERM)
            rc = server.wait()
            stop.set()
            for t in threads:
                t.join(timeout=20)
            self.assertEqual(rc, 0, server.log())
            assert_clean_log(self, server.log())
            self.assertEqual(bad, [])
            self.assertTrue(os.path.exists(os.path.join(server.data_dir, "index.snapshot")))
            again = Server(data_dir=server.data_dir).start()
            try:
                c = again.connection()
                for key, value in acked.items():
                    r = again.request("GET", "/blobs/" + key, conn=c)
                    self.assertEqual((r.status, r.body), (200, value), key)
                c.close()
                keys = again.request("GET", "/metrics").json()["total_keys"]
                self.assertGreaterEqual(keys, len(acked))
                self.assertIn("index from snapshot", again.log())
            finally:
                stop_and_check(self, again)
        finally:
            stop.set()
            server.cleanup()


if __name__ == "__main__":
    unittest.main()
