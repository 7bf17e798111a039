"""A small RESP client for the end-to-end tests (not a test itself).

It speaks the protocol byte by byte, with Python's standard library only, so
that the tests can send exactly what they mean (pipelines of any length,
malformed input, inline commands, half a command) and read every reply type
of RESP2 and RESP3. Tests that need a real client library use redis-py and
redis-cli instead.
"""

import socket
import time


class Error(Exception):
    """An error reply (-ERR ..., -NOAUTH ...); str() is its text."""


class Closed(Exception):
    """The server closed the connection."""


def encode(*args):
    """A command as an array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, int):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Conn:
    def __init__(self, port, timeout=30.0, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise Closed("the server closed the connection")
        self.buf += chunk

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            self._fill()

    def _exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def read(self):
        """One reply: bytes, int, None, list, dict, set, bool, float, or an
        Error instance for an error reply (returned, not raised, so that a
        pipeline's replies can be checked in order)."""
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return Error(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if t == b"=":
            data = self._exact(int(rest))
            return data[4:]  # "txt:" or "mkd:"
        if t in (b"*", b"~"):
            n = int(rest)
            if n < 0:
                return None
            items = [self.read() for _ in range(n)]
            return set(items) if t == b"~" else items
        if t == b"%":
            n = int(rest)
            out = {}
            for _ in range(n):
                k = self.read()
                out[k] = self.read()
            return out
        if t == b"_":
            return None
        if t == b"#":
            return rest == b"t"
        if t == b",":
            return float(rest)
        raise AssertionError("unexpected reply line %r" % line)

    def call(self, *args):
        """Sends one command and returns its reply; raises Error for an
        error reply."""
        self.send(encode(*args))
        r = self.read()
        if isinstance(r, Error):
            raise r
        return r

    def pipeline(self, commands):
        """Sends every command at once, then reads one reply for each."""
        self.send(b"".join(encode(*c) for c in commands))
        return [self.read() for _ in commands]

    def read_until_closed(self, timeout=10.0):
        """Everything the server still sends, and whether it closed the
        connection (a reset counts) before timeout."""
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        out = self.buf
        self.buf = b""
        while time.monotonic() < deadline:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                # Closed with our unread bytes in its buffer: the kernel
                # resets rather than ends the stream.
                return out, True
            except socket.timeout:
                break
            if not chunk:
                return out, True
            out += chunk
        return out, False
