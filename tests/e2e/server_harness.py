"""Helpers for the end-to-end tests of volume-server (not a test itself).

Starts the real binary ($KV_BUILD_DIR/volume-server) on 127.0.0.1 with PORT=0
(and RESP_PORT=0) and a fresh data directory, reads the ports the kernel chose
from the start lines the server logs, waits until /health answers there, and stops it with
SIGTERM (SIGKILL after a bounded wait). No port is probed for in advance, so
two tests (or two test runs) can never race for one. Python standard library
only.
"""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import free_ports  # noqa: E402  (scripts/free_ports.py)

BUILD_DIR = os.environ.get("KV_BUILD_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build")
BINARY = os.path.join(BUILD_DIR, "volume-server")

START_TIMEOUT = 20.0  # seconds for /health to answer (sanitizer builds are slow)
STOP_TIMEOUT = 30.0  # seconds for a clean exit after SIGTERM


def sanitized_build():
    """True when the build under test uses a sanitizer (memory figures then
    mean little)."""
    try:
        with open(os.path.join(BUILD_DIR, "CMakeCache.txt")) as f:
            return any(line.startswith(("KV_SANITIZE:BOOL=ON", "KV_TSAN:BOOL=ON"))
                       for line in f)
    except OSError:
        return False


# The start line: "volume-server 0.2.0 listening on http://127.0.0.1:40123 (...)".
LISTENING = re.compile(r"listening on http://(?:\[[^\]]*\]|[^\s:/]+):(\d+)")
# The RESP line before it: "volume-server 0.2.0 speaks RESP on 127.0.0.1:40124".
RESP_LISTENING = re.compile(r"speaks RESP on (?:\[[^\]]*\]|[^\s:/]+):(\d+)")


def free_port():
    """A port that was free a moment ago, for programs that cannot report the
    port they bound (nginx, twemproxy). volume-server takes PORT=0 instead."""
    return free_ports.free_ports(1)[0]


def listening_port(log):
    """The port in the first start line of log, or None before it is out."""
    m = LISTENING.search(log)
    return int(m.group(1)) if m else None


def quote_key(key):
    """Percent-encodes a key (str or bytes) for a /blobs/ path; '/' is kept."""
    return urllib.parse.quote(key, safe="/")


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # http.client.HTTPMessage (case-insensitive)
        self.body = body

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<Response %d %r>" % (self.status, self.body[:200])


class Server:
    """One volume-server process with its own data directory and log file."""

    def __init__(self, env=None, args=(), data_dir=None):
        self.tmp = tempfile.mkdtemp(prefix="vs-e2e-")
        self.data_dir = data_dir or os.path.join(self.tmp, "data")
        self.port = None  # known once the server has logged its start line
        self.resp_port = None  # the same, for RESP (None when RESP_PORT=off)
        self.env = dict(os.environ)
        self.env.update({"PORT": "0", "RESP_PORT": "0", "DATA_DIR": self.data_dir,
                         "HOST": "127.0.0.1", "LOG_LEVEL": "info",
                         "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0",
                         "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"})
        self.env.update(env or {})
        self.args = list(args)
        self.proc = None
        self.log_path = os.path.join(self.tmp, "server.log")
        self.returncode = None

    # -- life cycle --------------------------------------------------------
    def start(self):
        self.log_file = open(self.log_path, "ab")
        self.log_start = self.log_file.tell()  # this run's lines follow
        self.port = None
        self.proc = subprocess.Popen([BINARY] + self.args, env=self.env,
                                     stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=self.log_file)
        self.wait_ready()
        return self

    def wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("volume-server exited with %d:\n%s" %
                                   (self.proc.returncode, self.log()))
            # The start line is written once the server serves; it names the
            # port (the one PORT=0 made the kernel choose).
            started = self.log(since=self.log_start)
            self.port = listening_port(started)
            if self.port is not None:
                m = RESP_LISTENING.search(started)
                self.resp_port = int(m.group(1)) if m else None
                try:
                    r = self.request("GET", "/health", timeout=2)
                    if r.status == 200:
                        return
                except (ConnectionRefusedError, ConnectionResetError,
                        http.client.HTTPException, socket.timeout):
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError("volume-server did not start serving:\n" + self.log())
            time.sleep(0.02)  # not started yet: look again (bounded)

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=STOP_TIMEOUT):
        """Waits for the process to exit; kills it after timeout."""
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.returncode = self.proc.wait()
            raise AssertionError("volume-server did not exit within %ss:\n%s" %
                                 (timeout, self.log()))
        finally:
            self.log_file.close()
        return self.returncode

    def stop(self, sig=signal.SIGTERM):
        """Stops the server; returns its exit status."""
        if self.proc is None or self.proc.poll() is not None:
            if self.proc is not None:
                self.returncode = self.proc.returncode
                if not self.log_file.closed:
                    self.log_file.close()
            return self.returncode
        self.send_signal(sig)
        return self.wait()

    def cleanup(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def log(self, since=0):
        """The server's log (from byte offset since)."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    # -- clients -----------------------------------------------------------
    def connection(self, timeout=30):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=30, conn=None):
        """One request; on a new connection unless conn is given."""
        own = conn is None
        c = conn or self.connection(timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            resp = c.getresponse()
            data = resp.read()
            return Response(resp.status, resp.headers, data)
        finally:
            if own:
                c.close()

    def upload(self, method, path, body, headers=None, timeout=30):
        """A request whose body the server may refuse before reading it: a
        failure to send the body is ignored and the response read."""
        c = self.connection(timeout)
        try:
            c.putrequest(method, path)
            c.putheader("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                c.putheader(name, value)
            c.endheaders()
            try:
                c.send(body)
            except (BrokenPipeError, ConnectionResetError):
                pass
            resp = c.getresponse()
            return Response(resp.status, resp.headers, resp.read())
        finally:
            c.close()

    def raw(self, data, timeout=5.0):
        """Sends raw bytes on a new socket and returns all it reads until the
        server closes or timeout passes."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        out = b""
        try:
            s.sendall(data)
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except (socket.timeout, ConnectionResetError, BrokenPipeError):
            pass
        finally:
            s.close()
        return out


def stop_and_check(test, server):
    """Stops server with SIGTERM; checks exit status 0 and a clean log."""
    try:
        rc = server.stop()
        test.assertEqual(rc, 0, "exit status after SIGTERM\n" + server.log())
        assert_clean_log(test, server.log())
    finally:
        server.cleanup()


class ServerTestCase(unittest.TestCase):
    """One server (fresh data directory) for all the tests of a class, which
    use keys of their own; subclasses set ENV. The server must stop cleanly
    (exit 0, no sanitizer report) when the class is done."""

    ENV = {}

    @classmethod
    def setUpClass(cls):
        cls.server = Server(env=cls.ENV).start()

    @classmethod
    def tearDownClass(cls):
        stop_and_check(unittest.TestCase(), cls.server)

    def put(self, key, body, headers=None):
        return self.server.request("PUT", "/blobs/" + quote_key(key), body, headers)

    def get(self, key, headers=None, method="GET"):
        return self.server.request(method, "/blobs/" + quote_key(key), None, headers)


def assert_clean_log(test, log):
    """No sanitizer report and no crash in a server's log."""
    for marker in ("AddressSanitizer", "LeakSanitizer", "ThreadSanitizer", "runtime error:",
                   "UndefinedBehaviorSanitizer", "Segmentation fault"):
        test.assertNotIn(marker, log, "sanitizer or crash report in the log:\n" + log)
