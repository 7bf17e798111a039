"""Reading README.md's code blocks and replaying its shell sessions (helpers
for test_readme.py and test_install.py; not a test itself).

A session block holds commands after "$ " and, under each, the lines it
printed. Only what truly varies between runs is normalised, the same way in
the README and in the actual output (VARIES). A session block cannot show an
output that lacks a final newline, nor the CR of an HTTP header line's CR LF,
so outputs are compared as lists of lines.
"""

import os
import re
import subprocess

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
README = os.path.join(ROOT, "README.md")

# What differs from one run to the next, and nothing else.
VARIES = [
    (re.compile(r'"uptime_secs":\d+'), '"uptime_secs":<seconds>'),
    (re.compile(r'"duration_ms":\d+'), '"duration_ms":<ms>'),
    (re.compile(r"^Date: .*$"), "Date: <date>"),
]

# Marks the start of command i's output in a replayed session.
MARK = "\x1e%s\x1e"
MARK_RE = re.compile("\n\x1e(\\w+)\x1e\n")


def read_readme():
    with open(README, encoding="utf-8") as f:
        return f.read()


def section(text, title):
    """The body of the section whose heading is `title` (any level), up to the
    next heading of the same or a higher level. Fails when there is none."""
    lines = text.split("\n")
    fence = False
    start = level = None
    for i, line in enumerate(lines):
        if line.startswith("```"):
            fence = not fence
        if fence:
            continue
        m = re.match(r"^(#+) (.*)$", line)
        if not m:
            continue
        if start is None:
            if m.group(2).strip() == title:
                start, level = i + 1, len(m.group(1))
        elif len(m.group(1)) <= level:
            return "\n".join(lines[start:i])
    if start is None:
        raise AssertionError(f"README.md has no section titled {title!r}")
    return "\n".join(lines[start:])


def code_blocks(text):
    """The fenced blocks of text, in order, as (info string, list of lines)."""
    blocks = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        m = re.match(r"^```(.*)$", lines[i])
        if m:
            end = lines.index("```", i + 1)
            blocks.append((m.group(1).strip(), lines[i + 1:end]))
            i = end
        i += 1
    return blocks


def shell_session(lines):
    """Splits a session block into [(command, [expected output lines])]."""
    steps = []
    for line in lines:
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps:
            steps[-1][1].append(line)
        else:
            raise AssertionError(f"a session block starts with {line!r}, not a $ command")
    return steps


def normalise(lines):
    out = []
    for line in lines:
        for pattern, replacement in VARIES:
            line = pattern.sub(replacement, line)
        out.append(line)
    return out


def output_lines(text):
    """The lines of a command's output: CR LF read as LF, no final newline
    needed."""
    if not text:
        return []
    text = text.replace("\r\n", "\n")
    return (text[:-1] if text.endswith("\n") else text).split("\n")


def mismatch(where, expected, actual):
    """None when the lines agree after normalising; else a message showing
    the first line that differs, the expected and the actual output."""
    exp, act = normalise(expected), normalise(actual)
    if exp == act:
        return None
    n = next((i for i in range(min(len(exp), len(act))) if exp[i] != act[i]),
             min(len(exp), len(act)))
    want = repr(expected[n]) if n < len(expected) else "(no more lines)"
    got = repr(actual[n]) if n < len(actual) else "(no more lines)"
    return (f"{where}: output line {n + 1} differs from README.md\n"
            f"  README.md: {want}\n"
            f"  actual:    {got}\n"
            "README.md shows:\n" + "".join(f"  | {x}\n" for x in expected) +
            "the program printed:\n" + "".join(f"  | {x}\n" for x in actual))


def run_session(steps, cwd, env, before=(), timeout=600):
    """Runs `before` (commands whose output is not compared) and then each
    step's command in one bash, in order, stopping at the first failure.
    Returns (outputs, result): outputs[i] is the lines step i printed."""
    script = ["set -e"] + list(before)
    for i, (command, _) in enumerate(steps):
        script += [f"printf '\\n{MARK % i}\\n'", command]
    script.append(f"printf '\\n{MARK % 'end'}\\n'")
    result = subprocess.run(["bash", "-c", "\n".join(script)], cwd=cwd, env=env,
                            capture_output=True, timeout=timeout)
    parts = MARK_RE.split(result.stdout.decode("utf-8", "replace"))
    outputs = {}
    for i in range(1, len(parts) - 1, 2):
        outputs[parts[i]] = parts[i + 1]
    if result.returncode != 0 or "end" not in outputs:
        failed = len([k for k in outputs if k != "end"]) - 1
        what = f"$ {steps[failed][0]}" if failed >= 0 else "the commands before the session"
        raise AssertionError(
            f"{what}\nexited with status {result.returncode}\n"
            f"stdout:\n{result.stdout.decode('utf-8', 'replace')[-4000:]}\n"
            f"stderr:\n{result.stderr.decode('utf-8', 'replace')[-4000:]}")
    return [output_lines(outputs[str(i)]) for i in range(len(steps))], result


def build_env(build_dir, home):
    """The environment for running README commands: a private HOME, BUILD the
    build directory under test, and nothing inherited from an outer make or
    from the caller's pkg-config and loader settings."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "PKG_CONFIG_PATH",
                        "LD_LIBRARY_PATH", "DESTDIR", "PREFIX", "CFLAGS", "LDFLAGS")}
    env.update({"HOME": home, "BUILD": os.path.abspath(build_dir), "LC_ALL": "C"})
    return env
