"""Deploys on a single-node Docker Swarm: a rolling update of 3 replicas under HTTPS load (seconds and failed
requests), Swarm rolling back a release whose /health answers 500, and `invoke deploy` of an unchanged release
(tasks restarted).

Releases go to the bench's own registry (REGISTRY_PORT) and are recorded in the checkout's releases file, which
is put back as it was. The stack is `<bench>-deploy` on an HTTPS port of its own. The engine is put in swarm mode
only when it is not in it already, and leaves it again when the section ends; the stack, its secrets, configs and
volume, the registry and the images go too, also after a failure, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bench.context import CODE_FILE, Bench, Section, change_code, restored, say
from bench.evaluate import Results, Row, fmt, judged, load_hint, median
from bench.facts import parse_docker_time
from bench.load import ensure_load_generator
from lifecycle import registry
from lifecycle.commands import docker, swarm
from lifecycle.deploy import ROLLED_BACK, Deployer
from lifecycle.errors import EXPECTED_FAILURES, UserError
from lifecycle.release import RELEASES_FILE, Release, ReleaseLog, release
from lifecycle.stages import PROD

REPLICAS = 3
LOAD_CONNECTIONS = 4
LOAD_DEADLINE_S = 1800  # the load stops with the deploy, and after this at the latest
SERVICES = ("app", "db", "proxy")
VIEWS = Path("django_site") / "views.py"
HEALTHY = 'return JsonResponse({"status": "ok", "database": "reachable"})'
BROKEN = 'return JsonResponse({"status": "broken"}, status=500)'
CLEANUP_DEADLINE_S = 120
GWBRIDGE = "docker_gwbridge"  # the local network `docker swarm init` makes and `docker swarm leave` keeps
DEPLOY_TARGETS = {
    "deploy_rolling_failed_requests": 0.0,
    "deploy_rollback_s": 45.0,
    "deploy_rollback_failed_requests": 0.0,
    "deploy_unchanged_restarted_tasks": 0.0,
}


# ------------------------------------------------------------------------------------------------ measuring
def measure(bench: Bench) -> dict[str, Any]:
    if ensure_load_generator(bench.run) != "wrk":
        raise UserError("the deploy section loads the HTTPS proxy with wrk; install it: apt-get install wrk")
    # Its own stack name (so its database volume and networks are never the compose project's) and HTTPS port.
    with bench.own_project("deploy", ports=("HTTPS_PORT",)) as settings:
        return measure_in(bench, Deployer(bench.ctx.with_settings(settings)))


def measure_in(bench: Bench, deployer: Deployer) -> dict[str, Any]:
    root = bench.settings.root
    with restored(root / RELEASES_FILE):
        on_swarm(bench, deployer)
        registry.start(bench.settings, bench.run)
        new_release(bench)
        first = bench.invoke(*DEPLOY_ARGS)
        measured: dict[str, Any] = {"first_seconds": first, "rolling": [], "unchanged": [], "rollback": []}
        bad: Release | None = None
        for number in range(bench.runs):
            new_release(bench, lambda number=number: change_code(root, number))
            measured["rolling"].append(under_load(bench, lambda: bench.time_process(bench.invoke_argv(*DEPLOY_ARGS))))
            measured["unchanged"].append(unchanged_redeploy(bench, deployer))
            good = app_image(deployer)
            if bad is None:
                bad = new_release(bench, lambda: break_health(root))
            else:
                ReleaseLog.of(bench.settings).append(bad)  # the newest release again
            measured["rollback"].append(bad_release(bench, deployer, good))
        return measured


DEPLOY_ARGS = ("deploy", "--stage", "prod", "--replicas", str(REPLICAS))


def new_release(bench: Bench, change: Callable[[], None] | None = None) -> Release:
    """`invoke release`'s work (build, push, record) with the checkout changed for the build, then put back."""
    root = bench.settings.root
    with restored(root / CODE_FILE), restored(root / VIEWS):
        if change:
            change()
        made = release(bench.suite.ctx, PROD, allow_dirty=True)
    bench.remember_image(bench.suite.settings.image(PROD))  # the bench's build
    if made is None:
        raise UserError("the release made no image")
    say(f"released {swarm.short(made.reference)}")
    return made


def break_health(root: Path) -> None:
    """The views answer /health with 500: every replica of this release fails its health check."""
    path = root / VIEWS
    text = path.read_text(encoding="utf-8")
    if HEALTHY not in text:
        raise ValueError(f"{VIEWS} no longer has `{HEALTHY}`; update bench/sections/deploy.py")
    path.write_text(text.replace(HEALTHY, BROKEN), encoding="utf-8")


def under_load(bench: Bench, action: Callable[[], tuple[float, Any]]) -> dict[str, Any]:
    """Run action (a timed deploy) while wrk loads /health through the HTTPS proxy in runs of --duration seconds;
    the seconds, exit status and the requests and failures of every load run."""
    url = f"https://127.0.0.1:{bench.settings['HTTPS_PORT']}/health"
    done = threading.Event()
    loads: list[dict[str, Any]] = []
    problems: list[str] = []

    def load() -> None:
        deadline = time.monotonic() + LOAD_DEADLINE_S
        while not done.is_set() and time.monotonic() < deadline:
            try:
                loads.append(bench.load(url, LOAD_CONNECTIONS))
            except (*EXPECTED_FAILURES, OSError, ValueError) as error:
                problems.append(str(error))
                return

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    try:
        seconds, result = action()
    finally:
        done.set()
        thread.join(timeout=bench.duration + 30)
    if problems:
        raise UserError(f"the load against {url} failed: {problems[0]}")
    return {
        "seconds": seconds,
        "status": result.return_code,
        "requests": sum(run["requests"] for run in loads),
        "failed": sum(run["errors"] for run in loads),
        "timeouts": sum(run["socket"].get("timeout", 0) for run in loads),  # wrk gives up on a request after 2 s
    }


def running_task_ids(deployer: Deployer) -> set[str]:
    tasks = [task for service in SERVICES for task in deployer.tasks(swarm.service_name(deployer.stack, service))]
    return {task.id for task in tasks if task.desired == "Running" and task.status == "running"}


def unchanged_redeploy(bench: Bench, deployer: Deployer) -> dict[str, Any]:
    before = running_task_ids(deployer)
    seconds = bench.invoke(*DEPLOY_ARGS)
    return {"seconds": seconds, "running": len(before), "restarted": len(before - running_task_ids(deployer))}


def app_image(deployer: Deployer) -> str:
    state = deployer.service(deployer.app)
    if state is None:
        raise UserError(f"no app service in stack {deployer.stack} after the deploy")
    return state.image


def rollback_seconds(state: swarm.ServiceState | None) -> float | None:
    """Swarm's own time from the update's start to its rollback completed; None unless Swarm rolled back."""
    if state is None or state.update_state not in ROLLED_BACK:
        return None
    started, completed = parse_docker_time(state.update_started), parse_docker_time(state.update_completed)
    return round(completed - started, 3) if started and completed else None


def bad_release(bench: Bench, deployer: Deployer, good: str) -> dict[str, Any]:
    """Deploy the release whose /health answers 500 under load: `invoke deploy` ends once Swarm has rolled back."""
    outcome = under_load(bench, lambda: bench.time_process(bench.invoke_argv(*DEPLOY_ARGS), warn=True))
    running = {task.image for task in deployer.tasks(deployer.app) if task.status == "running"}
    swarm_seconds = rollback_seconds(deployer.service(deployer.app))
    rolled_back = outcome["status"] != 0 and running == {good} and swarm_seconds is not None
    return {**outcome, "rolled_back": rolled_back, "swarm_seconds": swarm_seconds}


# ------------------------------------------------------------------------------------------------ cleanup
def on_swarm(bench: Bench, deployer: Deployer) -> None:
    """Swarm mode (only when the engine is not in it) and the database label (only when no node has it), with the
    cleanup, registered first, that takes down everything the section makes and leaves the engine in the swarm
    state it was found in."""
    run, stack, settings = bench.run, deployer.stack, deployer.settings  # captured: cleanup runs after the section
    label = settings["DB_NODE_LABEL"]
    found = deployer.swarm_state().startswith("active")
    had_gwbridge = run(docker.docker_argv("network", "inspect", GWBRIDGE), warn=True, capture=True).ok
    labelled = found and bool(run(swarm.nodes_labelled(label), warn=True, capture=True).stdout.strip())

    def listed(argv: list[str]) -> list[str]:
        return run(argv, warn=True, capture=True).stdout.split()

    def cleanup() -> None:
        steps = [lambda: deployer.remove(yes=True), containers_gone, remove_labelled_objects]
        steps.append(lambda: run(registry.down_argv(settings, volumes=True), env=settings.env, warn=True))
        if not found:
            steps.append(lambda: deployer.leave_swarm(yes=True))
            if not had_gwbridge:  # `swarm init` made it, `swarm leave` keeps it
                steps.append(lambda: run(docker.docker_argv("network", "rm", GWBRIDGE), warn=True, capture=True))
        elif not labelled:
            steps.append(lambda: run(swarm.unlabel_node(label, deployer.require_swarm()), warn=True, capture=True))
        for step in steps:
            with contextlib.suppress(*EXPECTED_FAILURES, OSError):
                step()

    def containers_gone() -> None:
        """Swarm removes the tasks' containers a little after `stack rm`; until then they hold the volume and
        the images."""
        deadline = time.monotonic() + CLEANUP_DEADLINE_S
        while listed(swarm.stack_containers(stack)) and time.monotonic() < deadline:
            time.sleep(1)

    def remove_labelled_objects() -> None:
        for kind in ("secret", "config", "volume"):
            names = listed(swarm.stack_objects(kind, stack))
            if names:
                run(swarm.objects_rm(kind, *names), warn=True)

    bench.undo.append(cleanup)
    if not (found and labelled):
        deployer.init_swarm()  # swarm mode when not in it; the database label on this node either way


# ------------------------------------------------------------------------------------------------- rows
def _total(samples: list[Mapping[str, Any]], key: str) -> int | None:
    return sum(sample[key] for sample in samples) if samples else None


def _failed(samples: list[Mapping[str, Any]], during: str) -> str:
    return f"failed requests through the HTTPS proxy during {during} (of {_total(samples, 'requests')}; " \
        f"{_total(samples, 'timeouts')} of them wrk's 2 s timeouts)"  # fmt: skip


def rows(measured: Mapping[str, Any], results: Results) -> list[Row]:
    rolling, unchanged, rollback = measured["rolling"], measured["unchanged"], measured["rollback"]
    rollback_row = judged(
        "deploy_rollback",
        "a release whose /health answers 500: from Swarm's update start to its rollback completed",
        median(s["swarm_seconds"] for s in rollback),
        DEPLOY_TARGETS["deploy_rollback_s"],
        why="the health check's start_period and retries come first; " + load_hint(results),
    )
    rollback_row.value += f" (invoke deploy until it said so: {fmt(median(s['seconds'] for s in rollback))})"
    if not all(sample["rolled_back"] for sample in rollback):
        rollback_row.status, rollback_row.why = "MISS", "Swarm did not roll the bad release back (the deploy passed)"
    return [
        Row("deploy_first", f"invoke deploy: first deploy of {REPLICAS} replicas (database, migrate job, app, proxy)",
            fmt(measured["first_seconds"])),
        Row("deploy_rolling", f"invoke deploy: rolling update of {REPLICAS} replicas under load, until converged",
            fmt(median(sample["seconds"] for sample in rolling))),
        judged("deploy_rolling_failed_requests", _failed(rolling, "the rolling update"), _total(rolling, "failed"),
               DEPLOY_TARGETS["deploy_rolling_failed_requests"], unit="", digits=0,
               why="a replica stopped while the proxy still sent to it, or the machine was too busy to answer in 2 s"),
        rollback_row,
        judged("deploy_rollback_failed_requests", _failed(rollback, "the bad release and its rollback"),
               _total(rollback, "failed"), DEPLOY_TARGETS["deploy_rollback_failed_requests"], unit="", digits=0,
               why="the proxy sent requests to a replica failing its health check"),
        judged("deploy_unchanged_restarted_tasks",
               f"tasks restarted by invoke deploy of an unchanged release (of {_total(unchanged, 'running')} running)",
               _total(unchanged, "restarted"), DEPLOY_TARGETS["deploy_unchanged_restarted_tasks"], unit="", digits=0,
               why="the deploy changed a service's spec: Swarm replaced its tasks"),
        Row("deploy_unchanged", "invoke deploy of an unchanged release", fmt(median(s["seconds"] for s in unchanged))),
    ]  # fmt: skip


SECTION = Section("deploy", "swarm deploys: rolling update under load, rollback of a bad release, unchanged redeploy",
                  measure, rows, DEPLOY_TARGETS)  # fmt: skip
