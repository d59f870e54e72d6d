"""One deploy at a time: a lock held on the swarm itself, so it works across checkouts, users and machines.

The lock is a Swarm config named `STACK_deploy-lock`. Swarm's managers keep config names unique (Raft), so
`docker config create` is an atomic test-and-set: of two deploys started at once, exactly one creates it; the
other reads who holds it (the config's data: who, host, pid, since, what) and waits until a deadline or refuses
in one line naming the holder. A deploy removes its lock when it ends, also on failure, Ctrl-C and SIGTERM.
A lock left by a killed deploy (SIGKILL, a lost machine) is *stale* when its pid is gone on this host, or it is
older than DEPLOY_LOCK_TIMEOUT; a deploy then refuses and says to run `invoke deploy.unlock`.

Every deploy and rollback also appends one line to `.lifecycle/deploys.jsonl`: who deployed what, when, and how
it ended. Builders return argv; `stale_reason` and `Holder` are pure; `DeployLock` sequences them.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import getpass
import json
import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from lifecycle import context, private
from lifecycle.commands import swarm
from lifecycle.errors import UserError
from lifecycle.runner import Runner

DEPLOYS_FILE = Path(".lifecycle") / "deploys.jsonl"
POLL_SECONDS = 1.0


# ------------------------------------------------------------------------------------------ decisions
@dataclass(frozen=True)
class Holder:
    who: str
    host: str
    pid: int
    since: str  # ISO 8601, UTC, seconds
    what: str  # "deploy name@sha256:0123...", "rollback"

    @classmethod
    def me(cls, what: str, now: dt.datetime) -> Holder:
        try:
            who = getpass.getuser()
        except (KeyError, OSError):
            who = str(os.getuid())
        return cls(who, socket.gethostname(), os.getpid(), iso(now), what)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Holder:
        data = json.loads(text)
        return cls(str(data["who"]), str(data["host"]), int(data["pid"]), str(data["since"]), str(data["what"]))

    @classmethod
    def from_inspect(cls, inspect_json: str) -> Holder:
        """The probe's answer: the config's data is the holder's JSON; an unreadable one still names a holder."""
        data = json.loads(inspect_json)
        data = data[0] if isinstance(data, list) else data
        try:
            return cls.from_json(base64.b64decode(data.get("Spec", {}).get("Data", "")).decode())
        except (ValueError, KeyError, TypeError):
            return cls("unknown", "unknown", 0, str(data.get("CreatedAt", ""))[:19] + "Z", "unreadable lock")

    def line(self) -> str:
        return f"{self.who}@{self.host} (pid {self.pid}) since {self.since}: {self.what}"


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> dt.datetime | None:
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def stale_reason(holder: Holder, now: dt.datetime, host: str, pid_alive: bool, timeout: float) -> str:
    """Why a held lock is left over ("" while its holder may still be working). `pid_alive` is only asked about
    when the holder ran on this host; elsewhere, only the age can tell."""
    if holder.host == host and holder.pid > 0 and not pid_alive:
        return f"its deploy (pid {holder.pid} on this host) is gone"
    since = parse_iso(holder.since)
    if since is None:
        return f"it names no valid start time ({holder.since!r})"
    age = (now - since).total_seconds()
    if age > timeout:
        return f"it is {age:.0f}s old, more than DEPLOY_LOCK_TIMEOUT ({timeout:.0f}s)"
    return ""


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def check_wait(value: object) -> float:
    text = str(value).strip()
    if not text.isdigit():
        raise UserError(f"--wait {value!r} is not a whole number of seconds; e.g. --wait 600 (0 refuses at once)")
    return float(text)


# ------------------------------------------------------------------------------------------ the deploy log
@dataclass(frozen=True)
class Entry:
    at: str
    who: str
    host: str
    pid: int
    action: str  # deploy, rollback, unlock
    what: str
    outcome: str  # ok, failed: ..., interrupted, released: ...

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def append_log(root: Path, entry: Entry) -> None:
    path = root / DEPLOYS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with private.open_private_append(path) as log:
        log.write(entry.to_json() + "\n")


def read_log(root: Path) -> list[Entry]:
    path = root / DEPLOYS_FILE
    if not path.is_file():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(ValueError, TypeError):
            entries.append(Entry(**json.loads(line)))
    return entries


# ------------------------------------------------------------------------------------------ sequencing
@dataclass
class DeployLock:
    stack: str
    root: Path
    run: Runner
    timeout: float  # DEPLOY_LOCK_TIMEOUT: older locks are stale
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    say: Callable[[str], None] = context.say

    @property
    def name(self) -> str:
        return swarm.deploy_lock_name(self.stack)

    def holder(self) -> Holder | None:
        answer = self.run(swarm.lock_inspect(self.name), warn=True, capture=True)
        return Holder.from_inspect(answer.stdout) if answer.ok and answer.stdout.strip() else None

    def try_create(self, me: Holder) -> tuple[bool, str]:
        with tempfile.TemporaryDirectory(prefix="lifecycle-lock-") as folder:
            file = Path(folder) / "holder.json"
            file.write_text(me.to_json(), encoding="utf-8")
            answer = self.run(swarm.lock_create(self.name, file, self.stack), warn=True, capture=True)
        return answer.ok, (answer.stderr or answer.stdout).strip()

    def acquire(self, what: str, wait: float) -> Holder:
        """Take the lock or raise one line: held (after waiting up to `wait` seconds), or stale."""
        deadline = self.clock() + wait
        announced = False
        while True:
            me = Holder.me(what, self.now())
            created, said = self.try_create(me)
            if created:
                return me
            holder = self.holder()
            if holder is None:
                if "already exists" not in said and "AlreadyExists" not in said:
                    raise UserError(f"could not take the deploy lock {self.name}: {said.splitlines()[-1:] or said}")
                continue  # released between our create and our look: try again
            stale = stale_reason(holder, self.now(), socket.gethostname(), pid_alive(holder.pid), self.timeout)
            if stale:
                raise UserError(
                    f"the deploy lock is left over by {holder.line()} ({stale}); "
                    "nothing was changed; run: invoke deploy.unlock"
                )
            if self.clock() >= deadline:
                retry = "retry later or with --wait SECONDS" if wait == 0 else f"waited {wait:.0f}s"
                raise UserError(f"another deploy holds the lock: {holder.line()}; nothing was changed; {retry}")
            if not announced:
                self.say(f"waiting for the deploy lock, held by {holder.line()}")
                announced = True
            self.sleep(POLL_SECONDS)

    def release(self, me: Holder) -> None:
        """Remove the lock if it is still ours (after `invoke deploy.unlock` it may be somebody else's)."""
        if self.holder() == me:
            self.run(swarm.lock_remove(self.name), warn=True, capture=True)

    @contextlib.contextmanager
    def held(self, action: str, what: str, wait: float) -> Iterator[Holder]:
        """The lock for the duration of the block, and one line in the deploy log when it ends, however it ends."""
        me = self.acquire(f"{action} {what}".strip(), wait)
        outcome = "interrupted"
        try:
            yield me
            outcome = "ok"
        except UserError as error:
            outcome = f"failed: {error}"
            raise
        except Exception as error:
            outcome = f"failed: {type(error).__name__}"
            raise
        finally:
            try:
                self.release(me)
            finally:
                append_log(self.root, Entry(iso(self.now()), me.who, me.host, me.pid, action, what, outcome))

    def unlock(self) -> str:
        """Release a lock left by a killed deploy; refused while its deploy still runs on this host."""
        holder = self.holder()
        if holder is None:
            return f"no deploy holds the lock of stack {self.stack}; nothing to do"
        if holder.host == socket.gethostname() and pid_alive(holder.pid) and holder.pid != os.getpid():
            stale = stale_reason(holder, self.now(), holder.host, True, self.timeout)
            if not stale:
                raise UserError(
                    f"the deploy lock is held by a running deploy, {holder.line()}; stop it (Ctrl-C) or wait for it"
                )
        self.run(swarm.lock_remove(self.name))
        me = Holder.me("unlock", self.now())
        append_log(
            self.root, Entry(me.since, me.who, me.host, me.pid, "unlock", holder.what, f"released: {holder.line()}")
        )
        return f"released the deploy lock held by {holder.line()}"
