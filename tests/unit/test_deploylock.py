"""The deploy lock: builders as option -> argv, staleness as a table, and the sequencing against a scripted engine."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import socket
from pathlib import Path

import pytest

from lifecycle import deploylock
from lifecycle.commands import swarm
from lifecycle.deploylock import DeployLock, Holder
from lifecycle.errors import UserError
from lifecycle.runner import Result

NOW = dt.datetime(2026, 12, 4, 8, 0, 0, tzinfo=dt.UTC)
HOST = socket.gethostname()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param(
            swarm.lock_create("shop_deploy-lock", Path("/tmp/h.json"), "shop"),
            ["docker", "config", "create", "--label", "com.docker.stack.namespace=shop",
             "--label", "lifecycle.deploy-lock=true", "shop_deploy-lock", "/tmp/h.json"],
            id="create: atomic on the swarm, labelled with the stack",
        ),
        pytest.param(
            swarm.lock_inspect("shop_deploy-lock"),
            ["docker", "config", "inspect", "--format", "{{json .}}", "shop_deploy-lock"],
            id="inspect",
        ),
        pytest.param(swarm.lock_remove("shop_deploy-lock"), ["docker", "config", "rm", "shop_deploy-lock"], id="rm"),
    ],
)  # fmt: skip
def test_argv(argv, expected):
    assert argv == expected


def holder(host: str = HOST, pid: int = 4242, since: str = "2026-12-04T07:59:00Z") -> Holder:
    return Holder("ann", host, pid, since, "deploy shop@sha256:aaaa with 2 replicas")


@pytest.mark.parametrize(
    ("the_holder", "alive", "stale"),
    [
        pytest.param(holder(), True, "", id="running here, 60 s old: held"),
        pytest.param(holder(), False, "pid 4242 on this host) is gone", id="killed here: stale"),
        pytest.param(holder(host="ci-runner-7"), False, "", id="another host: its pid tells nothing"),
        pytest.param(holder(host="ci-runner-7", since="2026-12-04T06:00:00Z"), True, "7200s old", id="too old"),
        pytest.param(holder(since="2026-12-04T07:00:01Z"), True, "", id="just under the timeout"),
        pytest.param(holder(since="yesterday"), True, "no valid start time", id="unreadable start"),
        pytest.param(holder(pid=0), True, "", id="pid 0 (unreadable lock): age decides"),
    ],
)
def test_stale_reason(the_holder, alive, stale):
    reason = deploylock.stale_reason(the_holder, NOW, HOST, alive, timeout=3600)
    assert (stale in reason and bool(reason)) if stale else reason == ""


@pytest.mark.parametrize("value", ["-1", "soon", "1.5", ""])
def test_wait_must_be_whole_seconds(value):
    with pytest.raises(UserError, match=r"--wait .* is not a whole number of seconds"):
        deploylock.check_wait(value)


def inspect_answer(the_holder: Holder) -> str:
    data = base64.b64encode(the_holder.to_json().encode()).decode()
    return json.dumps({"ID": "x", "CreatedAt": "2026-12-04T07:59:00Z", "Spec": {"Name": "n", "Data": data}})


def test_holder_round_trips_through_the_configs_inspect():
    assert Holder.from_inspect(inspect_answer(holder())) == holder()


def test_an_unreadable_lock_still_names_a_holder_and_its_age():
    answer = json.dumps({"CreatedAt": "2026-12-04T07:00:00.123Z", "Spec": {"Data": "bm90IGpzb24="}})
    assert Holder.from_inspect(answer) == Holder("unknown", "unknown", 0, "2026-12-04T07:00:00Z", "unreadable lock")


class Swarm:
    """A scripted engine holding at most one config, as Swarm's managers do (names unique)."""

    def __init__(self, held: Holder | None = None):
        self.config: str | None = held.to_json() if held else None
        self.calls: list[list[str]] = []

    def __call__(self, argv, *, env=None, warn=False, capture=False, interactive=False, timeout=None) -> Result:
        self.calls.append(list(argv))
        verb = argv[2]
        if verb == "create":
            if self.config is not None:
                return Result(1, "", "Error response from daemon: rpc error: code = AlreadyExists desc = config exists")
            self.config = Path(argv[-1]).read_text(encoding="utf-8")
            return Result(0, "id\n")
        if verb == "inspect":
            if self.config is None:
                return Result(1, "", "Error: no such config")
            return Result(0, inspect_answer(Holder.from_json(self.config)))
        if verb == "rm":
            self.config = None
            return Result(0)
        raise AssertionError(argv)


def lock(engine: Swarm, tmp_path: Path, clock: list[float] | None = None) -> DeployLock:
    ticks = clock if clock is not None else [0.0]

    def sleep(seconds: float) -> None:
        ticks[0] += seconds

    return DeployLock("shop", tmp_path, engine, 3600, sleep=sleep, clock=lambda: ticks[0], now=lambda: NOW)


def test_a_free_lock_is_taken_released_and_logged(tmp_path):
    engine = Swarm()
    with lock(engine, tmp_path).held("deploy", "shop@sha256:aaaa with 2 replicas", 0) as me:
        assert Holder.from_json(engine.config or "") == me
        assert (me.host, me.pid, me.since) == (HOST, os.getpid(), "2026-12-04T08:00:00Z")
    assert engine.config is None
    [entry] = deploylock.read_log(tmp_path)
    assert (entry.action, entry.what, entry.outcome, entry.at) == (
        "deploy", "shop@sha256:aaaa with 2 replicas", "ok", "2026-12-04T08:00:00Z"
    )  # fmt: skip


def test_a_failed_deploy_releases_the_lock_and_logs_why(tmp_path):
    engine = Swarm()
    with pytest.raises(UserError), lock(engine, tmp_path).held("deploy", "x", 0):
        raise UserError("the migrate job failed")
    assert engine.config is None
    assert deploylock.read_log(tmp_path)[-1].outcome == "failed: the migrate job failed"


def test_an_interrupted_deploy_releases_the_lock(tmp_path):
    engine = Swarm()
    with pytest.raises(KeyboardInterrupt), lock(engine, tmp_path).held("rollback", "shop_app", 0):
        raise KeyboardInterrupt
    assert engine.config is None
    assert deploylock.read_log(tmp_path)[-1].outcome == "interrupted"


def test_a_held_lock_refuses_at_once_naming_holder_and_since_and_changes_nothing(tmp_path):
    engine = Swarm(held=holder(pid=os.getpid()))  # a live deploy on this host
    with pytest.raises(UserError) as raised:
        lock(engine, tmp_path).acquire("deploy y", 0)
    message = str(raised.value)
    assert "\n" not in message
    assert "another deploy holds the lock: ann@" in message and "since 2026-12-04T07:59:00Z" in message
    assert "retry later or with --wait SECONDS" in message
    assert [call[2] for call in engine.calls] == ["create", "inspect"]
    assert engine.config == holder(pid=os.getpid()).to_json()


def test_a_waiting_deploy_takes_the_lock_once_it_is_released(tmp_path, capsys):
    engine = Swarm(held=holder(pid=os.getpid()))
    ticks = [0.0]
    the_lock = lock(engine, tmp_path, ticks)

    def released_after_3s(argv, **kwargs):
        if ticks[0] >= 3:
            engine.config = None
        return engine(argv, **kwargs)

    the_lock.run = released_after_3s
    me = the_lock.acquire("deploy y", 60)
    assert me.what == "deploy y" and ticks[0] == 3
    assert capsys.readouterr().err.count("waiting for the deploy lock, held by ann@") == 1


def test_a_waiting_deploy_gives_up_at_its_deadline(tmp_path):
    engine = Swarm(held=holder(pid=os.getpid()))
    with pytest.raises(UserError, match=r"another deploy holds the lock: .*; waited 5s"):
        lock(engine, tmp_path).acquire("deploy y", 5)


def test_a_lock_left_by_a_killed_deploy_is_stale_and_names_unlock(tmp_path):
    dead = holder(pid=2**22 + 12345)  # above pid_max's default: no such process
    engine = Swarm(held=dead)
    with pytest.raises(
        UserError, match=r"left over by ann@.* is gone\); nothing was changed; run: invoke deploy\.unlock"
    ):
        lock(engine, tmp_path).acquire("deploy y", 600)
    assert engine.config is not None  # never broken silently


def test_unlock_releases_a_stale_lock_and_logs_whose_it_was(tmp_path):
    engine = Swarm(held=holder(pid=2**22 + 12345))
    said = lock(engine, tmp_path).unlock()
    assert said.startswith("released the deploy lock held by ann@") and engine.config is None
    assert deploylock.read_log(tmp_path)[-1].action == "unlock"


def test_unlock_refuses_while_the_deploy_runs_on_this_host(tmp_path):
    engine = Swarm(held=holder(pid=os.getppid()))
    with pytest.raises(UserError, match="held by a running deploy"):
        lock(engine, tmp_path).unlock()
    assert engine.config is not None


def test_unlock_of_a_free_lock_says_so(tmp_path):
    assert "nothing to do" in lock(Swarm(), tmp_path).unlock()


def test_release_leaves_a_lock_that_is_no_longer_ours(tmp_path):
    engine = Swarm()
    the_lock = lock(engine, tmp_path)
    me = the_lock.acquire("deploy x", 0)
    engine.config = holder().to_json()  # unlocked and taken by somebody else meanwhile
    the_lock.release(me)
    assert engine.config == holder().to_json()
