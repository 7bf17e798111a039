"""End-to-end test of volume-server on a full disk: a small tmpfs mounted by
the test holds the data directory. The upload that finds no space gets 507,
every blob stored before it reads back, the partial record is gone, and once
space is freed uploads succeed again and survive a restart.

Mounting needs root; where it is refused the test is skipped with the reason.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_harness import Server  # noqa: E402

FS_BYTES = 4 * 1024 * 1024
BLOB = 256 * 1024


def blob(i):
    return bytes((i * 131 + j) % 251 for j in range(BLOB))


class DiskFull(unittest.TestCase):

    def setUp(self):
        self.mnt = tempfile.mkdtemp(prefix="vs-full-")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%d" % FS_BYTES, "tmpfs",
                            self.mnt], capture_output=True, text=True)
        if r.returncode != 0:
            os.rmdir(self.mnt)
            self.skipTest("cannot mount a tmpfs here: " + (r.stderr.strip() or "refused"))
        self.data = os.path.join(self.mnt, "data")
        self.server = None

    def tearDown(self):
        if self.server and self.server.proc and self.server.proc.poll() is None:
            self.server.stop()
        subprocess.run(["umount", self.mnt], check=False)
        os.rmdir(self.mnt)
        if self.server:
            shutil.rmtree(self.server.tmp, ignore_errors=True)

    def start(self):
        self.server = Server(env={"SEGMENT_SIZE_MB": "1", "COMPACTION_INTERVAL_SECS": "0"},
                             data_dir=self.data).start()
        return self.server

    def test_full_disk_gives_507_keeps_stored_blobs_and_recovers_when_space_returns(self):
        # Room that the test frees later: a file beside the data directory.
        filler = os.path.join(self.mnt, "filler")
        with open(filler, "wb") as f:
            f.write(b"\0" * (512 * 1024))
        s = self.start()
        stored = []
        status = None
        for i in range(64):  # 16 MiB would be four times the file system
            r = s.upload("PUT", "/blobs/b%d" % i, blob(i))
            status = r.status
            if status != 201:
                break
            stored.append(i)
        self.assertEqual(status, 507, "the upload that found no space: %d" % status)
        self.assertIn("error", r.json())
        self.assertGreater(len(stored), 4)
        for i in stored:
            r = s.request("GET", "/blobs/b%d" % i)
            self.assertEqual(r.status, 200)
            self.assertEqual(r.body, blob(i), "blob b%d after the failed upload" % i)
        failed = "b%d" % (stored[-1] + 1)
        self.assertEqual(s.request("GET", "/blobs/" + failed).status, 404)

        os.remove(filler)  # space returns
        r = s.upload("PUT", "/blobs/after", blob(999))
        self.assertEqual(r.status, 201, r.body)
        s.stop()
        self.assertEqual(s.returncode, 0, s.log())

        # After a restart: the partial record left no damage, and every
        # acknowledged blob, the one written after the fault included, is back.
        s = self.start()
        metrics = s.request("GET", "/metrics").json()
        self.assertEqual(metrics["checksum_errors"], 0)
        self.assertEqual(metrics["torn_bytes_truncated"], 0)
        for i in stored:
            self.assertEqual(s.request("GET", "/blobs/b%d" % i).body, blob(i))
        self.assertEqual(s.request("GET", "/blobs/after").body, blob(999))
        self.assertEqual(s.request("GET", "/blobs/" + failed).status, 404)


if __name__ == "__main__":
    unittest.main()
