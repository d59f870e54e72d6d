"""Running the front ends as a user does (`python -m invoke|nox`, without a terminal) and reading what they said."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.helpers import CHECKOUT
from tests.helpers.engine import docker, wait_for

# The Python whose invoke and nox run the tasks: the nox session's (PYTHON_FOR_TASKS), else the one running pytest.
PYTHON_FOR_TASKS = os.environ.get("PYTHON_FOR_TASKS", sys.executable)
INVOKE_TIMEOUT = 300  # seconds for a task that does not build
BUILD_TIMEOUT = 1800  # seconds for a build: minutes when the layer cache is cold, seconds when warm
UP_TIMEOUT = 600  # seconds: invoke up builds (cached) and waits for health (its own deadline is 180 s)
HEALTH_TIMEOUT = 90
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def strip_ansi(text: str) -> str:
    return ANSI.sub("", text)


def invoke_argv() -> list[str]:
    """The invoke CLI of the nox session (PYTHON_FOR_TASKS), else of the interpreter running pytest."""
    return [PYTHON_FOR_TASKS, "-m", "invoke"]


COMBINED_OUTPUT = {"stdin": subprocess.DEVNULL, "stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}


def run_combined(
    argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run argv without a terminal; its stdout and stderr, combined, are .stdout. env is the whole environment
    (None: this process's)."""
    return subprocess.run(
        list(argv), cwd=cwd, env=dict(env) if env is not None else None, timeout=timeout, check=False, **COMBINED_OUTPUT
    )


def tool_env(env: Mapping[str, str] | None = None, drop: Sequence[str] = ()) -> dict[str, str]:
    """This process's environment plus env, without the names in drop."""
    full = {**os.environ, **(env or {})}
    for name in drop:
        full.pop(name, None)
    return full


def run_tool(
    module: str,
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: Path = CHECKOUT,
    timeout: float = 900,
    drop: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """`python -m invoke|nox ARGS` (PYTHON_FOR_TASKS) with the environment plus env, minus drop, without a terminal;
    stdout and stderr combined in .stdout."""
    return run_combined([PYTHON_FOR_TASKS, "-m", module, *args], env=tool_env(env, drop), cwd=cwd, timeout=timeout)


def start_tool(
    module: str, *args: str, env: Mapping[str, str] | None = None, cwd: Path = CHECKOUT, drop: Sequence[str] = ()
) -> subprocess.Popen[str]:
    """run_tool's command started and not waited for, in a session of its own (so a test can signal its group)."""
    return subprocess.Popen(
        [PYTHON_FOR_TASKS, "-m", module, *args],
        cwd=cwd,
        env=tool_env(env, drop),
        start_new_session=True,
        **COMBINED_OUTPUT,
    )


def interrupt_when_running(process: subprocess.Popen[str], container: str, what: str) -> str:
    """Wait until container runs, SIGINT the process's group (as Ctrl-C does), return the process's output.

    The process must run in a session of its own (start_tool); it is killed if it outlives the deadline."""
    try:

        def running():
            if process.poll() is not None:
                raise AssertionError(f"{what} ended before pytest ran: {process.stdout.read()[-3000:]}")
            listed = docker("ps", "--quiet", "--filter", f"name=^{container}$", "--filter", "status=running").stdout
            return listed.strip()

        wait_for(running, timeout=1200, what="the pytest container to run", interval=1)
        time.sleep(3)  # pytest is collecting or sleeping in the slow test
        os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=180)
        return output
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def nonblank_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def last_line(text: str) -> str:
    """The last non-blank line ('' when there is none)."""
    lines = nonblank_lines(text)
    return lines[-1] if lines else ""


def assert_one_line(output: str, *words: str) -> str:
    """The last non-empty line names every word; nothing anywhere is a traceback."""
    line = last_line(output)
    assert "Traceback" not in output, output[-3000:]
    for word in words:
        assert word in line, f"{word!r} not in the last line {line!r}\n{output[-3000:]}"
    return line


def describe(done: subprocess.CompletedProcess[str]) -> str:
    """A failed command's exit status and output, for assertion messages."""
    return f"exit {done.returncode}\n--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}"
