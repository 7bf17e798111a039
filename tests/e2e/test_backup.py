"""End-to-end tests of backup and restore with the real programs: a
volume-server under HTTP writes backed up through POST /admin/backup and by
`kvstore backup` beside it (with compactions running meanwhile), each backup
restored with `kvstore restore` and served by a new volume-server, which must
answer every write acknowledged before the backup began with its exact
value; and the refusals (destination not empty, relative path, no token).

Run by ctest with KV_BUILD_DIR set to the build directory.
"""

import http.client
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_harness import BUILD_DIR, Server, stop_and_check  # noqa: E402

KVSTORE = os.path.join(BUILD_DIR, "kvstore")
WRITERS = 4
WAIT = 60.0  # seconds: a bound on any wait for progress, never a duration


def value_of(key):
    """The one value ever written under key: its length varies with it."""
    unit = (key + ";").encode()
    return unit * (1 + zlib.crc32(unit) % 200)


class Load:
    """WRITERS threads, each PUTting keys of its own over one connection,
    until stopped; acked[t] lists the keys thread t got a 201 for, in
    order."""

    def __init__(self, server):
        self.server = server
        self.stop = threading.Event()
        self.acked = [[] for _ in range(WRITERS)]
        self.errors = []
        self.threads = [threading.Thread(target=self.write, args=(t,)) for t in range(WRITERS)]

    def write(self, t):
        conn = self.server.connection(timeout=60)
        try:
            i = 0
            while not self.stop.is_set():
                key = "w%d/%06d" % (t, i)
                conn.request("PUT", "/blobs/" + key, body=value_of(key))
                resp = conn.getresponse()
                resp.read()
                if resp.status != 201:
                    self.errors.append((key, resp.status))
                    return
                self.acked[t].append(key)
                i += 1
        except (OSError, http.client.HTTPException) as e:
            self.errors.append(("connection", repr(e)))
        finally:
            conn.close()

    def __enter__(self):
        for th in self.threads:
            th.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for th in self.threads:
            th.join(timeout=60)

    def count(self):
        return sum(len(a) for a in self.acked)

    def wait_for(self, n):
        deadline = time.monotonic() + WAIT
        while self.count() < n:
            if self.errors:
                raise AssertionError("writers failed: %r" % self.errors[:3])
            if time.monotonic() > deadline:
                raise AssertionError("only %d writes acknowledged, wanted %d" % (self.count(), n))
            time.sleep(0.01)  # polling the writers' progress (bounded)

    def acknowledged(self):
        """Every key acknowledged so far."""
        return [k for a in self.acked for k in list(a)]


def run_kvstore(*args, timeout=120):
    return subprocess.run([KVSTORE, *args], capture_output=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


class BackupTestCase(unittest.TestCase):
    ENV = {"SEGMENT_SIZE_MB": "1", "COMPACTION_INTERVAL_SECS": "0"}

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kv-backup-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.server = Server(env=self.ENV)
        self.addCleanup(self.server.cleanup)
        self.server.start()

    def path(self, name):
        return os.path.join(self.tmp, name)

    def compact_meanwhile(self, until, limit=None):
        """Runs POST /admin/compact over and over on a thread until the event
        is set (or limit times); returns the thread and the statuses it
        got."""
        statuses = []

        def loop():
            while not until.is_set() and (limit is None or len(statuses) < limit):
                statuses.append(self.server.request("POST", "/admin/compact", timeout=120).status)

        th = threading.Thread(target=loop)
        th.start()
        return th, statuses

    def assert_serves(self, data_dir, keys):
        """Restores data_dir with `kvstore restore`, serves the copy with a
        new volume-server, and checks every key's exact value over HTTP."""
        restored = self.path("restored-" + os.path.basename(data_dir))
        p = run_kvstore("restore", data_dir, restored)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"Restored %s into %s: " % (data_dir.encode(), restored.encode()), p.stdout)
        server = Server(data_dir=restored, env=self.ENV).start()
        try:
            conn = server.connection()
            for key in keys:
                r = server.request("GET", "/blobs/" + key, conn=conn)
                self.assertEqual(r.status, 200, key)
                self.assertEqual(r.body, value_of(key), key)
            conn.close()
            # It takes writes too: a restored store is a store.
            self.assertEqual(server.request("PUT", "/blobs/after-restore", b"x").status, 201)
        finally:
            stop_and_check(self, server)
        # The backup is untouched by what the restored store did.
        self.assertEqual(run_kvstore("--data-dir", data_dir, "get", "after-restore").returncode,
                         1)


class HttpBackup(BackupTestCase):

    def backup(self, dest, token=None):
        headers = {"Authorization": "Bearer " + token} if token else {}
        return self.server.request("POST", "/admin/backup?dir=" + urllib.parse.quote(dest),
                                   headers=headers, timeout=120)

    def test_a_backup_under_write_load_and_compactions_holds_every_acknowledged_write(self):
        dest = self.path("backup")
        done = threading.Event()
        with Load(self.server) as load:
            load.wait_for(400)
            compactor, statuses = self.compact_meanwhile(done)
            try:
                load.wait_for(load.count() + 100)
                before = load.acknowledged()
                r = self.backup(dest)
                load.wait_for(load.count() + 100)  # the writes go on after it
            finally:
                done.set()
                compactor.join(timeout=120)
        self.assertEqual(load.errors, [])
        self.assertEqual(r.status, 200, r.body)
        doc = r.json()
        self.assertEqual(doc["status"], "backed up")
        self.assertEqual(doc["dir"], dest)
        self.assertEqual(doc["volume_id"], "vol-1")
        self.assertGreaterEqual(doc["files_copied"], 1)
        self.assertTrue(statuses and set(statuses) == {200}, statuses)
        self.assertNotIn("LOCK", os.listdir(dest))
        p = run_kvstore("--data-dir", dest, "verify")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assert_serves(dest, before)

    def test_the_destination_must_be_absolute_and_new_or_empty(self):
        self.assertEqual(self.server.request("PUT", "/blobs/k", b"v").status, 201)
        r = self.server.request("POST", "/admin/backup")
        self.assertEqual(r.status, 400)
        self.assertIn("?dir=", r.json()["error"])
        r = self.backup("relative/dir")
        self.assertEqual(r.status, 400)
        self.assertIn("absolute", r.json()["error"])
        busy = self.path("busy")
        os.mkdir(busy)
        with open(os.path.join(busy, "keep"), "w") as f:
            f.write("mine")
        r = self.backup(busy)
        self.assertEqual(r.status, 409)
        self.assertIn("not an empty directory", r.json()["error"])
        self.assertEqual(os.listdir(busy), ["keep"])
        r = self.backup(self.server.data_dir)
        self.assertEqual(r.status, 409)
        r = self.backup(self.path("no/such/parent"))
        self.assertEqual(r.status, 400)
        self.assertIn("parent", r.json()["error"])
        r = self.server.request("GET", "/admin/backup")
        self.assertEqual(r.status, 405)
        self.assertEqual(r.headers["Allow"], "POST")
        empty = self.path("empty")
        os.mkdir(empty)
        self.assertEqual(self.backup(empty).status, 200)
        self.assertEqual(run_kvstore("--data-dir", empty, "get", "k").stdout, b"v")


class HttpBackupWithToken(BackupTestCase):
    ENV = dict(BackupTestCase.ENV, AUTH_TOKEN="s3cret")

    def test_backup_needs_the_token(self):
        dest = self.path("backup")
        url = "/admin/backup?dir=" + urllib.parse.quote(dest)
        r = self.server.request("POST", url)
        self.assertEqual(r.status, 401)
        self.assertFalse(os.path.exists(dest))
        r = self.server.request("POST", url, headers={"Authorization": "Bearer s3cret"})
        self.assertEqual(r.status, 200, r.body)
        self.assertTrue(os.path.isdir(dest))


class CliBackup(BackupTestCase):

    def test_kvstore_backup_beside_a_running_server_under_load_and_compactions(self):
        dest = self.path("backup")
        done = threading.Event()
        with Load(self.server) as load:
            load.wait_for(500)
            before = load.acknowledged()
            # A few compactions beside the backup, which may make it start a
            # pass over; a few, so that it need not give up (that is tested
            # in tests/unit/test_backup.c).
            compactor, statuses = self.compact_meanwhile(done, limit=3)
            try:
                p = run_kvstore("backup", self.server.data_dir, dest)
                load.wait_for(load.count() + 100)
            finally:
                done.set()
                compactor.join(timeout=120)
        self.assertEqual(load.errors, [])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout.decode(), r"^Backed up .* into .*: \d+ keys; \d+ files? linked")
        self.assertTrue(statuses and set(statuses) == {200}, statuses)
        # The check open wrote a snapshot that matches the copy.
        p = run_kvstore("--data-dir", dest, "verify")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn(b"snapshot: valid", p.stdout)
        self.assert_serves(dest, before)

    def test_backup_and_restore_refuse_what_they_cannot_do(self):
        self.assertEqual(self.server.request("PUT", "/blobs/k", b"v").status, 201)
        missing = self.path("typo")
        p = run_kvstore("backup", missing, self.path("b"))
        self.assertEqual(p.returncode, 3)
        self.assertIn(b"%s: no such directory" % missing.encode(), p.stderr)
        self.assertFalse(os.path.exists(self.path("b")))
        busy = self.path("busy")
        os.mkdir(busy)
        open(os.path.join(busy, "x"), "w").close()
        for cmd in ("backup", "restore"):
            p = run_kvstore(cmd, self.server.data_dir, busy)
            self.assertEqual(p.returncode, 3, cmd)
            self.assertIn(b"exists and is not an empty directory", p.stderr)
            self.assertEqual(os.listdir(busy), ["x"])
        p = run_kvstore("backup", self.server.data_dir)
        self.assertEqual(p.returncode, 2)
        self.assertIn(b"usage: kvstore [--data-dir DIR] backup <src> <dest>", p.stderr)
        # Restoring over the running server's directory is refused too.
        p = run_kvstore("restore", self.path("typo"), self.server.data_dir)
        self.assertEqual(p.returncode, 3)


if __name__ == "__main__":
    unittest.main(verbosity=1)
