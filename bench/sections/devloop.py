"""The developer's loop in dev (issue 27): a saved view served anew, a changed lock rebuilt by the watch.

`invoke up --stage dev --watch` runs as a user starts it (its own compose project and port, stdin closed, its output
in a log). dev bind-mounts the checkout, so runserver reloads a saved `.py` by itself: timed from the write of a
view to the first response that carries the change. A changed dependency lock (as a pulled commit brings it: every
lock file written at once) makes the watch rebuild dev and recreate it: timed from the write to the watch's
"dev is up and healthy". The two lock states are made once, untimed, by `invoke deps.lock` (a line in
requirements/runtime.in); the runs alternate between them, so every run is a lock change and all but the first
find the build cache warm. Every file is put back and the watch stopped, however the section ends.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from bench.context import Bench, Section, append_line, restored, say
from bench.evaluate import Results, Row, judged, load_hint, median
from lifecycle.commands import compose
from lifecycle.deps import LOCKS
from lifecycle.errors import UserError

DEVLOOP_TARGETS = {"save_served_s": 1.0, "lock_rebuilt_s": 20.0}
VIEW_FILE = Path("django_site") / "notes" / "views.py"
RUNTIME_IN = Path("requirements") / "runtime.in"
NEW_DEPENDENCY = "six==1.17.0"  # small, pure Python, already on the package index's mirror the tests use
HEADER = "X-Bench-Change"
# Appended to the view module once: wraps the API view so a response names the last change saved.
MARKING_VIEW = f'''
def _bench_marked(view, marker):
    import functools

    @functools.wraps(view)
    def marked(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        response["{HEADER}"] = marker
        return response

    return marked
'''
STARTED = "and new migrations (migrate)"  # the watch's line once it watches
HEALTHY = "dev is up and healthy"
SERVED_DEADLINE_S, REBUILT_DEADLINE_S = 30.0, 300.0


def wait_until(probe: Callable[[], Any], deadline_s: float, what: str) -> Any:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if found := probe():
            return found
        time.sleep(0.02)
    raise UserError(f"bench devloop: {what} not seen within {deadline_s:.0f} s")


def change_header(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.headers.get(HEADER)
    except (OSError, urllib.error.URLError):  # runserver restarting: refused, reset
        return None


@contextlib.contextmanager
def watching(bench: Bench, log: Path) -> Iterator[Callable[[str], int]]:
    """`invoke up --stage dev --watch` running; yields how often the log says a text so far. SIGTERM on the way
    out: the watch stops and leaves dev running (the section's undo takes it down)."""
    with log.open("w") as out:
        watch = subprocess.Popen(bench.invoke_argv("up", "--stage", "dev", "--watch"), env=bench.process_env(),
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True)  # fmt: skip

    def count(text: str) -> int:
        if watch.poll() is not None:
            raise UserError(f"bench devloop: the watch ended ({watch.returncode}): {log.read_text()[-2000:]}")
        return log.read_text(errors="replace").count(text)

    try:
        wait_until(lambda: count(STARTED), REBUILT_DEADLINE_S, "the watch starting")
        yield count
    finally:
        with contextlib.suppress(ProcessLookupError):
            watch.send_signal(signal.SIGTERM)
        try:
            watch.wait(timeout=60)
        except subprocess.TimeoutExpired:
            watch.kill()
            watch.wait(timeout=30)


def time_saves(bench: Bench, url: str) -> list[float]:
    root = bench.settings.root
    append_line(root / VIEW_FILE, MARKING_VIEW)
    seconds = []
    for number in range(bench.runs):
        marker = f"{time.time_ns()}-{number}"
        start = time.monotonic()
        append_line(root / VIEW_FILE, f'notes_api = _bench_marked(notes_api, "{marker}")')
        wait_until(lambda marker=marker: change_header(url) == marker, SERVED_DEADLINE_S, "the saved view served")
        seconds.append(time.monotonic() - start)
        say(f"save → served: {seconds[-1]:.2f} s")
    return seconds


def lock_states(bench: Bench) -> tuple[dict[Path, bytes], dict[Path, bytes]]:
    """The lock files as they are, and as `invoke deps.lock` writes them with NEW_DEPENDENCY added (untimed)."""
    root = bench.settings.root
    files = [root / RUNTIME_IN, *(root / lock.output for lock in LOCKS)]
    before = {path: path.read_bytes() for path in files}
    append_line(root / RUNTIME_IN, NEW_DEPENDENCY)
    bench.time_process(bench.invoke_argv("deps.lock"))
    after = {path: path.read_bytes() for path in files}
    for path, data in before.items():
        path.write_bytes(data)
    return before, after


def time_lock_changes(bench: Bench, count: Callable[[str], int], states: tuple[Mapping[Path, bytes], ...]) -> list:
    seconds = []
    for number in range(bench.runs):
        healthy = count(HEALTHY)
        start = time.monotonic()
        for path, data in states[(number + 1) % 2].items():  # with the dependency, without, with...
            path.write_bytes(data)
        wait_until(lambda healthy=healthy: count(HEALTHY) > healthy, REBUILT_DEADLINE_S, "dev rebuilt by the watch")
        seconds.append(time.monotonic() - start)
        say(f"lock change → dev rebuilt and healthy: {seconds[-1]:.1f} s")
    return seconds


def measure(bench: Bench) -> dict[str, Any]:
    root = bench.settings.root
    with bench.own_project("devloop", ports=("APP_PORT",)) as settings:
        bench.undo.append(lambda: bench.run(compose.down_argv(settings, volumes=True), env=settings.env, warn=True))
        with contextlib.ExitStack() as stack:
            for path in (VIEW_FILE, RUNTIME_IN, *(Path(lock.output) for lock in LOCKS)):
                stack.enter_context(restored(root / path))
            states = lock_states(bench)
            log = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-devloop-"))) / "watch.log"
            count = stack.enter_context(watching(bench, log))
            saves = time_saves(bench, f"http://127.0.0.1:{settings['APP_PORT']}/api/notes")
            locks = time_lock_changes(bench, count, states)
    return {"save_served_seconds": saves, "lock_rebuilt_seconds": locks}


def rows(devloop: Mapping[str, Any], results: Results) -> list[Row]:
    t = DEVLOOP_TARGETS
    saves, locks = devloop.get("save_served_seconds", []), devloop.get("lock_rebuilt_seconds", [])
    hint = load_hint(results)
    save_why = f"runserver's reload (it polls the files, then imports Django and the project again); {hint}"
    lock_why = f"the dev image's dependency layer installed again, then dev recreated and healthy; {hint}"
    save_runs, lock_runs = ", ".join(f"{s:.2f}" for s in saves), ", ".join(f"{s:.1f}" for s in locks)
    save_metric = f"dev: a saved view → its new response served (p50; the runs: {save_runs} s)"
    lock_metric = (
        "dev --watch: a changed lock → dev rebuilt and healthy (p50; the first run's cache cold for the new package; "
        f"the runs: {lock_runs} s)"
    )
    return [
        judged("save_served", save_metric, median(saves), t["save_served_s"], digits=2, why=save_why),
        judged("lock_rebuilt", lock_metric, median(locks), t["lock_rebuilt_s"], why=lock_why),
    ]


SECTION = Section("devloop", "the loop in dev: a saved view served, a lock change rebuilt by the watch", measure,
                  rows, DEVLOOP_TARGETS)  # fmt: skip
