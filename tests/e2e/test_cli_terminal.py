"""End-to-end tests of the kvstore REPL on a pseudo-terminal: the banner and
prompt, line editing through libedit (history recall with the up arrow, tab
completion), Ctrl-C, Ctrl-D, SIGTERM, and the history file in $HOME.

Each session runs the real binary under pty.fork(), so the terminal is its
controlling terminal and Ctrl-C raises SIGINT as it does for a user. Every read
waits for an expected text with a deadline.

Run by ctest with KV_BUILD_DIR set to the build directory.
"""

import fcntl
import os
import pty
import signal
import stat
import struct
import termios
import unittest

from cli_support import KVSTORE, TIMEOUT, CliTestCase, read_to_end, read_until

BANNER = b"mini-kvstore (type help for instructions)\r\n"
PROMPT = b"> "
UP = b"\x1b[A"
CTRL_C = b"\x03"
CTRL_D = b"\x04"


class Session:
    """kvstore running on a pseudo-terminal of 24x100, on data_dir (or with
    the options args instead)."""

    def __init__(self, data_dir, env, args=None):
        argv = [KVSTORE] + (args if args is not None else ["--data-dir", data_dir])
        pid, fd = pty.fork()
        if pid == 0:  # the child: becomes kvstore
            try:
                fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
                os.execve(KVSTORE, argv, env)
            finally:
                os._exit(127)
        self.pid = pid
        self.fd = fd
        self.out = b""   # everything the terminal showed
        self.seen = 0    # how much of it expectations have consumed
        self.status = None

    def expect(self, pattern):
        """Waits until pattern (bytes) appears after what earlier calls
        matched; returns the output up to and including it."""
        tail = read_until(self.fd, pattern, self.out[self.seen:], TIMEOUT)
        self.out = self.out[:self.seen] + tail
        end = self.out.index(pattern, self.seen) + len(pattern)
        start, self.seen = self.seen, end
        return self.out[start:end]

    def send(self, data):
        os.write(self.fd, data)

    def command(self, line, reply):
        """Types line and Enter, and waits for reply and the next prompt."""
        self.send(line + b"\r")
        self.expect(line)
        self.expect(b"\r\n" + reply + b"\r\n")
        self.expect(PROMPT)

    def wait_exit(self):
        """Waits for the program to end; returns its exit status."""
        self.out += read_to_end(self.fd, b"", TIMEOUT)
        _, status = os.waitpid(self.pid, 0)
        self.status = os.waitstatus_to_exitcode(status)
        return self.status

    def close(self):
        if self.status is None:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self.status = -signal.SIGKILL
        os.close(self.fd)


class TerminalSession(CliTestCase):
    def start(self, **env):
        e = self.env(TERM="xterm", LANG="C.UTF-8", **env)
        s = Session(self.dir, e)
        self.addCleanup(s.close)
        s.expect(BANNER)
        s.expect(PROMPT)
        return s

    def assertExit(self, session, status):
        got = session.wait_exit()
        self.assertEqual(got, status, f"exit status {got}, wanted {status}; the terminal "
                         f"showed {session.out.decode(errors='replace')}")

    def test_banner_prompt_and_the_originals_replies(self):
        s = self.start()
        s.command(b"set name Alice", b"OK")
        s.command(b"get name", b"Alice")
        s.command(b"get nobody", b"Key not found")
        s.command(b"list", b"  name")
        s.send(b"quit\r")
        self.assertExit(s, 0)

    def test_up_arrow_recalls_earlier_commands_and_runs_them_again(self):
        s = self.start()
        s.command(b"set k v1", b"OK")
        s.command(b"delete k", b"Deleted")
        s.send(UP)
        s.expect(b"delete k")  # the last command, drawn on the empty line
        s.send(UP)
        s.send(b"\r")
        s.expect(b"\r\nOK\r\n")  # the line recalled was `set k v1`: it ran again
        s.expect(PROMPT)
        s.command(b"get k", b"v1")

    def test_ctrl_c_clears_a_half_typed_line_and_keeps_the_session(self):
        s = self.start()
        s.send(b"set lost value")
        s.expect(b"set lost value")
        s.send(CTRL_C)
        s.expect(b"^C\r\n")
        s.expect(PROMPT)
        s.command(b"get lost", b"Key not found")
        s.send(CTRL_C)  # on an empty line too
        s.expect(b"^C\r\n")
        s.expect(PROMPT)
        s.command(b"set kept 1", b"OK")
        s.send(b"quit\r")
        self.assertExit(s, 0)

    def test_ctrl_d_quits_and_writes_the_snapshot(self):
        s = self.start()
        s.command(b"set a 1", b"OK")
        snapshot = os.path.join(self.dir, "index.snapshot")
        self.assertFalse(os.path.exists(snapshot))
        s.send(CTRL_D)
        self.assertExit(s, 0)
        self.assertTrue(os.path.exists(snapshot))
        self.assertIn(b"snapshot: valid, 1 key\n", self.kv("verify").stdout)

    def test_sigterm_at_the_prompt_closes_the_store_cleanly(self):
        s = self.start()
        s.command(b"set a 1", b"OK")
        os.kill(s.pid, signal.SIGTERM)
        self.assertExit(s, 0)
        self.assertTrue(os.path.exists(os.path.join(self.dir, "index.snapshot")))

    def test_history_persists_in_home_for_the_next_session(self):
        s = self.start()
        s.command(b"set persisted 42", b"OK")
        s.send(CTRL_D)
        self.assertExit(s, 0)
        path = os.path.join(self.home, ".kvstore_history")
        self.assertTrue(os.path.exists(path))
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        self.assertNotIn(".kvstore_history", os.listdir(self.dir))

        s = self.start()
        s.send(UP)
        s.expect(b"set persisted 42")
        s.send(b"\r")
        s.expect(b"\r\nOK\r\n")

    def test_without_home_there_is_no_history_file(self):
        s = self.start(HOME=None)
        s.command(b"set a 1", b"OK")
        s.send(CTRL_D)
        self.assertExit(s, 0)
        for d in (self.tmp, self.dir, self.home):
            self.assertNotIn(".kvstore_history", os.listdir(d))

    def test_tab_completes_command_names(self):
        s = self.start()
        s.send(b"comp\t")
        s.expect(b"act ")  # libedit redraws only what changed
        s.send(b"\r")
        s.expect(b"\r\nCompaction finished\r\n")
        s.expect(PROMPT)
        s.send(b"s\t")  # ambiguous: the candidates are listed
        s.expect(b"set  scan  stats  snapshot")
        s.send(b"tats\r")
        s.expect(b"Store Statistics:")

    def test_tab_completes_keys_after_a_key_command(self):
        s = self.start()
        s.command(b"set user:alice 1", b"OK")
        s.command(b"set user:bob 2", b"OK")
        s.send(b"get user:a\t")
        s.expect(b"lice ")
        s.send(b"\r")
        s.expect(b"\r\n1\r\n")

    def test_tab_inside_an_open_double_quote_completes_a_key_with_spaces(self):
        s = self.start()
        s.command(b'set "my key" 1', b"OK")
        s.command(b'set other 2', b"OK")
        s.send(b'get "my k\t')
        s.expect(b'ey" ')  # the word completed and closed (libedit redraws what changed)
        s.send(b"\r")
        s.expect(b"\r\n1\r\n")  # unterminated, the line would be a usage error
        s.expect(PROMPT)
        s.send(b'set "my k\t')  # the key of set completes the same way
        s.expect(b'ey" ')
        s.send(b"3\r")
        s.expect(b"\r\nOK\r\n")
        s.expect(PROMPT)
        s.command(b'get "my key"', b"3")

    def test_tab_in_a_quoted_word_completes_as_far_as_keys_agree_then_lists_them(self):
        s = self.start()
        s.command(b'set "my kettle" 1', b"OK")
        s.command(b'set "my key" 2', b"OK")
        s.command(b'set "tab\\there" 3', b"OK")
        s.send(b"get 'my\t")  # a single quote: the shared part, still open
        s.expect(b'"my ke')
        s.send(b"\t")
        s.expect(b"my kettle  my key")  # they agree no further: listed
        s.send(b'y"\r')
        s.expect(b"\r\n2\r\n")
        s.expect(PROMPT)
        s.send(b'get "tab\t')  # a control byte comes back escaped
        s.expect(b'\\there" ')
        s.send(b"\r")
        s.expect(b"\r\n3\r\n")

    def test_control_bytes_of_a_value_are_escaped_on_a_terminal(self):
        s = self.start()
        s.command(b'set esc "\\x1b[31mred\\x07"', b"OK")
        s.command(b"get esc", b"\\x1b[31mred\\x07")

    def test_a_second_session_on_the_same_directory_exits_3(self):
        self.start()
        e = self.env(TERM="xterm")
        second = Session(self.dir, e)
        self.addCleanup(second.close)
        second.expect(f"kvstore: {self.dir} is in use by another process\r\n".encode())
        self.assertExit(second, 3)
        self.assertNotIn(BANNER, second.out)


if __name__ == "__main__":
    unittest.main(verbosity=1)
