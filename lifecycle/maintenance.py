"""Maintenance mode: the HTTPS proxy answers 503 with a page and Retry-After, switched at run time.

The proxy's configuration (docker/proxy/haproxy.cfg) holds two in-memory ACLs, `virt@maintenance.acl` (holds `on`
while maintenance is on) and `virt@maintenance-allow.acl` (client addresses that still reach the app). HAProxy's
runtime API, on the proxy container's own loopback (127.0.0.1:9999, never published), changes them: no reload,
no restart, no connection dropped, and no app container touched. /health always reaches the app.

The runtime state lives in the running proxy only, so the switch is also recorded in
`.lifecycle/maintenance-{compose,swarm}.json`;
`invoke up --stage prod` and `invoke deploy` apply it again to a proxy they started. Builders return argv; the
CLI lines and their answers are plain strings and pure functions; `Maintenance` sequences them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lifecycle import private
from lifecycle.commands import haproxy
from lifecycle.context import Context, UsesContext
from lifecycle.errors import UserError
from lifecycle.settings import Settings

MAINTENANCE_ACL = "virt@maintenance.acl"
ALLOW_ACL = "virt@maintenance-allow.acl"
STATE_FOLDER = Path(".lifecycle")  # maintenance-compose.json, maintenance-swarm.json
TARGETS = ("compose", "swarm")


PLAIN_PAGE = Path("docker/proxy/maintenance.html")
PROJECT_PAGE = Path("templates/503.html")


# ------------------------------------------------------------------------------------------ decisions
def page_file(settings: Settings) -> Path:
    """The page HAProxy serves in maintenance: MAINTENANCE_PAGE, else the project's templates/503.html (served as
    it is: no template tags), else the suite's plain one."""
    chosen = settings["MAINTENANCE_PAGE"]
    if chosen:
        path = settings.root / chosen
        if not path.is_file():
            raise UserError(f"MAINTENANCE_PAGE={chosen!r} is not a file in the checkout; e.g. templates/503.html")
        return path
    project = settings.root / settings["PROJECT_DIR"] / PROJECT_PAGE
    return project if project.is_file() else settings.root / PLAIN_PAGE


def check_allow(value: str) -> list[str]:
    """MAINTENANCE_ALLOW: comma-separated addresses or networks (CIDR) that still reach the app."""
    allowed = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        try:
            allowed.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise UserError(
                f"MAINTENANCE_ALLOW has {item!r}, not an address or network; e.g. 203.0.113.7,10.0.0.0/8"
            ) from None
    return allowed


def commands(on: bool, allow: Sequence[str]) -> list[str]:
    """The runtime API lines that switch maintenance on (with the allow-list) or off; each is idempotent."""
    if not on:
        return [f"clear acl {MAINTENANCE_ACL}"]
    return [
        f"clear acl {ALLOW_ACL}",
        *[f"add acl {ALLOW_ACL} {network}" for network in allow],
        f"clear acl {MAINTENANCE_ACL}",
        f"add acl {MAINTENANCE_ACL} on",
    ]


def show_command() -> str:
    return f"show acl {MAINTENANCE_ACL}"


def is_on(show_answer: str) -> bool:
    """`show acl virt@maintenance.acl` answers one `0xADDRESS on` line per entry."""
    return any(line.split()[1:2] == ["on"] for line in show_answer.splitlines())


def answer_error(answer: str) -> str:
    """A runtime API answer that is an error ("" for success: nothing, or the entries shown)."""
    text = answer.strip()
    lowered = text.lower()
    return text if any(word in lowered for word in ("unknown", "error", "not found", "permission denied")) else ""


@dataclass(frozen=True)
class State:
    on: bool
    since: str
    allow: tuple[str, ...] = ()

    def to_json(self) -> str:
        return json.dumps({"on": self.on, "since": self.since, "allow": list(self.allow)}, sort_keys=True)

    @staticmethod
    def path(root: Path, target: str) -> Path:
        return root / STATE_FOLDER / f"maintenance-{target}.json"

    def write(self, root: Path, target: str) -> None:
        path = self.path(root, target)
        path.parent.mkdir(parents=True, exist_ok=True)
        private.replace_private(path, (self.to_json() + "\n").encode())

    @classmethod
    def read(cls, root: Path, target: str) -> State:
        path = cls.path(root, target)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(bool(data["on"]), str(data["since"]), tuple(data.get("allow", ())))
        except (OSError, ValueError, KeyError, TypeError):
            return cls(False, "")


# ------------------------------------------------------------------------------------------ sequencing
@dataclass
class Maintenance(UsesContext):
    ctx: Context

    def proxies(self, target: str | None = None) -> dict[str, list[str]]:
        """Running proxy containers per target (compose prod, the swarm stack's on this node)."""
        probes = {
            "compose": haproxy.compose_proxies(self.settings.project_name),
            "swarm": haproxy.swarm_proxies(self.settings.project_name),
        }
        found = {}
        for name, argv in probes.items():
            if target in (None, name):
                answer = self.run(argv, warn=True, capture=True)
                found[name] = answer.stdout.split() if answer.ok else []
        return found

    def send(self, container: str, command: str) -> str:
        answer = self.run(haproxy.runtime_argv(container, command), warn=True, capture=True)
        problem = answer_error(answer.stdout) or ("" if answer.ok else (answer.stderr.strip() or "no answer"))
        if problem:
            raise UserError(f"the proxy {container[:12]} refused {command!r}: {problem.splitlines()[-1]}")
        return answer.stdout

    def apply(self, containers: Sequence[str], on: bool, allow: Sequence[str]) -> None:
        for container in containers:
            for command in commands(on, allow):
                self.send(container, command)

    def switch(self, on: bool, target: str | None = None) -> list[str]:
        """Switch every running proxy of this checkout; record the state; one line per proxy switched."""
        if target is not None and target not in TARGETS:
            raise UserError(f"--target {target!r} is not one of {', '.join(TARGETS)}")
        allow = list(self.settings.typed("MAINTENANCE_ALLOW"))
        if self.dry:
            return [f"dry run: would send {line!r} to each proxy" for line in commands(on, allow)]
        found = self.proxies(target)
        containers = [container for listed in found.values() for container in listed]
        if not containers:
            raise UserError(
                "no proxy of this checkout is running (compose prod or the swarm stack); "
                "run: invoke up --stage prod, or invoke deploy"
            )
        self.apply(containers, on, allow)
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        for name, listed in found.items():
            if listed:
                State(on, now, tuple(allow)).write(self.settings.root, name)
        word = "on" if on else "off"
        allowed = (
            f"; still reaching the app: /health, {', '.join(allow)}" if on and allow else "; /health still answers"
        )
        return [f"maintenance {word} on the {name} proxy ({len(listed)} container(s)){allowed if on else ''}"
                for name, listed in found.items() if listed]  # fmt: skip

    def reapply(self, target: str) -> None:
        """After a proxy (re)start: switch it on again when the recorded state says so."""
        state = State.read(self.settings.root, target)
        if state.on and not self.dry:
            self.apply(self.proxies(target).get(target, []), True, state.allow)
            self.say(f"maintenance is still on (since {state.since}): invoke maintenance.off ends it")

    def status(self) -> dict[str, bool]:
        """Per target with a running proxy: whether maintenance is on in every one of its containers."""
        answer = {}
        for name, containers in self.proxies().items():
            if containers:
                answer[name] = all(is_on(self.send(container, show_command())) for container in containers)
        return answer
