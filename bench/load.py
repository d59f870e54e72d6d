"""Load generation: wrk (installed with apt-get when missing), its output parsed, and a Python fallback.

Every request goes to 127.0.0.1; every load run is bounded by its duration.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lifecycle.errors import UserError
from lifecycle.runner import Runner

HTTPS_HEADER = ("X-Forwarded-Proto", "https")  # prod redirects plain HTTP; the proxy in front would set this

_TIME_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_TIME = re.compile(r"^([\d.]+)(us|ms|s|m|h)$")
_SOCKET_ERRORS = ("connect", "read", "write", "timeout")


def to_ms(text: str) -> float:
    """A wrk duration (`635.91us`, `1.20ms`, `2.00s`, `1.00m`) in milliseconds."""
    match = _TIME.match(text.strip())
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _TIME_UNITS[match.group(2)]


def parse_wrk(output: str) -> dict[str, Any]:
    """The numbers of one `wrk --latency` run: requests, req/s, latency percentiles (ms) and errors.

    `errors` is socket errors (connect, read, write, timeout) plus wrk's "Non-2xx or 3xx responses"
    (a redirect counts as success for wrk; the serve section checks each URL answers 200 before loading it).
    """
    result: dict[str, Any] = {
        "requests": None,
        "seconds": None,
        "rps": None,
        "non_2xx": 0,
        "socket": dict.fromkeys(_SOCKET_ERRORS, 0),
    }
    for pct in ("50", "75", "90", "99"):
        match = re.search(rf"^\s*{pct}%\s+(\S+)\s*$", output, re.M)
        result[f"p{pct}_ms"] = to_ms(match.group(1)) if match else None
    match = re.search(r"^\s*(\d+) requests in (\S+),", output, re.M)
    if match:
        result["requests"] = int(match.group(1))
        result["seconds"] = to_ms(match.group(2)) / 1000
    match = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    if match:
        result["rps"] = float(match.group(1))
    match = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if match:
        result["socket"] = dict(zip(_SOCKET_ERRORS, map(int, match.groups()), strict=True))
    match = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if match:
        result["non_2xx"] = int(match.group(1))
    if result["rps"] is None or result["requests"] is None:
        raise ValueError("wrk output without a request count or Requests/sec line:\n" + output[-400:])
    result["errors"] = result["non_2xx"] + sum(result["socket"].values())
    return result


@dataclass(frozen=True)
class Pinning:
    """Which CPUs the load generator runs on, and which the measured containers get: apart, so wrk's own work
    does not eat into what is measured."""

    generator: str  # a taskset/cpuset list: "3" or "6-7"
    stack: str
    generator_cpus: int


def pinning(cpus: int) -> Pinning | None:
    """A quarter of the CPUs (at least one) for the load generator, the rest for the stack; None below 4 CPUs, where
    the stack would lose half its cores or more and the numbers would measure a smaller machine."""
    if cpus < 4:
        return None
    generator = max(1, cpus // 4)
    first = cpus - generator
    return Pinning(str(first) if generator == 1 else f"{first}-{cpus - 1}", f"0-{first - 1}", generator)


def pinning_note(found: Pinning | None, cpus: int) -> str:
    if found is None:
        return f"not pinned: {cpus} CPUs (pinning needs 4: the stack would lose half its cores)"
    return f"wrk on CPUs {found.generator}, the containers on {found.stack} (taskset, docker update --cpuset-cpus)"


def wrk_argv(
    url: str, connections: int, duration: int, headers: Sequence[tuple[str, str]] = (), pin: Pinning | None = None
) -> list[str]:
    cpus = pin.generator_cpus if pin else os.cpu_count() or 1
    threads = max(1, min(connections, cpus))
    argv = ["wrk", "--latency", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s"]
    for name, value in headers:
        argv += ["-H", f"{name}: {value}"]
    return [*(["taskset", "-c", pin.generator] if pin else []), *argv, url]


def ensure_load_generator(run: Runner) -> str:
    """wrk, installed with apt-get as root on Debian when missing; else "python", the small generator below."""
    if shutil.which("wrk"):
        return "wrk"
    if os.geteuid() == 0 and Path("/etc/debian_version").exists() and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if not run(["apt-get", "install", "-y", "wrk"], env=env, warn=True).ok:
            run(["apt-get", "update"], env=env, warn=True)
            run(["apt-get", "install", "-y", "wrk"], env=env, warn=True)
        if shutil.which("wrk"):
            return "wrk"
    return "python"


def generate_load(
    run: Runner, tool: str, url: str, connections: int, duration: int, pin: Pinning | None = None
) -> dict[str, Any]:
    """One load run with wrk (on `pin`'s CPUs when given) or the Python generator, in wrk's result shape."""
    if tool == "python":
        result = python_load(url, connections, duration, [HTTPS_HEADER])
    else:
        result = parse_wrk(run(wrk_argv(url, connections, duration, [HTTPS_HEADER], pin), capture=True).stdout)
    return result


def python_load(url: str, connections: int, duration: int, headers: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    """A small keep-alive load generator with wrk's result shape (one thread per connection; GIL-bound)."""
    host, port, path = split_url(url)
    deadline = time.perf_counter() + duration
    latencies: list[float] = []
    counts = {"non_2xx": 0, "socket": 0}
    lock = threading.Lock()

    def worker() -> None:
        conn, mine, bad, broken = None, [], 0, 0
        while time.perf_counter() < deadline:
            try:
                conn = conn or http.client.HTTPConnection(host, port, timeout=2)
                start = time.perf_counter()
                conn.request("GET", path, headers=dict(headers))
                response = conn.getresponse()
                response.read()
                mine.append((time.perf_counter() - start) * 1000)
                bad += not 200 <= response.status < 400
            except (OSError, http.client.HTTPException):
                broken += 1
                conn = None
        with lock:
            latencies.extend(mine)
            counts["non_2xx"] += bad
            counts["socket"] += broken

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)

    def pct(p: float) -> float | None:
        return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] if ordered else None

    return {
        "requests": len(ordered),
        "seconds": round(elapsed, 3),
        "rps": len(ordered) / elapsed,
        **{f"p{p}_ms": pct(p) for p in (50, 75, 90, 99)},
        "non_2xx": counts["non_2xx"],
        "socket": {"read": counts["socket"]},
        "errors": counts["non_2xx"] + counts["socket"],
    }


def split_url(url: str) -> tuple[str, int, str]:
    match = re.match(r"^http://([^:/]+):(\d+)(/.*)?$", url)
    if not match:
        raise ValueError(f"not an http://host:port/path URL: {url}")
    return match.group(1), int(match.group(2)), match.group(3) or "/"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def http_status(url: str, headers: Sequence[tuple[str, str]] = (), data: bytes | None = None) -> int | None:
    """The status of one request, redirects not followed; None when nothing answers."""
    request = urllib.request.Request(url, data=data, headers=dict(headers))
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.build_opener(_NoRedirect).open(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (OSError, http.client.HTTPException):
        return None


def wait_for(url: str, deadline_s: float = 60) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if http_status(url) == 200:
            return
        time.sleep(0.2)
    raise UserError(f"{url} did not answer 200 within {deadline_s:g}s")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
