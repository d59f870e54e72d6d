"""Start-up and stop of prod: `up` to healthy on a warm database volume, `docker stop`, and the loop a
developer runs, `invoke up --stage prod` after a code change with the stack running (rebuild, recreate)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from bench import facts
from bench.context import CODE_FILE, Bench, Section, change_code, restored, say, timed
from bench.evaluate import Results, Row, judged, median
from lifecycle.commands import docker
from lifecycle.stages import PROD

UP_TARGETS = {"healthy_s": 10.0, "stop_s": 2.0, "code_change_up_s": 4.0}
GRACE_PERIOD_S = 15  # stop_grace_period of stage and prod in docker/compose.yaml


def measure(bench: Bench) -> dict[str, Any]:
    bench.ensure_image(PROD)
    return {**measure_start_and_stop(bench), **measure_code_change_up(bench)}


def measure_start_and_stop(bench: Bench) -> dict[str, Any]:
    """Up once (the database volume initialised) and down keeping the volume; then per run: a timed up
    to healthy, with each container's timeline, and a timed `docker stop` of prod."""
    suite = bench.suite
    up: dict[str, Any] = {"healthy_seconds": [], "stop_seconds": [], "timeline": [], "grace_period_s": GRACE_PERIOD_S}
    suite.up(PROD, build=False)
    suite.down()
    for _ in range(bench.runs):
        t0 = time.time()
        elapsed, _ = timed(lambda: suite.up(PROD, build=False))
        up["healthy_seconds"].append(elapsed)
        db, prod = bench.service_id("db"), bench.service_id(PROD.service)
        states = {"db": facts.container_state(bench.run, db), "prod": facts.container_state(bench.run, prod)}
        up["timeline"].append(facts.timeline(t0, states))
        say(f"up prod → healthy: {elapsed:.1f} s {up['timeline'][-1]}")
        elapsed, _ = timed(lambda prod=prod: bench.run(docker.docker_argv("stop", prod), env=bench.env, capture=True))
        up["stop_seconds"].append(elapsed)
        say(f"docker stop prod: {elapsed:.1f} s")
        suite.down()
    return up


def measure_code_change_up(bench: Bench) -> dict[str, Any]:
    """With the stack up, per run: a code change, then `invoke up --stage prod` timed as a process (it
    rebuilds and recreates prod), with the new container's timeline."""
    seconds, timelines = [], []
    bench.suite.up(PROD, build=False)
    try:
        with restored(bench.settings.root / CODE_FILE):
            for number in range(bench.runs):
                change_code(bench.settings.root, number)
                t0 = time.time()
                seconds.append(bench.invoke("up", "--stage", PROD.name))
                bench.remember_image(bench.settings.image(PROD))
                prod = facts.container_state(bench.run, bench.service_id(PROD.service))
                timelines.append(facts.timeline(t0, {"prod": prod}))
    finally:
        bench.suite.down()
    return {"code_change_seconds": seconds, "code_change_timeline": timelines}


def rows(up: Mapping[str, Any], results: Results) -> list[Row]:
    t = UP_TARGETS
    last = (up.get("timeline") or [{}])[-1]
    healthy_why = (
        f"after `up`: db started {last.get('db_started')} s, db healthy {last.get('db_healthy')} s, prod started "
        f"{last.get('prod_started')} s, prod healthy {last.get('prod_healthy')} s; health checks every second; the "
        "entrypoint imports Django twice (settings check, migrate) before gunicorn"
    )
    stop = median(up.get("stop_seconds", []))
    grace = up.get("grace_period_s", GRACE_PERIOD_S)
    stop_why = (
        f"close to the {grace} s grace period: SIGTERM is not reaching gunicorn"
        if stop is not None and stop >= grace - 1
        else "gunicorn's graceful stop waits for workers (GUNICORN_GRACEFUL_TIMEOUT) and keep-alive connections"
    )
    out = [
        judged(
            "healthy",
            "up prod → healthy (warm db volume)",
            median(up.get("healthy_seconds", [])),
            t["healthy_s"],
            why=healthy_why,
        ),
        judged("stop", "docker stop prod", stop, t["stop_s"], why=stop_why),
    ]
    if "code_change_seconds" in up:
        code = (up.get("code_change_timeline") or [{}])[-1]
        why = (
            f"after `invoke up`: the image rebuilt and the new prod container created at {code.get('prod_created')} s "
            f"(the old one stopped), started at {code.get('prod_started')} s, healthy at {code.get('prod_healthy')} s "
            "(the entrypoint's checks and migrate, gunicorn, then the health check, which runs every second and which "
            "`up` watches every 0.2 s)"
        )
        seconds = median(up["code_change_seconds"])
        out.append(
            judged(
                "code_change_up",
                "invoke up --stage prod after a .py change → healthy",
                seconds,
                t["code_change_up_s"],
                why=why,
            )
        )
    return out


SECTION = Section("up", "prod up to healthy, stop, and invoke up after a code change", measure, rows, UP_TARGETS)
