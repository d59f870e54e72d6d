"""Processes and cgroups on this machine, for the cluster's engines: pid files, command lines, signals with a
deadline, what a killed engine left (its containerd, shims, cgroups, mounts), and the Engine API over a unix
socket. Used by lifecycle/cluster.py; nothing here knows the cluster's layout beyond the paths it is given.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path

from lifecycle.context import wait_until

CGROUP_ROOT = Path("/sys/fs/cgroup")
# What `down` may signal by its command line naming the cluster's folder: an engine and what it started.
ENGINE_PROGRAMS = ("dockerd", "containerd", "containerd-shim", "containerd-shim-runc-v2", "docker-proxy", "runc")
API_TIMEOUT = 60  # seconds for one Engine API request over a node's socket


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def read_cmdline(pid: int) -> list[str]:
    """The process's argv ([] when it is gone or unreadable)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0")[:-1]] if raw.endswith(b"\0") else []


def has_run(argv: Sequence[str], run: Sequence[str]) -> bool:
    """`run` appears in argv as consecutive arguments."""
    return any(list(argv[i : i + len(run)]) == list(run) for i in range(len(argv) - len(run) + 1))


def is_engine_of(argv: Sequence[str], pidfile: Path) -> bool:
    """A pid file's pid is ours to signal only while it is the dockerd that writes that very pid file
    (a pid file outlives a reboot; its number may since belong to anything)."""
    return bool(argv) and Path(argv[0]).name == "dockerd" and has_run(argv, ["--pidfile", str(pidfile)])


def names_folder(argv: Sequence[str], folder: Path) -> bool:
    """An engine program whose arguments name a path inside `folder` (`folder/...`, not `folder2/...`)."""
    inside = str(folder).rstrip("/") + "/"
    return (
        bool(argv)
        and Path(argv[0]).name in ENGINE_PROGRAMS
        and any(arg == inside[:-1] or inside in arg for arg in argv[1:])
    )


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (gone, only not yet reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return pid > 0 and state != "Z"


def stop_process(pid: int, deadline: float) -> None:
    """SIGTERM, then SIGKILL once `deadline` seconds have passed."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if wait_until(lambda: not alive(pid), deadline, 0.2, None):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def processes_using(path: Path) -> list[int]:
    """Engine processes whose command line names a path inside `path`: a killed engine's containerd and shims."""
    pids = (int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit())
    return [pid for pid in pids if pid != os.getpid() and names_folder(read_cmdline(pid), path)]


def cgroup_dirs(parent: str) -> list[Path]:
    """Every cgroup directory under the engine's cgroup parent, deepest first."""
    found = [path for tree in CGROUP_ROOT.glob(f"*/{parent}") for path in [tree, *tree.rglob("*")] if path.is_dir()]
    return sorted(found, key=lambda path: len(path.parts), reverse=True)


def empty_cgroups(parent: str) -> None:
    """Stop what is left in the engine's cgroups (containers of a killed engine), then remove them."""
    for directory in cgroup_dirs(parent):
        procs = directory / "cgroup.procs"
        for pid in procs.read_text().split() if procs.exists() else ():
            stop_process(int(pid), 5)
        with contextlib.suppress(OSError):
            directory.rmdir()


def mounts_under(path: Path, mountinfo: str) -> list[str]:
    """Mount points below `path` in /proc/self/mountinfo text, deepest first (a killed engine leaves them)."""
    prefix = str(path).rstrip("/") + "/"
    points = {line.split()[4] for line in mountinfo.splitlines() if len(line.split()) > 4}
    return sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True)


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a node engine's unix socket (the Engine API), standard library only."""

    def __init__(self, path: Path, timeout: float = API_TIMEOUT):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


def engine_post(socket_path: Path, path: str, body: Mapping[str, object]) -> tuple[int, str]:
    """POST a JSON body to the Engine API on a unix socket: (HTTP status, the answer's text)."""
    connection = UnixHTTPConnection(socket_path)
    try:
        connection.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


def api_error(answer: str) -> str:
    """The Engine API's `{"message": ...}` as one line."""
    try:
        message = json.loads(answer).get("message", answer)
    except (ValueError, AttributeError):
        message = answer
    return " ".join(str(message).split())[:300]
