"""The thin edge where argument lists become processes.

Everything else in the package builds commands as lists and decides; a `Runner` only runs them.
Invoke tasks wrap their `Context` (so `MockContext` stands in for tests and `invoke --dry` prints
without running); Nox sessions and the engine bootstrap (which runs before any virtual environment
exists) use `SubprocessRunner`, which keeps the exit status that a session must pass on. Every
runner prints the command before running it.
"""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from lifecycle.errors import CommandFailed


@dataclass(frozen=True)
class Result:
    return_code: int
    stdout: str = ""
    stderr: str = ""  # only with capture: what a failed probe or push said

    @property
    def ok(self) -> bool:
        return self.return_code == 0


class Runner(Protocol):
    def __call__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        warn: bool = False,
        capture: bool = False,
        interactive: bool = False,
        timeout: float | None = None,
    ) -> Result:
        """Run argv; raise on failure unless warn; with capture, return stdout and stderr and keep both off the
        terminal (probes whose failure is an answer); give it the terminal when interactive; stop it
        after `timeout` seconds (exit status 124, as timeout(1) gives)."""


CHUNK = 1 << 20  # bytes per read: memory stays flat whatever the size of the stream


class Terminated(KeyboardInterrupt):
    """SIGTERM (timeout(1), a CI job cancelled or timed out) turned into an interrupt: whatever a task or session
    does on Ctrl-C (its `finally` clean-ups) it does on SIGTERM too."""


def interrupt_on_sigterm() -> None:
    """From now on SIGTERM raises `Terminated` in the main thread, once; a further SIGTERM while the clean-up runs is
    reported and otherwise ignored, so the clean-up finishes (SIGKILL still stops everything at once). Children
    started later get the default SIGTERM again (a Python handler is not inherited through exec)."""
    if threading.current_thread() is not threading.main_thread():
        return

    def cleaning_up(signum, frame) -> None:
        print("terminated again: still cleaning up (SIGKILL stops at once)", file=sys.stderr, flush=True)

    def terminate(signum, frame) -> None:
        signal.signal(signal.SIGTERM, cleaning_up)
        print("terminated: cleaning up as on Ctrl-C", file=sys.stderr, flush=True)
        raise Terminated()

    signal.signal(signal.SIGTERM, terminate)


TIMED_OUT = 124  # the exit statuses a shell gives: timeout(1), and a program that is not installed
NOT_FOUND = 127


@dataclass
class SubprocessRunner:
    """Runs commands directly (nox sessions, the bootstrap), printing each first."""

    echo: bool = True

    def __call__(self, argv, *, env=None, warn=False, capture=False, interactive=False, timeout=None) -> Result:
        if self.echo:
            print(f"+ {shlex.join(argv)}", file=sys.stderr, flush=True)
        pipe = subprocess.PIPE if capture else None
        try:
            with subprocess.Popen(
                list(argv), env=dict(env) if env is not None else None, text=True, stdout=pipe, stderr=pipe
            ) as process:
                try:
                    out, err = process.communicate(timeout=timeout)
                    result = Result(process.returncode, out or "", err or "")
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.communicate()
                    result = Result(TIMED_OUT)
                except KeyboardInterrupt as interrupt:
                    let_it_clean_up(process, interrupt)
                    raise
        except FileNotFoundError:
            result = Result(NOT_FOUND)
        if result.return_code and not warn:
            raise CommandFailed(argv, result.return_code)
        return result


CHILD_CLEANUP_S = 300  # how long an interrupted command may take to remove what it made (a test run's fixtures)


def let_it_clean_up(process: subprocess.Popen, interrupt: KeyboardInterrupt) -> None:
    """An interrupted command (a task or session run as a process) gets to clean up as this process does: Ctrl-C
    reached it already (same process group); SIGTERM may have reached only this process, so it is passed on. It is
    killed only after CHILD_CLEANUP_S, or at a second Ctrl-C."""
    try:
        if isinstance(interrupt, Terminated) and process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.communicate(timeout=CHILD_CLEANUP_S)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        process.kill()
        process.wait()


def stdin_is_open() -> bool:
    """False when stdin is closed (`<&-`, as in some CI runners and cron): sys.stdin is then None."""
    return sys.stdin is not None and not sys.stdin.closed


def stdin_is_terminal() -> bool:
    """False also when stdin is closed or redirected (`</dev/null`)."""
    try:
        return stdin_is_open() and sys.stdin.isatty()
    except (OSError, ValueError):
        return False


def piped_input(stream: BinaryIO | None = None) -> Iterator[bytes] | None:
    """What is piped into stdin (`stream`: sys.stdin's bytes), chunk by chunk; None when there is nothing to read:
    stdin closed, `/dev/null`, an empty file, a pipe whose writer wrote nothing. The first read decides (it waits
    for a writer still at work); the rest streams on, so a dump of any size is never whole in memory."""
    if stream is None:
        if not stdin_is_open():
            return None
        stream = sys.stdin.buffer
    first = stream.read1(CHUNK)
    if not first:
        return None

    def chunks() -> Iterator[bytes]:
        yield first
        while chunk := stream.read1(CHUNK):
            yield chunk

    return chunks()


@dataclass
class InvokeRunner:
    """Runs through an Invoke Context, so `invoke --dry` and `MockContext` work unchanged.

    Only interactive commands get our stdin (and a pty when it is a terminal); the others get none, so closed
    or redirected stdin never reaches them."""

    context: object

    def __call__(self, argv, *, env=None, warn=False, capture=False, interactive=False, timeout=None) -> Result:
        attach = interactive and stdin_is_open()
        deadline = {} if timeout is None else {"timeout": timeout}
        result = self.context.run(
            shlex.join(argv),
            env=dict(env or {}),
            warn=warn,
            hide="both" if capture else None,
            echo=True,
            pty=attach and stdin_is_terminal(),
            in_stream=None if attach else False,
            **deadline,
        )
        return Result(result.return_code, result.stdout or "", result.stderr or "")


class Streams(Protocol):
    def stream_out(self, argv: Sequence[str], sink: Callable[[bytes], None], *, env: Mapping[str, str]) -> int:
        """Run argv, handing its stdout to sink chunk by chunk; return the exit status."""

    def stream_in(self, argv: Sequence[str], chunks: Iterable[bytes], *, env: Mapping[str, str]) -> int:
        """Run argv with chunks on its stdin; return the exit status."""


@dataclass
class ProcessStreams:
    """The streaming edge: a process's stdout into Python (or Python into its stdin), never whole in memory."""

    def stream_out(self, argv, sink, *, env) -> int:
        print(f"+ {shlex.join(argv)}", file=sys.stderr, flush=True)
        with subprocess.Popen(list(argv), stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, env=dict(env)) as process:
            while chunk := process.stdout.read(CHUNK):
                sink(chunk)
        return process.returncode

    def stream_in(self, argv, chunks, *, env) -> int:
        print(f"+ {shlex.join(argv)} < stream", file=sys.stderr, flush=True)
        with subprocess.Popen(list(argv), stdin=subprocess.PIPE, env=dict(env)) as process:
            try:
                for chunk in chunks:
                    process.stdin.write(chunk)
                process.stdin.close()
            except BrokenPipeError:  # the client gave up; its exit status says why
                pass
        return process.returncode


def spawn(argv: Sequence[str], log: Path, *, cwd: Path | None = None, dry: bool = False) -> int | None:
    """Start a long-running process (an engine, a relay) in its own session, so Ctrl-C in the terminal reaches
    only the task, which then stops it on purpose; output goes to `log`. Prints argv first; returns the pid."""
    print(f"+ {shlex.join(argv)} >{log} 2>&1 &", file=sys.stderr, flush=True)
    if dry:
        return None
    with open(log, "ab") as output:
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return process.pid
