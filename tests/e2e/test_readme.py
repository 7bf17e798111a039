"""README.md's sessions, replayed against the real programs.

The README shows sessions copied from real runs. Each one is run again here,
read from README.md itself, and its output compared line by line, so that the
README cannot drift from what the programs do:

- "The HTTP server": every `$ curl ...` line against a volume-server on a
  fresh data directory (the port 9002 rewritten to the test server's), each
  command's output against the lines under it;
- "Redis protocol": every `$ redis-cli ...`, `$ curl ...` and
  `$ build/kvstore --connect ...` line against a volume-server on a fresh data
  directory (the ports 6380 and 9002 rewritten to the test server's);
- "The CLI": the `$ build/kvstore --data-dir db` session typed into the real
  kvstore on a pseudo-terminal (build/ rewritten to the build under test), in
  a fresh directory;
- "Using the library": the install commands, then the compile-and-run session,
  with HOME a fresh directory, so that $HOME/.local is the test's own.

Only uptime_secs, duration_ms and Date headers are normalised
(readme_sessions.VARIES). A failure names the command and shows the expected
and the actual line.
"""

import os
import pty
import re
import shlex
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import readme_sessions as rs  # noqa: E402
from cli_support import KVSTORE, read_to_end, read_until  # noqa: E402
from server_harness import BUILD_DIR, Server, sanitized_build  # noqa: E402

README_PORT = "localhost:9002"
README_RESP = ("-p 6380", "127.0.0.1:6380")


def fresh_dir(test, prefix):
    d = tempfile.mkdtemp(prefix=prefix)
    test.addCleanup(shutil.rmtree, d, True)
    return d


class ReadmeHttpSession(unittest.TestCase):
    def test_the_http_session_prints_what_the_readme_shows(self):
        blocks = rs.code_blocks(rs.section(rs.read_readme(), "The HTTP server"))
        steps = rs.shell_session(blocks[0][1])
        self.assertGreater(len(steps), 10, "the HTTP session block was not found")
        server = Server().start()
        self.addCleanup(server.cleanup)
        where = f"localhost:{server.port}"
        commands = []
        for command, expected in steps:
            self.assertIn(README_PORT, command, f"$ {command}: not a request to {README_PORT}")
            commands.append((command.replace(README_PORT, where), expected))
        outputs, _ = rs.run_session(commands, cwd=server.tmp, env=dict(os.environ), timeout=120)
        for (command, expected), actual in zip(steps, outputs):
            problem = rs.mismatch(f"$ {command}", expected, actual)
            if problem:
                self.fail(problem)


class ReadmeRespSession(unittest.TestCase):
    def test_the_redis_protocol_session_prints_what_the_readme_shows(self):
        blocks = rs.code_blocks(rs.section(rs.read_readme(), "Redis protocol"))
        steps = rs.shell_session(blocks[0][1])
        self.assertGreater(len(steps), 10, "the Redis protocol session block was not found")
        server = Server().start()
        self.addCleanup(server.cleanup)
        commands = []
        for command, expected in steps:
            self.assertTrue(any(p in command for p in README_RESP + (README_PORT,)),
                            f"$ {command}: not a request to the README's server")
            command = command.replace(README_PORT, f"localhost:{server.port}")
            command = command.replace("-p 6380", f"-p {server.resp_port}")
            command = command.replace("127.0.0.1:6380", f"127.0.0.1:{server.resp_port}")
            command = command.replace("build/kvstore", KVSTORE)
            commands.append((command, expected))
        outputs, _ = rs.run_session(commands, cwd=server.tmp, env=dict(os.environ), timeout=120)
        for (command, expected), actual in zip(steps, outputs):
            problem = rs.mismatch(f"$ {command}", expected, actual)
            if problem:
                self.fail(problem)


class ReadmeCliSession(unittest.TestCase):
    def test_the_cli_session_prints_what_the_readme_shows(self):
        blocks = rs.code_blocks(rs.section(rs.read_readme(), "The CLI"))
        lines = blocks[0][1]
        m = re.match(r"^\$ build/kvstore (.*)$", lines[0])
        self.assertIsNotNone(m, f"the CLI session starts with {lines[0]!r}")
        args = shlex.split(m.group(1))
        tmp = fresh_dir(self, "kv-readme-cli-")
        home = os.path.join(tmp, "home")
        os.mkdir(home)

        pid, fd = pty.fork()
        if pid == 0:  # the child: the program on the terminal, in the fresh directory
            os.chdir(tmp)
            os.environ.update({"HOME": home, "TERM": "dumb"})
            os.execv(KVSTORE, [KVSTORE] + args)
        try:
            # Type each "> " line once the prompt is there, as a person would.
            out = read_until(fd, re.compile(rb"(^|\n)> $"))
            for line in lines[1:]:
                if not line.startswith("> "):
                    continue
                os.write(fd, line[2:].encode() + b"\r")
                if line[2:] in ("quit", "exit"):
                    out += read_to_end(fd)
                    break
                out += read_until(fd, re.compile(rb"\n> $"))
            else:
                self.fail("the README's CLI session does not end with quit")
        finally:
            _, status = os.waitpid(pid, 0)
            os.close(fd)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0, out)
        actual = rs.output_lines(out.decode("utf-8", "replace"))
        problem = rs.mismatch(f"$ {lines[0][2:]}", lines[1:], actual)
        if problem:
            self.fail(problem)


class ReadmeLibrary(unittest.TestCase):
    def setUp(self):
        if sanitized_build():
            self.skipTest("a sanitizer build's library needs the sanitizer runtime to link")

    def test_the_library_walkthrough_installs_compiles_and_runs(self):
        text = rs.section(rs.read_readme(), "Using the library")
        blocks = rs.code_blocks(text)
        install = [lines for info, lines in blocks if info == "sh"]
        programs = [lines for info, lines in blocks if info == "c"]
        sessions = [lines for info, lines in blocks if info == "" and lines[0].startswith("$ ")]
        self.assertEqual((len(install), len(programs), len(sessions)), (1, 1, 1),
                         "Using the library: one sh block, one c block, one session")
        steps = rs.shell_session(sessions[0])
        source = re.search(r"(\S+\.c)\b", steps[0][0])
        self.assertIsNotNone(source, f"$ {steps[0][0]}: names no .c file")

        tmp = fresh_dir(self, "kv-readme-lib-")
        home, work = os.path.join(tmp, "home"), os.path.join(tmp, "work")
        os.mkdir(home)
        os.mkdir(work)
        with open(os.path.join(work, source.group(1)), "w") as f:
            f.write("\n".join(programs[0]) + "\n")

        # The install commands run in the source tree, the session in a
        # directory of its own, in the same shell (it keeps the exports).
        before = [f"cd {shlex.quote(rs.ROOT)}"] + install[0] + [f"cd {shlex.quote(work)}"]
        outputs, _ = rs.run_session(steps, cwd=work, env=rs.build_env(BUILD_DIR, home),
                                    before=before)
        for (command, expected), actual in zip(steps, outputs):
            problem = rs.mismatch(f"$ {command}", expected, actual)
            if problem:
                self.fail(problem)
        # The programs ran against the test's own installation.
        self.assertTrue(os.path.exists(os.path.join(home, ".local", "include", "kvstore.h")))


if __name__ == "__main__":
    unittest.main(verbosity=2)
