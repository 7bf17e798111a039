"""Helpers shared by the end-to-end tests of the kvstore CLI (test_cli*.py).

Every test gets a fresh temporary directory holding its data directory and a
home directory (for the history file), and every wait on a child process is
bounded: reads wait for an expected text with a deadline, never for a fixed
time.
"""

import os
import re
import select
import shutil
import subprocess
import tempfile
import time
import unittest

BUILD_DIR = os.environ.get(
    "KV_BUILD_DIR",
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "build"),
)
KVSTORE = os.path.abspath(os.path.join(BUILD_DIR, "kvstore"))

# Upper bound for any single wait on the program; runs take milliseconds.
TIMEOUT = 20


def read_until(fd, pattern, buf=b"", timeout=TIMEOUT):
    """Reads fd until pattern (bytes, or a compiled bytes regex) occurs in
    what was read; returns everything read, buf included. Fails the test,
    showing what did arrive, at end of output or after timeout seconds."""
    found = (lambda b: pattern.search(b)) if isinstance(pattern, re.Pattern) else (
        lambda b: pattern in b)
    deadline = time.monotonic() + timeout
    while not found(buf):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"timed out waiting for {pattern!r}; got {buf!r}")
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # a pty master reports EIO once the child is gone
            chunk = b""
        if not chunk:
            raise AssertionError(f"output ended while waiting for {pattern!r}; got {buf!r}")
        buf += chunk
    return buf


def read_to_end(fd, buf=b"", timeout=TIMEOUT):
    """Reads fd until end of output; returns everything read."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"timed out waiting for the end of output; got {buf!r}")
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            return buf
        if not chunk:
            return buf
        buf += chunk


class CliTestCase(unittest.TestCase):
    """A fresh data directory (self.dir, not created) and home directory
    (self.home) for each test."""

    @classmethod
    def setUpClass(cls):
        if not os.access(KVSTORE, os.X_OK):
            raise AssertionError(f"{KVSTORE} is not built (set KV_BUILD_DIR)")

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kvcli-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.dir = os.path.join(self.tmp, "db")
        self.home = os.path.join(self.tmp, "home")
        os.mkdir(self.home)

    def env(self, **changes):
        env = dict(os.environ)
        env["HOME"] = self.home
        for name, value in changes.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    def kv(self, *args, input=b"", data_dir=None):
        """Runs kvstore --data-dir DIR ARGS with input on a pipe (so with no
        ARGS it runs input as a script)."""
        return subprocess.run(
            [KVSTORE, "--data-dir", data_dir or self.dir, *args],
            input=input,
            capture_output=True,
            timeout=TIMEOUT,
            env=self.env(),
            cwd=self.tmp,
        )

    def script(self, text, data_dir=None):
        return self.kv(input=text.encode(), data_dir=data_dir)

    def assertStatus(self, result, status):
        self.assertEqual(
            result.returncode, status,
            f"exit status {result.returncode}, wanted {status}; "
            f"stdout {result.stdout!r}; stderr {result.stderr!r}")
