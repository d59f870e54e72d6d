"""lifecycle.runner.piped_input: what db.shell reads when stdin is not a terminal (real pipes and files)."""

from __future__ import annotations

import io
import os
import threading
import time

import pytest

from lifecycle import runner
from lifecycle.context import Context
from lifecycle.errors import UserError
from lifecycle.local import Local
from lifecycle.runner import CHUNK, piped_input
from tests.helpers.recording import RecordingRunner


def test_nothing_to_read_gives_none():
    assert piped_input(io.BytesIO(b"")) is None


def test_dev_null_gives_none():
    with open(os.devnull, "rb") as stream:
        assert piped_input(stream) is None


@pytest.mark.parametrize("stdin", [None, "closed"], ids=["stdin closed (<&-)", "stdin closed by the program"])
def test_closed_stdin_gives_none_without_a_traceback(monkeypatch, stdin):
    if stdin == "closed":
        stdin = io.TextIOWrapper(io.BytesIO(b"SELECT 1;\n"))
        stdin.close()
    monkeypatch.setattr("sys.stdin", stdin)
    assert piped_input() is None


def test_everything_piped_in_comes_out_in_order_and_in_chunks():
    data = os.urandom(CHUNK) * 2 + b"SELECT 1;\n"
    chunks = list(piped_input(io.BytesIO(data)))
    assert b"".join(chunks) == data
    assert max(map(len, chunks)) <= CHUNK


def test_a_writer_still_at_work_is_waited_for():
    """The first read decides, so a pipe whose writer is slow to start is not taken for an empty one."""
    read_end, write_end = os.pipe()

    def write_late():
        time.sleep(0.3)
        os.write(write_end, b"SELECT 1;\n")
        os.close(write_end)

    writer = threading.Thread(target=write_late)
    writer.start()
    with os.fdopen(read_end, "rb") as stream:
        assert b"".join(piped_input(stream)) == b"SELECT 1;\n"
    writer.join()


def test_an_empty_pipe_gives_none():
    read_end, write_end = os.pipe()
    os.close(write_end)
    with os.fdopen(read_end, "rb") as stream:
        assert piped_input(stream) is None


def test_stdin_is_read_as_bytes(monkeypatch):
    """A dump that is not UTF-8 (latin1 data, binary blobs) passes unchanged."""
    data = b"INSERT INTO t VALUES (0x00ff, '\xe9');\n"
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data), encoding="ascii"))
    assert b"".join(piped_input()) == data
    assert runner.stdin_is_terminal() is False


def test_db_shell_with_stdin_closed_refuses_before_running_anything(make_settings, monkeypatch):
    monkeypatch.setattr("sys.stdin", None)
    run = RecordingRunner()
    with pytest.raises(UserError, match=r"^invoke db\.shell has no terminal and nothing piped in .*nothing was run$"):
        Local(Context(make_settings(), run)).db_shell(root=True)
    assert run.calls == []
