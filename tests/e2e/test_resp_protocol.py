#!/usr/bin/env python3
"""The Redis protocol of volume-server, byte by byte: RESP2 and RESP3, inline
commands, pipelining, Redis's errors, malformed input, the limits (bulk
length, arguments, output, idle time, connections), AUTH, and the same store
over HTTP. Python's standard library only (resp_client.py speaks RESP)."""

import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import resp_client as rc  # noqa: E402
from server_harness import Server, ServerTestCase, quote_key, stop_and_check  # noqa: E402

MIB = 1024 * 1024


def is_error(reply, prefix):
    return isinstance(reply, rc.Error) and str(reply).startswith(prefix)


class RespProtocol(ServerTestCase):
    ENV = {"MAX_REQUEST_SIZE_MB": "1", "RESP_MAX_ARGS": "1000"}

    def conn(self):
        return rc.Conn(self.server.resp_port)

    def raw(self, data, timeout=10.0):
        """Sends data on a new connection; returns (bytes read, closed)."""
        with self.conn() as c:
            c.send(data)
            return c.read_until_closed(timeout)

    def test_ping_answers_inline_and_as_an_array(self):
        with self.conn() as c:
            c.send(b"PING\r\nping\nPING hello\r\n")
            self.assertEqual(c.read(), "PONG")
            self.assertEqual(c.read(), "PONG")
            self.assertEqual(c.read(), b"hello")
            self.assertEqual(c.call("PING"), "PONG")
            self.assertEqual(c.call("ECHO", b"a\r\nb"), b"a\r\nb")

    def test_inline_commands_unquote_as_redis_does(self):
        with self.conn() as c:
            c.send(b'SET "inline key" \'it\\\'s\'\r\nSET "esc:\\x41\\n" "tab\\tx"\r\n')
            self.assertEqual(c.read(), "OK")
            self.assertEqual(c.read(), "OK")
            self.assertEqual(c.call("GET", "inline key"), b"it's")
            self.assertEqual(c.call("GET", b"esc:A\n"), b"tab\tx")
        out, closed = self.raw(b'GET "unbalanced\r\n')
        self.assertEqual(out, b"-ERR Protocol error: unbalanced quotes in request\r\n")
        self.assertTrue(closed)

    def test_a_pipeline_is_answered_in_order_and_reads_its_own_writes(self):
        n = 5000
        cmds = []
        for i in range(n):
            cmds.append(("SET", "pipe:%d" % i, "v%d" % i))
            cmds.append(("GET", "pipe:%d" % i))
        with self.conn() as c:
            replies = c.pipeline(cmds)
        for i in range(n):
            self.assertEqual(replies[2 * i], "OK")
            self.assertEqual(replies[2 * i + 1], b"v%d" % i)

    def test_a_huge_pipeline_sent_before_any_reply_is_read(self):
        # 100,000 commands in one write, about 3 MB of replies: the server
        # must stop reading while the client does not read, and lose nothing.
        with self.conn() as c:
            c.call("SET", "huge", "x" * 20)
            data = rc.encode("GET", "huge") * 100000
            sender = threading.Thread(target=c.send, args=(data,))
            sender.start()
            for _ in range(100000):
                self.assertEqual(c.read(), b"x" * 20)
            sender.join()

    def test_binary_keys_and_values_round_trip(self):
        key = bytes(range(1, 256)) + b"\r\n\0"
        value = bytes(range(256)) * 3
        with self.conn() as c:
            self.assertEqual(c.call("SET", key, value), "OK")
            self.assertEqual(c.call("GET", key), value)
            self.assertEqual(c.call("SET", "empty", b""), "OK")
            self.assertEqual(c.call("GET", "empty"), b"")
            self.assertEqual(c.call("STRLEN", "empty"), 0)
            self.assertEqual(c.call("EXISTS", "empty"), 1)
            r = c.pipeline([("SET", b"", "x")])[0]
            self.assertTrue(is_error(r, "ERR invalid key"), r)
            self.assertIsNone(c.call("GET", b""))
            self.assertTrue(is_error(c.pipeline([("SET", b"k" * 65536, "x")])[0], "ERR"))
            self.assertEqual(c.call("SET", b"k" * 65535, "longest"), "OK")
            self.assertEqual(c.call("GET", b"k" * 65535), b"longest")

    def test_a_value_just_under_the_bulk_limit_is_stored(self):
        value = os.urandom(MIB - 100)
        with self.conn() as c:
            self.assertEqual(c.call("SET", "big", value), "OK")
            self.assertEqual(c.call("GET", "big"), value)

    def test_a_bulk_over_max_request_size_is_refused_and_the_connection_closed(self):
        with self.conn() as c:
            c.send(b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%d\r\n" % (MIB + 1))
            out, closed = c.read_until_closed()
        self.assertEqual(out, b"-ERR Protocol error: invalid bulk length\r\n")
        self.assertTrue(closed)
        with self.conn() as c:  # nothing else was disturbed
            self.assertEqual(c.call("PING"), "PONG")
            self.assertEqual(c.call("EXISTS", "big-refused"), 0)

    def test_malformed_input_gets_an_error_and_a_close(self):
        cases = [
            (b"*2\r\n$3\r\nGET\r\n:1\r\n", b"-ERR Protocol error: expected '$', got ':'\r\n"),
            (b"*abc\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
            (b"*1\r\n$-5\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
            (b"*1\r\n$4\r\nPINGxx", b"-ERR Protocol error: bulk string not followed by CRLF\r\n"),
            (b"*1001\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
            (b"x" * (65 * 1024), b"-ERR Protocol error: too big inline request\r\n"),
        ]
        for data, want in cases:
            out, closed = self.raw(data)
            self.assertEqual(out, want, data[:40])
            self.assertTrue(closed, data[:40])

    def test_replies_before_a_protocol_error_are_still_sent(self):
        out, closed = self.raw(rc.encode("PING") + b"*x\r\n" + rc.encode("PING"))
        self.assertEqual(out, b"+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n")
        self.assertTrue(closed)

    def test_a_protocol_error_waits_for_the_replies_of_pending_writes(self):
        # The SETs wait for their fdatasync (SYNC_MODE=always); the error
        # comes after their replies, then the connection closes.
        out, closed = self.raw(rc.encode("SET", "before-error", "1") * 3 + b"*x\r\n" +
                               rc.encode("SET", "after-error", "1"))
        self.assertEqual(out, b"+OK\r\n" * 3 +
                         b"-ERR Protocol error: invalid multibulk length\r\n")
        self.assertTrue(closed)
        with self.conn() as c:
            self.assertEqual(c.call("GET", "before-error"), b"1")
            self.assertIsNone(c.call("GET", "after-error"))

    def test_the_largest_allowed_argument_count_is_accepted(self):
        keys = ["argc:%d" % i for i in range(999)]
        with self.conn() as c:
            self.assertEqual(c.call("EXISTS", *keys), 0)

    def test_a_client_that_vanishes_mid_command_disturbs_nothing(self):
        for partial in (b"*3\r\n$3\r\nSET\r\n$4\r\nhalf\r\n$100\r\nabc",
                        b"*3\r\n$3\r\nSET\r\n$4\r\nhalf",
                        rc.encode("SET", "gone", "1") * 500):
            s = socket.create_connection(("127.0.0.1", self.server.resp_port))
            s.sendall(partial)
            s.close()
        with self.conn() as c:
            self.assertEqual(c.call("PING"), "PONG")
            self.assertIsNone(c.call("GET", "half"))

    def test_unknown_commands_and_wrong_arity_get_redis_errors(self):
        with self.conn() as c:
            r = c.pipeline([("NOSUCH", "a", "b"), ("GET",), ("GET", "a", "b"), ("SELECT", "1"),
                            ("SELECT", "x"), ("SELECT", "0")])
        self.assertEqual(str(r[0]), "ERR unknown command 'NOSUCH', with args beginning with: "
                                    "'a' 'b' ")
        self.assertEqual(str(r[1]), "ERR wrong number of arguments for 'get' command")
        self.assertEqual(str(r[2]), "ERR wrong number of arguments for 'get' command")
        self.assertEqual(str(r[3]), "ERR DB index is out of range")
        self.assertEqual(str(r[4]), "ERR value is not an integer or out of range")
        self.assertEqual(r[5], "OK")

    def test_hello_3_switches_to_resp3_and_back(self):
        with self.conn() as c:
            hello = c.call("HELLO", "3")
            self.assertEqual(hello[b"server"], b"redis")
            self.assertEqual(hello[b"proto"], 3)
            self.assertEqual(hello[b"role"], b"master")
            c.send(rc.encode("GET", "resp3:missing"))
            self.assertEqual(c.buf + c.sock.recv(16), b"_\r\n")
            self.assertIsInstance(c.call("CONFIG", "GET", "maxclients"), dict)
            self.assertTrue(is_error(c.pipeline([("HELLO", "4")])[0], "NOPROTO"))
            flat = c.call("HELLO", "2")  # RESP2 has no map: a flat array
            self.assertEqual(flat[flat.index(b"proto") + 1], 2)
            c.send(rc.encode("GET", "resp3:missing"))
            self.assertEqual(c.sock.recv(16), b"$-1\r\n")

    def test_command_describes_the_commands_of_this_build(self):
        with self.conn() as c:
            count = c.call("COMMAND", "COUNT")
            self.assertEqual(len(c.call("COMMAND")), count)
            names = c.call("COMMAND", "LIST")
            self.assertEqual(len(names), count)
            self.assertIn(b"set", names)
            self.assertNotIn(b"expire", names)  # needs what this build lacks
            info = c.call("COMMAND", "INFO", "get", "nosuch")
            self.assertEqual(info[0][:6], [b"get", 2, ["readonly", "fast"], 1, 1, 1])
            self.assertIsNone(info[1])
            docs = c.call("COMMAND", "DOCS", "set")
            self.assertEqual(docs[0], b"set")
            self.assertEqual(docs[1][docs[1].index(b"group") + 1], b"string")

    def test_quit_answers_then_closes(self):
        out, closed = self.raw(rc.encode("QUIT") + rc.encode("PING"))
        self.assertEqual(out, b"+OK\r\n")
        self.assertTrue(closed)

    def test_commands_this_build_lacks_say_what_they_need(self):
        with self.conn() as c:
            r = c.pipeline([("SET", "k", "v", "EX", "10"), ("EXPIRE", "k", "10"),
                            ("SETEX", "k", "10", "v")])
        self.assertIn("key expiry", str(r[0]))
        self.assertIn("key expiry", str(r[1]))
        self.assertIn("key expiry", str(r[2]))

    def test_a_key_set_over_resp_is_the_blob_over_http_and_back(self):
        value = bytes(range(256))
        with self.conn() as c:
            self.assertEqual(c.call("SET", "cross/one key", value), "OK")
            r = self.get("cross/one key")
            self.assertEqual(r.status, 200)
            self.assertEqual(r.body, value)
            self.assertEqual(self.put("cross/two", b"from http\r\n").status, 201)
            self.assertEqual(c.call("GET", "cross/two"), b"from http\r\n")
            self.assertEqual(c.call("DEL", "cross/two", "cross/absent"), 1)
            self.assertEqual(self.get("cross/two").status, 404)

    def test_metrics_count_commands_by_name(self):
        with self.conn() as c:
            for _ in range(3):
                c.call("ECHO", "counted")
            c.pipeline([("ECHO",)])
        m = self.server.request("GET", "/metrics").json()
        echo = m["resp_commands_by_name"]["echo"]
        self.assertGreaterEqual(echo["calls"], 4)
        self.assertGreaterEqual(echo["failed"], 1)
        self.assertGreater(echo["p99_usec"], 0)
        self.assertEqual(m["resp_port"], self.server.resp_port)
        self.assertGreaterEqual(m["resp_connections_total"], 1)
        # The rate by name covers the last second: keep calling until a
        # second with calls has been measured (bounded).
        deadline = time.monotonic() + 30
        with self.conn() as c:
            while True:
                c.pipeline([("ECHO", "rate")] * 20)
                m = self.server.request("GET", "/metrics").json()
                if m["resp_commands_by_name"]["echo"]["per_sec"] > 0:
                    break
                self.assertLess(time.monotonic(), deadline, "no rate of ECHO was measured")
        text = self.server.request("GET", "/metrics?format=prometheus").body.decode()
        self.assertIn('kvstore_resp_command_rate{volume="vol-1",cmd="echo"}', text)
        self.assertIn('kvstore_resp_commands_total{volume="vol-1",cmd="echo"}', text)
        self.assertIn('kvstore_resp_command_seconds_bucket{volume="vol-1",cmd="echo",le="+Inf"}',
                      text)


class RespLimits(unittest.TestCase):
    def start(self, env):
        server = Server(env=env).start()
        self.addCleanup(stop_and_check, self, server)
        return server

    def test_an_idle_connection_is_closed(self):
        server = self.start({"RESP_IDLE_TIMEOUT_SECS": "1"})
        with rc.Conn(server.resp_port) as c:
            self.assertEqual(c.call("PING"), "PONG")
            out, closed = c.read_until_closed(timeout=30)
        self.assertEqual(out, b"")
        self.assertTrue(closed)

    def test_a_client_that_never_reads_its_replies_is_closed_when_idle(self):
        server = self.start({"RESP_IDLE_TIMEOUT_SECS": "1"})
        with rc.Conn(server.resp_port) as c:
            self.assertEqual(c.call("SET", "wide", b"w" * 100000), "OK")
            c.sock.settimeout(5)
            try:  # more replies than the sockets hold: the server stops reading
                c.send(rc.encode("GET", "wide") * 2000)
            except (socket.timeout, ConnectionResetError, BrokenPipeError):
                pass
            deadline = time.monotonic() + 60
            while server.request("GET", "/metrics").json()["resp_connections"] > 0:
                self.assertLess(time.monotonic(), deadline, "the stalled client was kept")
                time.sleep(0.05)

    def test_connections_past_max_connections_are_refused_with_an_error(self):
        server = self.start({"MAX_CONNECTIONS": "2"})
        a, b = rc.Conn(server.resp_port), rc.Conn(server.resp_port)
        try:
            self.assertEqual(a.call("PING"), "PONG")
            self.assertEqual(b.call("PING"), "PONG")
            with rc.Conn(server.resp_port) as c:
                out, closed = c.read_until_closed()
            self.assertEqual(out, b"-ERR max number of clients reached\r\n")
            self.assertTrue(closed)
        finally:
            a.close()
            b.close()

    def test_a_reply_over_the_output_limit_closes_the_connection(self):
        server = self.start({"MAX_REQUEST_SIZE_MB": "1", "RESP_OUTPUT_LIMIT_MB": "1"})
        with rc.Conn(server.resp_port) as c:
            self.assertEqual(c.call("SET", "large", b"x" * 900000), "OK")
            self.assertEqual(len(c.call("GET", "large")), 900000)
            c.send(rc.encode("MGET", "large", "large"))
            out, closed = c.read_until_closed()
        self.assertEqual(out, b"")
        self.assertTrue(closed)

    def test_large_commands_share_the_memory_budget_of_request_bodies(self):
        server = self.start({"MAX_REQUEST_SIZE_MB": "1", "MAX_BODY_MEMORY_MB": "1"})
        value = b"a" * 900000
        head = b"*3\r\n$3\r\nSET\r\n$5\r\nlarge\r\n$%d\r\n" % len(value)
        with rc.Conn(server.resp_port) as first:
            first.send(head + value[:100000])  # makes room for 900 kB of the 1 MiB
            deadline = time.monotonic() + 30
            while server.request("GET", "/metrics").json()["http_body_bytes"] < len(value):
                self.assertLess(time.monotonic(), deadline, "the first command took no memory")
                time.sleep(0.01)
            with rc.Conn(server.resp_port) as second:
                second.send(head + value[:100000])
                out, closed = second.read_until_closed()
            self.assertEqual(out, b"-ERR server busy: the memory for commands being received "
                                  b"(MAX_BODY_MEMORY_MB) is in use; try again\r\n")
            self.assertTrue(closed)
            first.send(value[100000:] + b"\r\n")
            self.assertEqual(first.read(), "OK")
        deadline = time.monotonic() + 30
        while server.request("GET", "/metrics").json()["http_body_bytes"] > 0:
            self.assertLess(time.monotonic(), deadline, "the memory was not given back")
            time.sleep(0.01)
        with rc.Conn(server.resp_port) as third:  # the budget is free again
            self.assertEqual(third.call("SET", "large", value), "OK")

    def test_auth_token_guards_every_command_but_auth_hello_ping_and_quit(self):
        server = self.start({"AUTH_TOKEN": "s3cret"})
        with rc.Conn(server.resp_port) as c:
            r = c.pipeline([("PING",), ("GET", "k"), ("SET", "k", "v"), ("AUTH", "wrong"),
                            ("HELLO", "3"), ("AUTH", "s3cret"), ("SET", "k", "v"), ("GET", "k")])
            self.assertEqual(r[0], "PONG")
            self.assertEqual(str(r[1]), "NOAUTH Authentication required.")
            self.assertEqual(str(r[2]), "NOAUTH Authentication required.")
            self.assertEqual(str(r[3]), "WRONGPASS invalid username-password pair or user is "
                                        "disabled.")
            self.assertTrue(is_error(r[4], "NOAUTH HELLO must be called"))
            self.assertEqual(r[5:], ["OK", "OK", b"v"])
        with rc.Conn(server.resp_port) as c:
            self.assertEqual(c.call("HELLO", "3", "AUTH", "anyone", "s3cret")[b"proto"], 3)
            self.assertEqual(c.call("GET", "k"), b"v")
        with rc.Conn(server.resp_port) as c:
            self.assertEqual(c.call("AUTH", "default", "s3cret"), "OK")
            out = c.pipeline([("QUIT",)])
            self.assertEqual(out, ["OK"])

    def test_auth_without_a_token_is_redis_s_error(self):
        server = self.start({})
        with rc.Conn(server.resp_port) as c:
            r = c.pipeline([("AUTH", "x")])[0]
        self.assertTrue(is_error(r, "ERR AUTH <password> called without any password"), r)

    def test_resp_port_off_opens_no_listener(self):
        server = self.start({"RESP_PORT": "off"})
        self.assertIsNone(server.resp_port)
        self.assertEqual(server.request("GET", "/metrics").json()["resp_port"], 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
