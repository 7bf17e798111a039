#!/usr/bin/env python3
"""`kvstore --connect HOST:PORT`: the CLI on the store of a running
volume-server, over its Redis protocol, with the replies and exit statuses it
has on a local directory (which the running server holds locked)."""

import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cli_support import KVSTORE, TIMEOUT  # noqa: E402
from server_harness import Server, ServerTestCase, stop_and_check  # noqa: E402
from test_cli_terminal import BANNER, PROMPT, Session  # noqa: E402

SCRIPT = b"""set user:1 Alice
set user:2 Bob Smith
set "spaced key" "  padded  "
get user:2
get "spaced key"
get nobody
exists user:1
exists nobody
list
scan user:
count
count user:
range s user:2
range user:2
range v
delete user:1
delete user:1
get user:1
snapshot
compact
get user:2
"""


def run(args, stdin=b"", env=None):
    return subprocess.run([KVSTORE, *args], input=stdin, capture_output=True, timeout=TIMEOUT,
                          env=env)


class CliConnect(ServerTestCase):
    def connect(self):
        return ["--connect", "127.0.0.1:%d" % self.server.resp_port]

    def test_a_script_gives_the_same_replies_and_status_as_on_a_directory(self):
        with tempfile.TemporaryDirectory() as tmp:
            local = run(["--data-dir", os.path.join(tmp, "db")], SCRIPT)
        remote = run(self.connect(), SCRIPT)
        self.assertEqual(remote.stdout.decode(), local.stdout.decode())
        self.assertEqual(remote.returncode, local.returncode)
        self.assertEqual(remote.returncode, 1)  # the missing keys
        self.assertIn("user:2", remote.stdout.decode())

    def test_one_shot_commands_and_their_exit_statuses(self):
        c = self.connect()
        self.assertEqual(run(c + ["set", "one", "hello", "world"]).returncode, 0)
        got = run(c + ["get", "one"])
        self.assertEqual((got.returncode, got.stdout), (0, b"hello world"))
        missing = run(c + ["get", "one:missing"])
        self.assertEqual((missing.returncode, missing.stdout), (1, b""))
        self.assertEqual(missing.stderr, b"Key not found\n")
        value = bytes(range(256)) * 4
        self.assertEqual(run(c + ["set", "bin", "-"], stdin=value).returncode, 0)
        self.assertEqual(run(c + ["get", "bin"]).stdout, value)
        self.assertEqual(run(c + ["delete", "bin"]).stdout, b"Deleted\n")
        self.assertEqual(run(c + ["exists", "bin"]).returncode, 1)
        self.assertEqual(run(c + ["get"]).returncode, 2)  # usage, as locally

    def test_set_with_ttl_and_ttl_on_the_server(self):
        c = self.connect()
        self.assertEqual(run(c + ["set", "--ttl", "100", "ttl:k", "v"]).returncode, 0)
        self.assertIn(run(c + ["ttl", "ttl:k"]).stdout, (b"99\n", b"100\n"))
        self.assertEqual(run(c + ["set", "ttl:plain", "v"]).returncode, 0)
        self.assertEqual(run(c + ["ttl", "ttl:plain"]).stdout, b"no expiry\n")
        missing = run(c + ["ttl", "ttl:ghost"])
        self.assertEqual((missing.returncode, missing.stdout), (1, b""))
        self.assertEqual(missing.stderr, b"Key not found\n")

    def test_stats_reads_the_server_s_figures(self):
        run(self.connect() + ["set", "stats:k", "v"])
        out = run(self.connect() + ["stats"])
        self.assertEqual(out.returncode, 0)
        text = out.stdout.decode()
        self.assertTrue(text.startswith("Store Statistics:\n  Keys: "), text)
        keys = int(text.split("Keys: ")[1].split()[0])
        self.assertGreaterEqual(keys, 1)

    def test_a_value_written_by_the_cli_is_the_blob_over_http(self):
        run(self.connect() + ["set", "via/cli", "from the cli"])
        self.assertEqual(self.get("via/cli").body, b"from the cli")

    def test_the_directory_is_locked_but_connect_works(self):
        local = run(["--data-dir", self.server.data_dir, "get", "x"])
        self.assertEqual(local.returncode, 3)
        self.assertIn(b"in use by another process", local.stderr)
        self.assertEqual(run(self.connect() + ["count"]).returncode, 0)

    def test_a_server_that_is_not_there_is_an_error(self):
        out = run(["--connect", "127.0.0.1:1", "get", "k"])
        self.assertEqual(out.returncode, 3)
        self.assertIn(b"cannot connect to 127.0.0.1:1", out.stderr)
        bad = run(["--connect", "nowhere", "get", "k"])
        self.assertEqual(bad.returncode, 3)
        self.assertIn(b"expected HOST:PORT", bad.stderr)


class CliConnectSession(ServerTestCase):
    def test_a_terminal_session_with_completion_of_the_server_s_keys(self):
        with tempfile.TemporaryDirectory() as home:
            env = dict(os.environ, HOME=home, TERM="xterm")
            s = Session(None, env, ["--connect", "127.0.0.1:%d" % self.server.resp_port])
            self.addCleanup(s.close)
            s.expect(BANNER)
            s.expect(PROMPT)
            s.command(b"set user:alice 1", b"OK")
            s.command(b"set user:bob 2", b"OK")
            s.send(b"get user:a\t")
            s.expect(b"lice ")
            s.send(b"\r")
            s.expect(b"\r\n1\r\n")
            s.expect(PROMPT)
            s.command(b"get nobody", b"Key not found")
            s.send(b"quit\r")
            self.assertEqual(s.wait_exit(), 0)
        self.assertEqual(self.get("user:bob").body, b"2")


class CliConnectAuth(unittest.TestCase):
    def test_auth_token_from_the_environment(self):
        server = Server(env={"AUTH_TOKEN": "t0ken"}).start()
        self.addCleanup(stop_and_check, self, server)
        c = ["--connect", "127.0.0.1:%d" % server.resp_port]
        env = {k: v for k, v in os.environ.items() if k != "AUTH_TOKEN"}
        denied = run(c + ["set", "k", "v"], env=env)
        self.assertEqual(denied.returncode, 3)
        self.assertIn(b"NOAUTH", denied.stderr)
        ok = run(c + ["set", "k", "v"], env=dict(env, AUTH_TOKEN="t0ken"))
        self.assertEqual((ok.returncode, ok.stdout), (0, b"OK\n"))
        wrong = run(c + ["get", "k"], env=dict(env, AUTH_TOKEN="nope"))
        self.assertEqual(wrong.returncode, 3)
        self.assertIn(b"WRONGPASS", wrong.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
