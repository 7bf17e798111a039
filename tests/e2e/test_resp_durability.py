#!/usr/bin/env python3
"""Durable replies over the Redis protocol: with SYNC_MODE=always, every
write that got its reply (+OK, DEL's count, INCR's number, EXEC's array)
survives a kill -9 of volume-server, under pipelined load from many
connections; a write never acknowledged may or may not be there, but a key
never holds a value older than its last acknowledged one, and a transaction
(MULTI/EXEC, MSET) is there whole or not at all."""

import os
import shutil
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import resp_client as rc  # noqa: E402
from server_harness import Server, stop_and_check  # noqa: E402

CLIENTS = 8
KEYS_PER_CLIENT = 40
PIPELINE = 16
ACKED_BEFORE_KILL = 4000  # writes acknowledged before the kill (all clients)
LOAD_TIMEOUT = 120.0


class Writer(threading.Thread):
    """Overwrites its own keys with increasing sequence numbers, PIPELINE
    commands at a time, and records the last acknowledged value of each
    key; every tenth command is a DEL, acknowledged by its count."""

    def __init__(self, port, n, stop):
        super().__init__(daemon=True)
        self.port, self.n, self.stop = port, n, stop
        self.acked = {}  # key -> last acknowledged seq (-1: deleted)
        self.count = 0
        self.error = None

    def key(self, seq):
        return "c%d/k%02d" % (self.n, seq % KEYS_PER_CLIENT)

    def run(self):
        seq = 0
        try:
            conn = rc.Conn(self.port, timeout=30)
        except OSError as e:
            self.error = e
            return
        try:
            while not self.stop.is_set():
                batch = []
                for _ in range(PIPELINE):
                    seq += 1
                    if seq % 10 == 0:
                        batch.append((seq, ("DEL", self.key(seq))))
                    else:
                        batch.append((seq, ("SET", self.key(seq), "%d" % seq)))
                conn.send(b"".join(rc.encode(*cmd) for _, cmd in batch))
                for s, cmd in batch:
                    reply = conn.read()
                    if isinstance(reply, rc.Error):
                        self.error = reply
                        return
                    self.acked[cmd[1]] = -s if cmd[0] == "DEL" else s
                    self.count += 1
        except (rc.Closed, OSError):
            pass  # the kill
        finally:
            conn.close()


class MixedWriter(threading.Thread):
    """The conditional and atomic commands, pipelined: each round is an MSET
    of two keys, an INCR, a GETSET, an APPEND, a SET then RENAME, and a
    MULTI/EXEC that sets three keys and INCRs a fourth. Records what each
    acknowledged reply promises."""

    def __init__(self, port, n, stop):
        super().__init__(daemon=True)
        self.port, self.n, self.stop = port, n, stop
        self.acked = {}  # key -> least value (int) the store must hold
        self.tx_acked = 0  # transactions acknowledged
        self.count = 0
        self.error = None

    def k(self, name):
        return "m%d/%s" % (self.n, name)

    def round(self, seq):
        k = self.k
        return [
            (("MSET", k("a"), seq, k("b"), seq), "OK", [k("a"), k("b")]),
            (("INCR", k("n")), int, [k("n")]),
            (("GETSET", k("g"), seq), None, [k("g")]),
            (("APPEND", k("log"), "x"), int, [k("log")]),
            (("SET", k("src"), seq), "OK", []),
            (("RENAME", k("src"), k("dst")), "OK", [k("dst")]),
            (("MULTI",), "OK", []),
            (("SET", k("t0"), seq), "QUEUED", []),
            (("SET", k("t1"), seq), "QUEUED", []),
            (("SET", k("t2"), seq), "QUEUED", []),
            (("INCR", k("tn")), "QUEUED", []),
            (("EXEC",), list, [k("t0"), k("t1"), k("t2")]),
        ]

    def run(self):
        seq = 0
        try:
            conn = rc.Conn(self.port, timeout=30)
        except OSError as e:
            self.error = e
            return
        try:
            while not self.stop.is_set():
                seq += 1
                cmds = self.round("%d" % seq)
                conn.send(b"".join(rc.encode(*c) for c, _, _ in cmds))
                for cmd, want, keys in cmds:
                    reply = conn.read()
                    if isinstance(reply, rc.Error) or (
                            isinstance(want, str) and reply != want) or (
                            isinstance(want, type) and not isinstance(reply, want)):
                        self.error = (cmd, reply)
                        return
                    if want == "QUEUED":
                        pass  # promises nothing until EXEC
                    elif cmd[0] in ("INCR", "APPEND"):
                        self.acked[keys[0]] = reply  # the number, or the length
                    elif cmd[0] == "EXEC":
                        self.tx_acked = reply[3]  # INCR's count: this transaction's number
                        for key in keys:
                            self.acked[key] = seq
                    else:
                        for key in keys:
                            self.acked[key] = seq
                    self.count += 1
        except (rc.Closed, OSError):
            pass  # the kill
        finally:
            conn.close()

    def check(self, test, c):
        """What the restarted store must hold for this writer."""
        k = self.k
        for key, least in self.acked.items():
            got = c.call("GET", key)
            test.assertIsNotNone(got, key)
            value = len(got) if key == k("log") else int(got)
            test.assertGreaterEqual(value, least, key)
        a, b = c.call("GET", k("a")), c.call("GET", k("b"))
        test.assertEqual(a, b, "an MSET was partly applied")
        t = [c.call("GET", k("t%d" % i)) for i in range(3)]
        tn = c.call("GET", k("tn"))
        # Whole or nothing: the three keys from one transaction, and its
        # INCR with them (the n-th transaction sets seq and counts n).
        test.assertEqual(t[0], t[1], "a transaction was partly applied")
        test.assertEqual(t[1], t[2], "a transaction was partly applied")
        test.assertEqual(t[0] is None, tn is None, (t, tn))
        if tn is not None:
            test.assertGreaterEqual(int(tn), self.tx_acked)


class RespDurability(unittest.TestCase):
    def test_every_acknowledged_write_survives_kill_9(self):
        tmp = tempfile.mkdtemp(prefix="resp-durable-")
        self.addCleanup(shutil.rmtree, tmp, True)
        data_dir = os.path.join(tmp, "data")
        server = Server(env={"SYNC_MODE": "always"}, data_dir=data_dir).start()
        stop = threading.Event()
        writers = [Writer(server.resp_port, n, stop) for n in range(CLIENTS)]
        for w in writers:
            w.start()
        deadline = time.monotonic() + LOAD_TIMEOUT
        while sum(w.count for w in writers) < ACKED_BEFORE_KILL:  # bounded wait for the load
            self.assertLess(time.monotonic(), deadline, "the writers made too little progress")
            self.assertTrue(any(w.is_alive() for w in writers), [w.error for w in writers])
            time.sleep(0.01)
        server.proc.kill()
        server.wait()
        stop.set()
        for w in writers:
            w.join(30)
            self.assertFalse(w.is_alive())
            self.assertIsNone(w.error)
        server.cleanup()

        again = Server(data_dir=data_dir).start()
        self.addCleanup(stop_and_check, self, again)
        checked = 0
        with rc.Conn(again.resp_port) as c:
            for w in writers:
                for key, seq in w.acked.items():
                    got = c.call("GET", key)
                    if seq < 0:
                        # An acknowledged DEL: absent, or set again by a
                        # later write that reached the disk.
                        self.assertTrue(got is None or int(got) > -seq, (key, seq, got))
                    else:
                        self.assertIsNotNone(got, (key, seq))
                        self.assertGreaterEqual(int(got), seq, key)
                    checked += 1
        self.assertGreater(checked, CLIENTS * KEYS_PER_CLIENT // 2)


    def test_conditional_commands_and_transactions_survive_kill_9_whole(self):
        tmp = tempfile.mkdtemp(prefix="resp-durable-tx-")
        self.addCleanup(shutil.rmtree, tmp, True)
        data_dir = os.path.join(tmp, "data")
        server = Server(env={"SYNC_MODE": "always"}, data_dir=data_dir).start()
        stop = threading.Event()
        writers = [MixedWriter(server.resp_port, n, stop) for n in range(CLIENTS)]
        for w in writers:
            w.start()
        deadline = time.monotonic() + LOAD_TIMEOUT
        # Enough acknowledged, and transactions in flight on every writer.
        while sum(w.count for w in writers) < ACKED_BEFORE_KILL or \
                min(w.tx_acked for w in writers) < 10:  # bounded wait for the load
            self.assertLess(time.monotonic(), deadline, "the writers made too little progress")
            self.assertTrue(all(w.is_alive() for w in writers), [w.error for w in writers])
            time.sleep(0.01)
        server.proc.kill()
        server.wait()
        stop.set()
        for w in writers:
            w.join(30)
            self.assertFalse(w.is_alive())
            self.assertIsNone(w.error)
        server.cleanup()

        again = Server(data_dir=data_dir).start()
        self.addCleanup(stop_and_check, self, again)
        with rc.Conn(again.resp_port) as c:
            for w in writers:
                w.check(self, c)

    def test_sigterm_answers_what_was_read_and_keeps_every_acknowledged_write(self):
        tmp = tempfile.mkdtemp(prefix="resp-stop-")
        self.addCleanup(shutil.rmtree, tmp, True)
        data_dir = os.path.join(tmp, "data")
        server = Server(data_dir=data_dir).start()
        stop = threading.Event()
        writers = [Writer(server.resp_port, n, stop) for n in range(CLIENTS)]
        for w in writers:
            w.start()
        deadline = time.monotonic() + LOAD_TIMEOUT
        while sum(w.count for w in writers) < ACKED_BEFORE_KILL // 4:  # bounded wait
            self.assertLess(time.monotonic(), deadline, "the writers made too little progress")
            time.sleep(0.01)
        self.assertEqual(server.stop(), 0, server.log())  # SIGTERM under load
        stop.set()
        for w in writers:
            w.join(30)
            self.assertFalse(w.is_alive())
            self.assertIsNone(w.error)
        self.assertIn("store closed", server.log())
        server.cleanup()

        again = Server(data_dir=data_dir).start()
        self.addCleanup(stop_and_check, self, again)
        with rc.Conn(again.resp_port) as c:
            for w in writers:
                for key, seq in w.acked.items():
                    got = c.call("GET", key)
                    if seq < 0:
                        self.assertTrue(got is None or int(got) > -seq, (key, seq, got))
                    else:
                        self.assertIsNotNone(got, (key, seq))
                        self.assertGreaterEqual(int(got), seq, key)


if __name__ == "__main__":
    unittest.main(verbosity=2)
