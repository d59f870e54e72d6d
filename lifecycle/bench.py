"""`nox -s bench`: how long the lifecycle takes, how big the images are and how fast prod serves.

Two halves. The pure half (wrk parsing, size math, target evaluation, rendering) is unit-tested in
tests/unit/test_bench.py. The orchestration half, `run_bench`, drives the engine through the shared
core (`Suite`, `lifecycle.compose`) under an isolated settings set (PROJ_NAME=bench, its own compose
project, a free APP_PORT, its own zip folder), so the user's images, stack and zip are never touched,
and removes what it made at the end: the `bench:*` images, its containers, network and volume.

Every time is a median over `runs` samples where repeating makes sense. Numbers on a shared machine
are noisy; the machine facts (cores, load average) are recorded next to them.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import os
import re
import shutil
import socket
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lifecycle import compose as cmd
from lifecycle.errors import UserError
from lifecycle.probes import compose_version, engine_version, image_id, image_present
from lifecycle.runner import CommandFailed, Runner
from lifecycle.settings import Settings, default_project_name
from lifecycle.stack import QA_REPORT_FILES, Suite
from lifecycle.stages import DEV, NAMES, PROD, STAGES, Stage

MB = 1_000_000  # decimal megabytes, as `docker images` shows them
CONCURRENCY = (1, 16, 32)
REFERENCE_CONCURRENCY = 16
ENDPOINTS = ("/health", "/api/notes")
HTTPS_HEADER = ("X-Forwarded-Proto", "https")
CODE_FILE = Path("django_site") / "wsgi.py"  # the file the code-only rebuild appends a comment to
REQUIREMENTS_FILE = Path("requirements") / "runtime.txt"
EXTRA_PIN = "six==1.17.0"  # harmless: a pure-Python wheel nothing imports
UV_PIN = "uv==0.13.9"
SEED_NOTES = 20
BENCH_ZIP_DIR = "updated_zip/bench"

TARGETS = {
    "noop_s": 2.0,
    "code_only_s": 5.0,
    "code_only_ratio": 0.05,
    "prod_added_mb": 60.0,
    "qa_s": 30.0,
    "healthy_s": 10.0,
    "stop_s": 2.0,
    "p99_ms": 50.0,
    "ceiling_ratio": 0.5,
}

TRIVIAL_APP = """def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
"""

# ================================================================================================ pure part


def median(values: Sequence[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


_TIME_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_TIME = re.compile(r"^([\d.]+)(us|ms|s|m|h)$")


def to_ms(text: str) -> float:
    """A wrk duration (`635.91us`, `1.20ms`, `2.00s`, `1.00m`) in milliseconds."""
    match = _TIME.match(text.strip())
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _TIME_UNITS[match.group(2)]


def parse_wrk(output: str) -> dict[str, Any]:
    """The numbers of one `wrk --latency` run: requests, req/s, latency percentiles (ms) and errors.

    `errors` is socket errors (connect, read, write, timeout) plus wrk's "Non-2xx or 3xx responses"
    (a redirect counts as success for wrk; `run_bench` checks each URL answers 200 before loading it).
    """
    result: dict[str, Any] = {"requests": None, "seconds": None, "rps": None, "non_2xx": 0,
                              "socket": {"connect": 0, "read": 0, "write": 0, "timeout": 0}}  # fmt: skip
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
        result["socket"] = dict(zip(("connect", "read", "write", "timeout"), map(int, match.groups()), strict=True))
    match = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if match:
        result["non_2xx"] = int(match.group(1))
    if result["rps"] is None or result["requests"] is None:
        raise ValueError("wrk output without a request count or Requests/sec line:\n" + output[-400:])
    result["errors"] = result["non_2xx"] + sum(result["socket"].values())
    return result


def wrk_argv(url: str, connections: int, duration: int, headers: Sequence[tuple[str, str]] = ()) -> list[str]:
    threads = max(1, min(connections, os.cpu_count() or 1))
    argv = ["wrk", "--latency", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s"]
    for name, value in headers:
        argv += ["-H", f"{name}: {value}"]
    return [*argv, url]


def megabytes(size: int | None) -> float | None:
    return None if size is None else size / MB


def added_over_base(stage_bytes: int | None, base_bytes: int | None) -> int | None:
    """Bytes a stage adds over its base image (`docker image inspect` sizes include the base layers)."""
    if stage_bytes is None or base_bytes is None:
        return None
    return stage_bytes - base_bytes


def parse_history(text: str, base_layers: int = 0) -> list[tuple[int, str]]:
    """`docker history --human=false --format '{{.Size}}\\t{{.CreatedBy}}'` -> the layers above the base,
    biggest first."""
    rows = []
    for line in text.strip().splitlines():
        size, _, created_by = line.partition("\t")
        if size.strip().isdigit():
            rows.append((int(size), " ".join(created_by.split())))
    rows = rows[: len(rows) - base_layers] if base_layers else rows
    return sorted(rows, key=lambda row: -row[0])


def parse_docker_time(text: str) -> float | None:
    """Docker's RFC 3339 times (nanoseconds, `Z`) as a UNIX timestamp; None for the zero time."""
    if not text or text.startswith("0001-"):
        return None
    match = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", text.strip())
    if not match:
        return None
    whole, fraction, zone = match.groups()
    stamp = dt.datetime.fromisoformat(whole + ("+00:00" if zone == "Z" else zone))
    return stamp.timestamp() + (float(f"0.{fraction}") if fraction else 0.0)


def first_healthy(state: Mapping[str, Any]) -> float | None:
    """When the first passing health check of a container's State ended (UNIX time)."""
    log = (state.get("Health") or {}).get("Log") or []
    ends = [parse_docker_time(entry.get("End", "")) for entry in log if entry.get("ExitCode") == 0]
    ends = [end for end in ends if end is not None]
    return min(ends) if ends else None


def timeline(t0: float, states: Mapping[str, Mapping[str, Any]]) -> dict[str, float | None]:
    """Seconds after `t0` (the `up` call) at which each container started and first turned healthy."""
    out: dict[str, float | None] = {}
    for name, state in states.items():
        started, healthy = parse_docker_time(state.get("StartedAt", "")), first_healthy(state)
        out[f"{name}_started"] = None if started is None else round(started - t0, 2)
        out[f"{name}_healthy"] = None if healthy is None else round(healthy - t0, 2)
    return out


# ------------------------------------------------------------------------------------------------ evaluation


@dataclass
class Row:
    key: str
    metric: str
    value: str
    target: str = ""
    status: str = "info"  # PASS, MISS, info, n/a
    why: str = ""  # a reason detected automatically
    note: str = ""  # why / what it would take: the maintainer fills this in (kept across runs)


def _fmt(value: float | None, unit: str = "s", digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f} {unit}".rstrip()


def _check(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def serving_summary(samples: Sequence[Mapping[str, Any]]) -> dict[str, float | None]:
    """Median req/s and latencies over runs; errors summed."""
    return {
        "rps": median([s.get("rps") for s in samples]),
        "p50_ms": median([s.get("p50_ms") for s in samples]),
        "p99_ms": median([s.get("p99_ms") for s in samples]),
        "errors": sum(s.get("errors", 0) for s in samples) if samples else None,
    }


def _load_hint(results: Mapping[str, Any]) -> str:
    meta = results.get("meta", {})
    load = meta.get("loadavg_start")
    return f"shared machine: {meta.get('nproc', '?')} cores, load average {load} at start" if load else ""


def evaluate(results: Mapping[str, Any]) -> list[Row]:
    """The table: one row per measured value, with its target and PASS/MISS where there is one."""
    rows: list[Row] = []
    t = TARGETS
    build = results.get("build", {})
    busy = _load_hint(results)

    # ---------------------------------------------------------------------------------------- builds
    cold = {stage: median(build.get("cold", {}).get(stage, [])) for stage in NAMES}
    for stage in NAMES:
        if stage in build.get("cold", {}):
            rows.append(Row(f"cold_build_{stage}", f"cold build {stage} (--no-cache)", _fmt(cold[stage])))
    noop = median(build.get("noop", []))
    if "noop" in build:
        ok = None if noop is None else noop <= t["noop_s"]
        why = "" if ok in (None, True) else (
            "every build re-runs git metadata, the zip and BuildKit's context and cache checks; " + busy)  # fmt: skip
        rows.append(Row("noop_prod", "no-op rebuild prod", _fmt(noop), f"≤ {t['noop_s']:g} s", _check(ok), why))
    code = median(build.get("code_only", []))
    if "code_only" in build:
        ok = None if code is None else code <= t["code_only_s"]
        reason = ("a code change re-runs the code stage (unzip + compileall), then the stage layers after "
                  "COPY --from=code, including collectstatic (a Django start-up); " + busy)  # fmt: skip
        rows.append(Row("code_only_prod", "code-only rebuild prod", _fmt(code), f"≤ {t['code_only_s']:g} s",
                        _check(ok), reason if ok is False else ""))  # fmt: skip
        ratio = None if code is None or not cold["prod"] else code / cold["prod"]
        ok = None if ratio is None else ratio <= t["code_only_ratio"]
        percent = None if ratio is None else ratio * 100
        if ok is False and code is not None and code <= t["code_only_s"]:
            reason = f"the cold build ({_fmt(cold['prod'])}) is already short: 5 % of it is {_fmt(cold['prod'] * 0.05)}"
        rows.append(Row("code_only_ratio", "code-only / cold prod build", _fmt(percent, "%"),
                        f"≤ {t['code_only_ratio'] * 100:g} %", _check(ok), reason if ok is False else ""))  # fmt: skip
    if "requirements" in build:
        rows.append(Row("requirements_prod", f"requirements change (+{EXTRA_PIN}) rebuild prod",
                        _fmt(median(build["requirements"]))))  # fmt: skip

    # ------------------------------------------------------------------------------------------- zip
    if "zip" in results:
        z = results["zip"]
        rows.append(Row("zip", "invoke zip", f"{_fmt(median(z.get('seconds', [])), 's', 2)}, "
                        f"{z.get('files', '?')} files, {_fmt((z.get('bytes') or 0) / 1000, 'kB')}"))  # fmt: skip

    # ---------------------------------------------------------------------------------------- images
    images = results.get("images", {})
    base = images.get("base", {})
    for stage, info in images.get("stages", {}).items():
        added = added_over_base(info.get("bytes"), base.get("bytes"))
        value = f"{_fmt(megabytes(info.get('bytes')), 'MB')} (+{_fmt(megabytes(added), 'MB')} over {base.get('name')})"
        if stage == "prod":
            ok = None if added is None else megabytes(added) <= t["prod_added_mb"]
            layers = info.get("top_layers", [])[:3]
            why = "" if ok in (None, True) else "biggest layers over the base: " + "; ".join(
                f"{megabytes(size):.0f} MB {created[:70]}" for size, created in layers)  # fmt: skip
            rows.append(
                Row("size_prod", "image prod", value, f"≤ +{t['prod_added_mb']:g} MB over base", _check(ok), why)
            )
        else:
            rows.append(Row(f"size_{stage}", f"image {stage}", value))
        if "gcc" in info:
            shipped = bool(info["gcc"])
            if stage in ("stage", "prod"):
                rows.append(Row(f"toolchain_{stage}", f"no compiler in {stage}", "gcc absent" if not shipped
                                else f"gcc at {info['gcc']}", "gcc absent", _check(not shipped),
                                "" if not shipped else "the stage copies or installs the toolchain"))  # fmt: skip
            else:
                rows.append(
                    Row(f"toolchain_{stage}", f"toolchain in {stage}", "gcc present" if shipped else "gcc absent")
                )

    # -------------------------------------------------------------------------------------------- qa
    if "qa" in results:
        qa = median(results["qa"].get("seconds", []))
        statuses = results["qa"].get("status", [])
        ok = None if qa is None else qa <= t["qa_s"] and not any(statuses)
        why = ""
        if any(statuses):
            why = f"pytest exit status {statuses}; see reports/"
        elif ok is False:
            why = (
                "each qa run builds (cached), starts a fresh database on a throwaway volume (first-time init), "
                "runs pytest; " + busy
            )
        rows.append(Row("qa", "nox -s qa (images built)", _fmt(qa), f"≤ {t['qa_s']:g} s", _check(ok), why))

    # -------------------------------------------------------------------------------------- up/stop
    up = results.get("up", {})
    if up:
        healthy = median(up.get("healthy_seconds", []))
        ok = None if healthy is None else healthy <= t["healthy_s"]
        why = ""
        if ok is False and up.get("timeline"):
            tl = up["timeline"][-1]
            why = (f"after `up`: db started {tl.get('db_started')} s, db healthy {tl.get('db_healthy')} s, prod "
                   f"started {tl.get('prod_started')} s, prod healthy {tl.get('prod_healthy')} s; health "
                   "checks every 2 s; the entrypoint imports Django twice (settings check, migrate) before "
                   "gunicorn")  # fmt: skip
        rows.append(Row("healthy", "up prod → healthy (warm db volume)", _fmt(healthy), f"≤ {t['healthy_s']:g} s",
                        _check(ok), why))  # fmt: skip
        stop = median(up.get("stop_seconds", []))
        ok = None if stop is None else stop <= t["stop_s"]
        why = ""
        if ok is False:
            grace = up.get("grace_period_s", 15)
            why = (f"close to the {grace} s grace period: SIGTERM is not reaching gunicorn" if stop >= grace - 1 else
                   "gunicorn's graceful stop waits for workers (GUNICORN_GRACEFUL_TIMEOUT) and keep-alive "
                   "connections")  # fmt: skip
        rows.append(Row("stop", "docker stop prod", _fmt(stop), f"≤ {t['stop_s']:g} s", _check(ok), why))

    # --------------------------------------------------------------------------------------- serving
    serving = results.get("serving", {})
    if serving.get("site"):
        rows += _serving_rows(serving, busy)

    # ---------------------------------------------------------------------------------------- pip/uv
    pv = results.get("pip_vs_uv", {})
    if pv:
        pip_s, uv_install, uv_boot = (
            median(pv.get("pip", [])),
            median(pv.get("uv_install", [])),
            median(pv.get("uv_bootstrap", [])),
        )
        uv_total = None if uv_install is None or uv_boot is None else uv_install + uv_boot
        rows.append(Row("pip", "pip install -r runtime.txt (empty cache)", _fmt(pip_s)))
        rows.append(Row("uv", f"uv pip install -r runtime.txt (empty cache; + installing {UV_PIN})",
                        f"{_fmt(uv_install)} (+ {_fmt(uv_boot)} = {_fmt(uv_total)})"))  # fmt: skip
    for section, message in results.get("errors", {}).items():
        rows.append(Row(f"error_{section}", f"{section}: not measured", "error", status="n/a", why=message[:200]))
    return rows


def _serving_rows(serving: Mapping[str, Any], busy: str) -> list[Row]:
    t = TARGETS
    rows: list[Row] = []
    ceiling = {c: serving_summary(serving.get("ceiling", {}).get(str(c), [])) for c in CONCURRENCY}
    workers, threads = serving.get("workers", "2"), serving.get("threads", "4")
    slots = int(workers) * int(threads) if f"{workers}{threads}".isdigit() else 8
    prechecks = serving.get("precheck", {})
    for endpoint, by_c in serving["site"].items():
        summaries = {c: serving_summary(by_c.get(str(c), [])) for c in CONCURRENCY}
        for c in CONCURRENCY:
            s, ceil = summaries[c], ceiling[c]
            ratio = s["rps"] / ceil["rps"] if s["rps"] and ceil["rps"] else None
            rows.append(Row(f"serve_{endpoint}_{c}", f"GET {endpoint} c={c}",
                            f"{_fmt(s['rps'], 'req/s', 0)} ({_fmt(None if ratio is None else ratio * 100, '%', 0)} of "
                            f"{_fmt(ceil['rps'], '', 0)}), p50 {_fmt(s['p50_ms'], 'ms')}, "
                            f"p99 {_fmt(s['p99_ms'], 'ms')}"))  # fmt: skip
        errors = sum(s["errors"] or 0 for s in summaries.values())
        precheck = prechecks.get(endpoint)
        ok = errors == 0 and precheck in (None, 200)
        why = "" if ok else f"status before the load: {precheck}; errors by concurrency: " + ", ".join(
            f"c={c}: {summaries[c]['errors']}" for c in CONCURRENCY)  # fmt: skip
        rows.append(Row(f"errors_{endpoint}", f"GET {endpoint} errors (all c)", str(errors), "0", _check(ok), why))
        ref, base = summaries[REFERENCE_CONCURRENCY], summaries[1]
        p99 = ref["p99_ms"]
        ok = None if p99 is None else p99 <= t["p99_ms"]
        why = ""
        if ok is False:
            queue = REFERENCE_CONCURRENCY / max(1, slots)
            why = (f"{workers} gunicorn workers x {threads} threads: {REFERENCE_CONCURRENCY} connections queue "
                   f"~{queue:g} deep on 2 cores shared with wrk and the database (p50 at c=1: "
                   f"{_fmt(base['p50_ms'], 'ms')}); {busy}")  # fmt: skip
        rows.append(Row(f"p99_{endpoint}", f"GET {endpoint} p99 @ c={REFERENCE_CONCURRENCY}", _fmt(p99, "ms"),
                        f"≤ {t['p99_ms']:g} ms", _check(ok), why))  # fmt: skip
        ceil = ceiling[REFERENCE_CONCURRENCY]["rps"]
        ratio = ref["rps"] / ceil if ref["rps"] and ceil else None
        ok = None if ratio is None else ratio >= t["ceiling_ratio"]
        why = ""
        if ok is False:
            why = (f"per request the site costs {_fmt(base['p50_ms'], 'ms')} at c=1 vs the trivial app's "
                   f"{_fmt(serving_summary(serving.get('ceiling', {}).get('1', []))['p50_ms'], 'ms')}: Django "
                   "middleware" + (" and the database round trips" if endpoint != "/health" else "")
                   + "; the database server runs on the same cores; caching the page, or more cores")  # fmt: skip
        rows.append(Row(f"ceiling_{endpoint}", f"GET {endpoint} throughput / trivial app @ c={REFERENCE_CONCURRENCY}",
                        _fmt(None if ratio is None else ratio * 100, "%", 0), f"≥ {t['ceiling_ratio'] * 100:g} %",
                        _check(ok), why))  # fmt: skip
    return rows


def carry_notes(rows: list[Row], previous: Sequence[Mapping[str, Any]]) -> list[Row]:
    """Keep the maintainer's notes from the previous reports/bench.json, by row key."""
    notes = {row.get("key"): row.get("note", "") for row in previous if isinstance(row, Mapping)}
    for row in rows:
        row.note = row.note or notes.get(row.key, "") or ""
    return rows


# ------------------------------------------------------------------------------------------------- rendering

COLUMNS = ("Metric", "Value", "Target", "Result", "Why / what it would take")


def _cells(row: Row) -> list[str]:
    why = row.why
    if row.status == "MISS":
        why = " — ".join(part for part in (why, row.note and f"note: {row.note}") if part)
    return [row.metric, row.value, row.target, row.status, why]


def render_table(rows: Sequence[Row], why_width: int = 70) -> str:
    """The terminal table: aligned columns, the reason cut to `why_width` characters (full text is in the files)."""
    cells = [list(COLUMNS)] + [_cells(row) for row in rows]
    cells = [[*c[:4], c[4] if len(c[4]) <= why_width else c[4][: why_width - 1] + "…"] for c in cells]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(rows: Sequence[Row], meta: Mapping[str, Any]) -> str:
    misses = sum(row.status == "MISS" for row in rows)
    passes = sum(row.status == "PASS" for row in rows)
    lines = ["# Benchmark (`nox -s bench`)", ""]
    for label, key in (("Date", "date"), ("Runs (medians of)", "runs"), ("nproc", "nproc"),
                       ("Load average at start / end", "loadavg"), ("Docker", "docker"), ("Compose", "compose"),
                       ("Python base image", "base_image"), ("Database image", "db_image"),
                       ("Load generator", "load_generator"), ("Commit", "commit"), ("Notes", "notes")):  # fmt: skip
        if meta.get(key) not in (None, ""):
            value = meta[key]
            value = "; ".join(value) if isinstance(value, list) else value
            lines.append(f"- **{label}:** {_md(str(value))}")
    lines += ["", f"Targets: {passes} PASS, {misses} MISS.", ""]
    lines.append("| " + " | ".join(COLUMNS) + " |")
    lines.append("|" + "---|" * len(COLUMNS))
    for row in rows:
        lines.append("| " + " | ".join(_md(cell) for cell in _cells(row)) + " |")
    return "\n".join(lines) + "\n"


def parse_options(posargs: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="nox -s bench --", description="Benchmark the lifecycle.")
    parser.add_argument("--runs", type=int, default=3, help="Samples per timed value (medians). Default: 3.")
    parser.add_argument("--duration", type=int, default=10, help="Seconds per load run. Default: 10.")
    parser.add_argument("--skip", action="append", default=[], choices=SECTIONS,
                        help="Skip a section (repeatable).")  # fmt: skip
    parser.add_argument("--strict", action="store_true", help="Exit 1 when a target is missed. Default: off.")
    options = parser.parse_args(list(posargs))
    if options.runs < 1 or options.duration < 1:
        parser.error("--runs and --duration must be at least 1")
    return options


# ================================================================================================ orchestration

SECTIONS = ("zip", "cold", "rebuild", "images", "qa", "up", "serve", "pipuv")


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = action()
    return round(time.perf_counter() - start, 3), value


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def bench_settings(settings: Settings) -> Settings:
    """The isolated settings: own image name, compose project, port and zip folder."""
    return settings.override(
        PROJ_NAME="bench",
        COMPOSE_PROJECT_NAME=default_project_name("bench", settings.root),
        APP_PORT=str(free_port()),
        ZIP_DIR=BENCH_ZIP_DIR,
        TEST_QA_IMAGE="bench:test-qa",
    )


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def ensure_load_generator(run: Runner) -> str:
    """wrk, installed with apt-get as root on Debian when missing; else the small Python generator."""
    if shutil.which("wrk"):
        return "wrk"
    if os.geteuid() == 0 and Path("/etc/debian_version").exists() and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if not run(["apt-get", "install", "-y", "wrk"], env=env, warn=True).ok:
            run(["apt-get", "update"], env=env, warn=True)
            run(["apt-get", "install", "-y", "wrk"], env=env, warn=True)
        if shutil.which("wrk"):
            return "wrk"
    say("wrk is not available; falling back to the Python load generator (its numbers are lower than wrk's)")
    return "python"


def python_load(url: str, connections: int, duration: int, headers: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    """A small keep-alive load generator with wrk's result shape (one thread per connection; GIL-bound)."""
    host, port, path = _split_url(url)
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

    return {"requests": len(ordered), "seconds": round(elapsed, 3), "rps": len(ordered) / elapsed,
            "p50_ms": pct(50), "p75_ms": pct(75), "p90_ms": pct(90), "p99_ms": pct(99),
            "non_2xx": counts["non_2xx"], "socket": {"read": counts["socket"]},
            "errors": counts["non_2xx"] + counts["socket"]}  # fmt: skip


def _split_url(url: str) -> tuple[str, int, str]:
    match = re.match(r"^http://([^:/]+):(\d+)(/.*)?$", url)
    if not match:
        raise ValueError(f"not an http://host:port/path URL: {url}")
    return match.group(1), int(match.group(2)), match.group(3) or "/"


def http_status(url: str, headers: Sequence[tuple[str, str]] = (), data: bytes | None = None) -> int | None:
    """The status of one request, redirects not followed; None when nothing answers."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    request = urllib.request.Request(url, data=data, headers=dict(headers))
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=5) as response:
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


class Bench:
    """One benchmark run: the isolated suite, what it created, and the results so far."""

    def __init__(self, settings: Settings, run: Runner, runs: int, reports: Path, duration: int):
        self.settings = bench_settings(settings)
        self.run = run
        self.runs = runs
        self.reports = reports
        self.duration = duration
        self.suite = Suite(self.settings, run)
        self.env = self.settings.env
        self.image_ids: set[str] = set()
        self.tool = "wrk"
        self.results: dict[str, Any] = {"runs": runs, "targets": TARGETS, "errors": {}}
        self.name = self.settings.project_name  # containers the bench names itself start with this

    # ------------------------------------------------------------------------------------- helpers
    def docker_out(self, *args: str) -> str | None:
        result = self.run(cmd.docker_argv(*args), env=self.env, warn=True, capture=True)
        return result.stdout.strip() if result.ok else None

    def image_bytes(self, image: str) -> int | None:
        out = self.docker_out("image", "inspect", "--format", "{{.Size}}", image)
        return int(out) if out and out.isdigit() else None

    def timed_build(self, stage: Stage, *, no_cache: bool = False) -> float:
        seconds, _ = timed(lambda: self.suite.build(stage, no_cache=no_cache))
        built = image_id(self.run, self.settings.image(stage))
        if built:
            self.image_ids.add(built)
        say(f"build {stage}{' --no-cache' if no_cache else ''}: {seconds:.1f} s")
        return seconds

    def section(self, name: str, action: Callable[[], None]) -> None:
        try:
            action()
        except (UserError, CommandFailed, OSError, ValueError) as error:
            say(f"{name} failed: {error}")
            self.results["errors"][name] = str(error)

    # ------------------------------------------------------------------------------------ sections
    def measure_zip(self) -> None:
        seconds, result = [], None
        for _ in range(self.runs):
            elapsed, result = timed(self.suite.zip)
            seconds.append(elapsed)
        self.results["zip"] = {"seconds": seconds, "files": result.file_count, "bytes": result.size}

    def measure_cold(self) -> None:
        cold = self.results.setdefault("build", {}).setdefault("cold", {})
        for stage in STAGES:
            cold[stage.name] = [self.timed_build(stage, no_cache=True) for _ in range(self.runs)]

    def measure_rebuilds(self) -> None:
        build = self.results.setdefault("build", {})
        self.timed_build(PROD)  # whatever the cold builds left, prod is cached from here on
        build["noop"] = [self.timed_build(PROD) for _ in range(self.runs)]
        build["code_only"] = []
        with restored(self.settings.root / CODE_FILE):
            for number in range(self.runs):  # a new comment each run, or the second run would hit the cache
                append_line(self.settings.root / CODE_FILE, f"# bench: code-only rebuild {time.time_ns()} {number}")
                build["code_only"].append(self.timed_build(PROD))
        build["requirements"] = []
        with restored(self.settings.root / REQUIREMENTS_FILE):
            for number in range(self.runs):
                append_line(self.settings.root / REQUIREMENTS_FILE, f"{EXTRA_PIN}  # bench {time.time_ns()} {number}")
                build["requirements"].append(self.timed_build(PROD))
        self.timed_build(PROD)  # back to the checkout's tree (cached)

    def measure_images(self) -> None:
        base = self.settings.base_image
        base_history = self.docker_out("history", "--quiet", base) or ""
        images: dict[str, Any] = {"base": {"name": base, "bytes": self.image_bytes(base)}, "stages": {}}
        for stage in STAGES:
            image = self.settings.image(stage)
            if self.image_bytes(image) is None:
                self.timed_build(stage)
            history = self.docker_out("history", "--no-trunc", "--human=false", "--format",
                                      "{{.Size}}\t{{.CreatedBy}}", image) or ""  # fmt: skip
            gcc = self.docker_out("run", "--rm", "--entrypoint", "sh", image, "-c", "command -v gcc cc || true")
            images["stages"][stage.name] = {
                "image": image,
                "bytes": self.image_bytes(image),
                "gcc": (gcc or "").replace("\n", " "),
                "top_layers": parse_history(history, len(base_history.splitlines()))[:5],
            }
        self.results["images"] = images

    def measure_qa(self) -> None:
        """`python -m nox -s qa` as a user runs it, under the bench's settings; reports/ restored after."""
        reports = self.settings.root / "reports"
        saved = {name: (reports / name).read_bytes() for name in QA_REPORT_FILES if (reports / name).is_file()}
        env = {**os.environ, **{k: self.settings[k] for k in ("PROJ_NAME", "COMPOSE_PROJECT_NAME", "APP_PORT",
                                                              "ZIP_DIR")}}  # fmt: skip
        env.pop("TEST_QA_IMAGE", None)
        seconds, statuses = [], []
        try:
            for _ in range(self.runs):
                elapsed, result = timed(lambda: self.run([sys.executable, "-m", "nox", "-s", "qa"], env=env,
                                                         warn=True))  # fmt: skip
                seconds.append(elapsed)
                statuses.append(result.return_code)
                say(f"nox -s qa: {elapsed:.1f} s, exit {result.return_code}")
        finally:
            for name in QA_REPORT_FILES:
                path = reports / name
                if name in saved:
                    path.write_bytes(saved[name])
                else:
                    path.unlink(missing_ok=True)
            built = image_id(self.run, self.suite.qa_image())
            if built:
                self.image_ids.add(built)
        self.results["qa"] = {"seconds": seconds, "status": statuses}

    def service_id(self, service: str) -> str:
        out = self.run(cmd.compose_argv(self.settings, "ps", "--quiet", service, stage=PROD), env=self.env,
                       warn=True, capture=True).stdout.strip()  # fmt: skip
        if not out:
            raise UserError(f"no running {service} container in project {self.name}")
        return out.splitlines()[0]

    def state(self, container: str) -> dict[str, Any]:
        return json.loads(self.docker_out("inspect", "--format", "{{json .State}}", container) or "{}")

    def measure_up_and_serving(self, serve: bool) -> None:
        """Up once (volume init, seed notes), down keeping the volume; then per run: timed up, load, timed stop."""
        if self.image_bytes(self.settings.image(PROD)) is None:
            self.timed_build(PROD)
        up = self.results["up"] = {"healthy_seconds": [], "stop_seconds": [], "timeline": [], "grace_period_s": 15}
        base_url = self.suite.url().rstrip("/")
        self.suite.up(PROD, build=False)
        for number in range(SEED_NOTES):
            body = json.dumps({"text": f"bench note {number}"}).encode()
            http_status(base_url + "/api/notes", [HTTPS_HEADER], data=body)
        self.suite.down()
        serving: dict[str, Any] = {"tool": self.tool, "duration_s": self.duration, "site": {}, "ceiling": {},
                                   "workers": self.env.get("GUNICORN_WORKERS", "2"),
                                   "threads": self.env.get("GUNICORN_THREADS", "4"), "precheck": {}}  # fmt: skip
        for _ in range(self.runs):
            t0 = time.time()
            elapsed, _ = timed(lambda: self.suite.up(PROD, build=False))
            up["healthy_seconds"].append(elapsed)
            prod = self.service_id("prod")
            up["timeline"].append(timeline(t0, {"db": self.state(self.service_id("db")), "prod": self.state(prod)}))
            say(f"up prod → healthy: {elapsed:.1f} s {up['timeline'][-1]}")
            if serve:
                for endpoint in ENDPOINTS:
                    url = base_url + endpoint
                    serving["precheck"][endpoint] = http_status(url, [HTTPS_HEADER])
                    self.load(url, 16, 2)  # warm-up: workers import lazily
                    for c in CONCURRENCY:
                        serving["site"].setdefault(endpoint, {}).setdefault(str(c), []).append(self.load(url, c))
            elapsed, _ = timed(lambda prod=prod: self.run(cmd.docker_argv("stop", prod), env=self.env, capture=True))
            up["stop_seconds"].append(elapsed)
            say(f"docker stop prod: {elapsed:.1f} s")
            self.suite.down()
            if serve:
                self.measure_ceiling(serving)
        if serve:
            self.results["serving"] = serving

    def load(self, url: str, connections: int, duration: int | None = None) -> dict[str, Any]:
        duration = duration or self.duration
        if self.tool == "python":
            result = python_load(url, connections, duration, [HTTPS_HEADER])
        else:
            out = self.run(wrk_argv(url, connections, duration, [HTTPS_HEADER]), capture=True).stdout
            result = parse_wrk(out)
        say(f"{url} c={connections}: {result['rps']:.0f} req/s, p99 {result['p99_ms']} ms, {result['errors']} errors")
        return result

    def measure_ceiling(self, serving: dict[str, Any]) -> None:
        """The same gunicorn settings in the same prod image, serving a one-line WSGI app."""
        port = free_port()
        name = f"{self.name}-ceiling"
        gunicorn_env = [f"{k}={v}" for k, v in self.env.items() if k.startswith("GUNICORN_")]
        argv = cmd.docker_argv("run", "--detach", "--rm", "--name", name, "--init", "--read-only", "--tmpfs", "/tmp",
                          "--cap-drop", "ALL", "--security-opt", "no-new-privileges:true",
                          "--publish", f"127.0.0.1:{port}:8000", "--env", f"TRIVIAL_APP={TRIVIAL_APP}",
                          *[a for pair in gunicorn_env for a in ("--env", pair)],
                          "--entrypoint", "sh", self.settings.image(PROD), "-c",
                          'printf "%s" "$TRIVIAL_APP" > /tmp/trivial.py && '
                          "exec gunicorn --config /etc/gunicorn.conf.py --chdir /tmp trivial:app")  # fmt: skip
        self.run(argv, env=self.env, capture=True)
        try:
            url = f"http://127.0.0.1:{port}/"
            wait_for(url)
            self.load(url, 16, 2)
            for c in CONCURRENCY:
                serving["ceiling"].setdefault(str(c), []).append(self.load(url, c))
        finally:
            self.run(cmd.docker_argv("rm", "--force", name), env=self.env, warn=True, capture=True)

    def measure_pip_vs_uv(self) -> None:
        """Fresh venvs in throwaway containers of the dev image, caches off: downloads and builds included."""
        script = (
            "set -e; t() { date +%s.%N; }; req=/tmp/requirements/runtime.txt\n"
            "python3 -m venv /tmp/pip-venv; a=$(t)\n"
            '/tmp/pip-venv/bin/pip install --quiet -r $req; b=$(t); echo "BENCH pip $a $b"\n'
            f"python3 -m venv /tmp/uv-venv; a=$(t); /tmp/uv-venv/bin/pip install --quiet {UV_PIN}; b=$(t)\n"
            "/tmp/uv-venv/bin/uv pip install --quiet --python /tmp/uv-venv/bin/python -r $req; c=$(t)\n"
            'echo "BENCH uv $a $b $c"\n'
        )
        pv = self.results["pip_vs_uv"] = {"pip": [], "uv_bootstrap": [], "uv_install": []}
        image = self.settings.image(DEV)
        if self.image_bytes(image) is None:
            self.timed_build(DEV)
        for number in range(self.runs):
            options = ["--env", "PIP_NO_CACHE_DIR=1", "--env", "UV_NO_CACHE=1", "--entrypoint", "bash"]
            name = f"{self.name}-pipuv-{number}"
            argv = cmd.docker_argv("run", "--rm", "--name", name, *options, image, "-c", script)
            out = self.run(argv, env=self.env, capture=True).stdout
            times = parse_pip_uv(out)
            for key, value in times.items():
                pv[key].append(value)
            say(f"pip vs uv: {times}")

    # ------------------------------------------------------------------------------------- cleanup
    def cleanup(self) -> None:
        """Remove what the bench created, and nothing else: its containers, network, volume, images, zip."""
        for name in (f"{self.name}-ceiling", *(f"{self.name}-pipuv-{n}" for n in range(self.runs))):
            self.run(cmd.docker_argv("rm", "--force", name), env=self.env, warn=True, capture=True)
        self.run(cmd.down_argv(self.settings, volumes=True), env=self.env, warn=True)
        tags = [self.settings.image(stage) for stage in STAGES] + [self.suite.qa_image()]
        present = [tag for tag in tags if image_present(self.run, tag)]
        if present:
            self.run(cmd.docker_argv("image", "rm", *present), env=self.env, warn=True)
        for built in sorted(self.image_ids):  # earlier builds' images the later ones untagged
            if self.docker_out("image", "inspect", "--format", "{{len .RepoTags}}", built) == "0":
                self.run(cmd.docker_argv("image", "rm", built), env=self.env, warn=True, capture=True)
        zip_dir = self.settings.root / BENCH_ZIP_DIR
        if zip_dir.is_dir():
            shutil.rmtree(zip_dir)


def parse_pip_uv(output: str) -> dict[str, float]:
    """The `BENCH pip A B` / `BENCH uv A B C` lines (UNIX times) -> seconds."""
    times: dict[str, float] = {}
    for line in output.splitlines():
        parts = line.split()
        if parts[:2] == ["BENCH", "pip"] and len(parts) == 4:
            times["pip"] = round(float(parts[3]) - float(parts[2]), 2)
        elif parts[:2] == ["BENCH", "uv"] and len(parts) == 5:
            times["uv_bootstrap"] = round(float(parts[3]) - float(parts[2]), 2)
            times["uv_install"] = round(float(parts[4]) - float(parts[3]), 2)
    if set(times) != {"pip", "uv_bootstrap", "uv_install"}:
        raise ValueError("pip/uv timing lines missing from the container's output")
    return times


class restored:
    """Put a file back byte-for-byte (and its mode and times) on exit, whatever happened inside."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self) -> Path:
        self.data = self.path.read_bytes()
        self.stat = self.path.stat()
        return self.path

    def __exit__(self, *exc: object) -> None:
        self.path.write_bytes(self.data)
        os.chmod(self.path, self.stat.st_mode)
        os.utime(self.path, ns=(self.stat.st_atime_ns, self.stat.st_mtime_ns))


def append_line(path: Path, line: str) -> None:
    data = path.read_bytes()
    path.write_bytes(data + (b"" if data.endswith(b"\n") or not data else b"\n") + line.encode() + b"\n")


def machine_facts(settings: Settings, run: Runner, runs: int, tool: str) -> dict[str, Any]:
    def out(argv: list[str]) -> str:
        result = run(argv, warn=True, capture=True)
        return result.stdout.strip() if result.ok else "unknown"

    def image(name: str) -> str:
        return f"{name} ({out(cmd.docker_argv('image', 'inspect', '--format', '{{.Id}} {{.Size}} bytes', name))})"

    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "runs": runs,
        "nproc": os.cpu_count(),
        "loadavg_start": " ".join(f"{v:.2f}" for v in os.getloadavg()),
        "docker": (engine_version(run) or "unknown").strip(),
        "compose": (compose_version(run) or "unknown").strip(),
        "base_image": image(settings.base_image),
        "db_image": image(settings["DB_IMAGE"]),
        "load_generator": out(["sh", "-c", "wrk -v 2>&1 | head -1"]) if tool == "wrk" else "Python (wrk unavailable)",
        "commit": out(["git", "-C", str(settings.root), "rev-parse", "--short", "HEAD"]),
        "python": sys.version.split()[0],
        "notes": [
            "cold builds use --no-cache: no layer cache, but BuildKit's apt and uv cache mounts stay warm",
            "every value shares the cores with the load generator and with other users of the engine",
        ],
    }


def run_bench(settings: Settings, run: Runner, runs: int, reports: Path, *, duration: int = 10,
              skip: Sequence[str] = ()) -> list[Row]:  # fmt: skip
    """Measure everything, print the table, write reports/bench.json and reports/bench.md; return the rows."""
    bench = Bench(settings, run, runs, reports, duration)
    say(f"isolated settings: PROJ_NAME=bench COMPOSE_PROJECT_NAME={bench.name} APP_PORT={bench.settings['APP_PORT']} "
        f"ZIP_DIR={BENCH_ZIP_DIR}")  # fmt: skip
    if "serve" not in skip:
        bench.tool = ensure_load_generator(run)
    bench.results["meta"] = machine_facts(bench.settings, run, runs, bench.tool)
    try:
        steps = (("zip", bench.measure_zip), ("cold", bench.measure_cold), ("rebuild", bench.measure_rebuilds),
                 ("images", bench.measure_images), ("qa", bench.measure_qa),
                 ("up", lambda: bench.measure_up_and_serving(serve="serve" not in skip)),
                 ("pipuv", bench.measure_pip_vs_uv))  # fmt: skip
        for name, step in steps:
            if name not in skip:
                bench.section(name, step)
    finally:
        bench.section("cleanup", bench.cleanup)
    meta = bench.results["meta"]
    meta["loadavg"] = f"{meta['loadavg_start']} / " + " ".join(f"{v:.2f}" for v in os.getloadavg())
    if bench.tool == "python":
        meta["notes"].append("wrk was unavailable: the Python load generator measured serving")
    rows = evaluate(bench.results)
    previous = reports / "bench.json"
    if previous.is_file():
        with contextlib.suppress(ValueError, AttributeError):
            rows = carry_notes(rows, json.loads(previous.read_text(encoding="utf-8")).get("rows", []))
    reports.mkdir(parents=True, exist_ok=True)
    bench.results["rows"] = [asdict(row) for row in rows]
    previous.write_text(json.dumps(bench.results, indent=2, default=str) + "\n", encoding="utf-8")
    (reports / "bench.md").write_text(render_markdown(rows, meta), encoding="utf-8")
    print(render_table(rows))
    print(f"\nraw numbers: {previous}; markdown: {reports / 'bench.md'}")
    return rows
