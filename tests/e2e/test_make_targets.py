"""`make run` and `make server` as a newcomer types them: the build before
the program says one line (warnings and errors would show too), not make's
directory chatter and cmake's progress; then the program's own output.
"""

import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import readme_sessions as rs  # noqa: E402
from server_harness import BUILD_DIR  # noqa: E402

TIMEOUT = 280  # seconds: make builds whatever is not up to date first
BUILT = f"built {os.path.abspath(BUILD_DIR)}/ (log: {os.path.abspath(BUILD_DIR)}/build.log)"
SERVER_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT[0-9:.]+Z (error|warn|info|debug) ")


class QuietMakeTargets(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kv-make-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.env = rs.build_env(BUILD_DIR, os.path.join(self.tmp, "home"))

    def test_make_run_prints_one_line_for_the_build_then_the_cli(self):
        data = os.path.join(self.tmp, "db")
        r = subprocess.run(["make", "run", f"DATA_DIR={data}"], cwd=rs.ROOT, env=self.env,
                           input=b"set k v\ncount\n", capture_output=True, timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual(r.stdout.decode().splitlines(), [BUILT, "OK", "1"])
        self.assertEqual(r.stderr.decode(), "")

    def test_make_server_prints_one_line_for_the_build_then_the_server_log(self):
        env = dict(self.env, PORT="0", RESP_PORT="0", HOST="127.0.0.1",
                   DATA_DIR=os.path.join(self.tmp, "data"))
        p = subprocess.Popen(["make", "server"], cwd=rs.ROOT, env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             start_new_session=True)
        out = b""
        try:
            deadline = time.monotonic() + TIMEOUT
            while b"listening on" not in out:  # bounded wait for the start line
                remaining = deadline - time.monotonic()
                self.assertGreater(remaining, 0, f"no start line; got {out!r}")
                ready, _, _ = select.select([p.stdout], [], [], remaining)
                chunk = os.read(p.stdout.fileno(), 65536) if ready else b""
                if ready and not chunk:
                    self.fail(f"make server ended: {out!r}")
                out += chunk
        finally:
            os.killpg(p.pid, signal.SIGINT)  # as Ctrl-C on the terminal
            p.wait(timeout=60)
            p.stdout.close()
        lines = out.decode().splitlines()
        self.assertEqual(lines[0], BUILT, out)
        for line in lines[1:]:
            self.assertRegex(line, SERVER_LOG_LINE, "make server printed more than the build line")


if __name__ == "__main__":
    unittest.main(verbosity=2)
