"""What every section gets (`Bench`: the isolated suite, timers, what was created) and what a section is.

A `Section` is a name, a one-line description, `measure(bench) -> measurements` and
`rows(measurements, results) -> [Row]` (see bench/__init__.py for how to add one).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from bench import facts
from bench.evaluate import Results, Row
from bench.load import Pinning, free_port, generate_load
from lifecycle.commands import compose, docker
from lifecycle.context import Context
from lifecycle.errors import EXPECTED_FAILURES, UserError
from lifecycle.local import Local
from lifecycle.probes import image_id
from lifecycle.runner import Result, Runner
from lifecycle.settings import Settings, default_project_name
from lifecycle.stages import PROD, Stage

BENCH_ZIP_DIR = "updated_zip/bench"
CODE_FILE = Path("django_site") / "wsgi.py"  # the file a code change appends a comment to


@dataclass(frozen=True)
class Section:
    """One part of the benchmark: `nox -s bench -- --skip NAME` skips it; bench.json keeps its measurements
    under NAME; `rows` turns them (and, for comparisons, the other sections' results) into table rows."""

    name: str
    about: str
    measure: Callable[[Bench], dict[str, Any]]
    rows: Callable[[Mapping[str, Any], Results], list[Row]]
    targets: Mapping[str, float] = field(default_factory=dict)


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def failure_recorded(name: str, results: dict[str, Any]) -> Iterator[None]:
    """A failed step is kept in results["errors"] (and shown as a row) instead of ending the run."""
    try:
        yield
    except (*EXPECTED_FAILURES, OSError, ValueError) as error:  # anything else is a bench bug: shown whole
        say(f"{name} failed: {error}")
        results.setdefault("errors", {})[name] = str(error)


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = action()
    return round(time.perf_counter() - start, 3), value


@dataclass
class TimedRunner:
    """A runner that remembers how long each command it ran took, in order (e.g. the compose builds inside
    `Local.build`, apart from the zip and probes around them)."""

    run: Runner
    timings: list[tuple[tuple[str, ...], float]] = field(default_factory=list)

    def __call__(self, argv, **options) -> Result:
        start = time.perf_counter()
        try:
            return self.run(argv, **options)
        finally:
            self.timings.append((tuple(argv), round(time.perf_counter() - start, 3)))

    def seconds_since(self, mark: int, commands: set[tuple[str, ...]]) -> float:
        """Seconds spent in those commands among the runs after the first `mark` ones."""
        return round(sum(seconds for argv, seconds in self.timings[mark:] if argv in commands), 3)


class BuildTime(NamedTuple):
    suite: float  # Local.build: certificates, probes, git metadata, zip, compose build
    compose: float  # the `docker compose build` commands alone (0 when the build key said nothing to build)


def bench_settings(settings: Settings) -> Settings:
    """The isolated settings: own image name and compose project (per checkout), ports and zip folder."""
    name = default_project_name("bench", settings.root)
    ports = {name: str(free_port()) for name in ("APP_PORT", "HTTPS_PORT", "REGISTRY_PORT")}
    # The load goes to APP_PORT with X-Forwarded-Proto: https, standing in for the TLS proxy: the app believes it.
    trust = {"GUNICORN_FORWARDED_ALLOW_IPS": "*"}
    return settings.override(
        PROJ_NAME=name, COMPOSE_PROJECT_NAME=name, ZIP_DIR=BENCH_ZIP_DIR, REGISTRY="", **ports, **trust
    )


# what bench_settings changes
ISOLATED = ("PROJ_NAME", "COMPOSE_PROJECT_NAME", "APP_PORT", "HTTPS_PORT", "REGISTRY_PORT", "REGISTRY", "ZIP_DIR")


class Bench:
    """One benchmark run: the isolated suite, what it created, and how to time things under it."""

    def __init__(self, settings: Settings, run: Runner, runs: int, duration: int, tool: str = "wrk"):
        self.settings = bench_settings(settings)
        self.run = TimedRunner(run)
        self.runs = runs
        self.duration = duration
        self.backup_mb = 200  # MB the backup section generates (nox -s bench -- --backup-mb)
        self.tool = tool
        self.ctx = Context(self.settings, self.run)
        self.suite = Local(self.ctx)
        self.env = self.settings.env
        self.name = self.settings.project_name  # containers the bench names itself start with this
        self.image_ids: set[str] = set()  # every image a build made, so cleanup finds those later builds untagged
        self.undo: list[Callable[[], None]] = []  # what sections started outside the compose project

    # ------------------------------------------------------------------------------------- timing
    def build_stage(self, stage: Stage, *, no_cache: bool = False) -> BuildTime:
        """`Local.build` under the isolated settings, timed whole and compose alone."""
        mark = len(self.run.timings)
        seconds, _ = timed(lambda: self.suite.build(stage, no_cache=no_cache))
        builds = {  # with its SBOM image, then (after a dependency change) the label-only rebuild
            tuple(compose.build_argv(self.settings, stage, no_cache=no_cache, with_sbom=sbom)) for sbom in (True, False)
        }
        compose_seconds = self.run.seconds_since(mark, builds)  # not `compose`: the module is used just above
        self.remember_image(self.settings.image(stage))
        flag = " --no-cache" if no_cache else ""
        say(f"build {stage}{flag}: {seconds:.1f} s (compose build {compose_seconds:.1f} s)")
        return BuildTime(seconds, compose_seconds)

    def remember_image(self, image: str) -> None:
        """Note the image a build just tagged: a later build may untag it, and cleanup still removes it."""
        built = image_id(self.run, image)
        if built:
            self.image_ids.add(built)

    def ensure_image(self, stage: Stage) -> None:
        if facts.image_bytes(self.run, self.settings.image(stage)) is None:
            self.build_stage(stage)

    def process_env(self) -> dict[str, str]:
        """The environment for a task or session run as a process: the user's, with the isolated settings."""
        return {**os.environ, **{name: self.settings[name] for name in ISOLATED}}

    def time_process(self, argv: list[str], *, warn: bool = False) -> tuple[float, Result]:
        """Seconds a command takes as a user runs it (interpreter start included); raises on failure unless warn."""
        seconds, result = timed(lambda: self.run(argv, env=self.process_env(), warn=warn))
        say(f"{' '.join(argv[1:])}: {seconds:.2f} s, exit {result.return_code}")
        return seconds, result

    def invoke_argv(self, *args: str) -> list[str]:
        """`invoke ARGS` in this checkout, as a process (with `time_process`: the isolated settings)."""
        return [sys.executable, "-m", "invoke", "--search-root", str(self.settings.root), *args]

    def invoke(self, *args: str) -> float:
        """Time `invoke ARGS` in this checkout, the whole process (what a user waits for)."""
        return self.time_process(self.invoke_argv(*args))[0]

    def load(
        self, url: str, connections: int, duration: int | None = None, pin: Pinning | None = None
    ) -> dict[str, Any]:
        result = generate_load(self.run, self.tool, url, connections, duration or self.duration, pin)
        say(f"{url} c={connections}: {result['rps']:.0f} req/s, p99 {result['p99_ms']} ms, {result['errors']} errors")
        return result

    @contextlib.contextmanager
    def own_project(self, suffix: str, *, ports: tuple[str, ...] = ()) -> Iterator[Settings]:
        """For a section that starts a stack of its own (a database, a swarm stack): inside, `self.settings` (and so
        `process_env`, the tasks it times) name the compose project and stack `<bench>-<suffix>`, with free `ports`,
        so its volumes, networks and published ports are never another section's. Builds stay the bench's
        (`self.suite`). Undo actions must capture the yielded settings: they run after the section, outside."""
        main = self.settings
        own_ports = {port: str(free_port()) for port in ports}
        self.settings = main.override(COMPOSE_PROJECT_NAME=f"{self.name}-{suffix}", **own_ports)
        self.env = self.settings.env
        try:
            yield self.settings
        finally:
            self.settings, self.env = main, main.env

    # --------------------------------------------------------------------------------- containers
    def service_id(self, service: str) -> str:
        argv = compose.compose_argv(self.settings, "ps", "--quiet", service, stage=PROD)
        out = self.run(argv, env=self.env, warn=True, capture=True).stdout.strip()
        if not out:
            raise UserError(f"no running {service} container in project {self.name}")
        return out.splitlines()[0]

    def container(self, suffix: str) -> str:
        """A name for a container the bench starts with plain `docker run`; cleanup removes it."""
        name = f"{self.name}-{suffix}"
        self.undo.append(
            lambda: self.run(docker.docker_argv("rm", "--force", name), env=self.env, warn=True, capture=True)
        )
        return name

    # ---------------------------------------------------------------------------------- the run
    def measure(self, section: Section, results: dict[str, Any]) -> None:
        """Run one section and keep its measurements under its name; then, however it ended (a failure, Ctrl-C,
        SIGTERM), take down what it started: the next section never meets its containers, stack, volumes or ports."""
        say(f"section {section.name}: {section.about}")
        mark = len(self.undo)
        try:
            with failure_recorded(section.name, results):
                results[section.name] = section.measure(self)
        finally:
            with failure_recorded(f"{section.name} cleanup", results):
                self.undo_since(mark)
                self.suite.down()  # the compose project's containers and network (its volume stays for the next)

    def undo_since(self, mark: int) -> None:
        """Run the undo actions registered after the first `mark`, newest first, each once."""
        actions, self.undo[mark:] = self.undo[mark:], []
        for action in reversed(actions):
            action()

    def cleanup(self) -> None:
        """Remove what the bench created, and nothing else: its containers, project, images and zip."""
        self.undo_since(0)
        try:
            self.suite.clean(volumes=True, yes=True, checkout_files=False, no_backup=True)  # its own throwaway data
        finally:
            for image_id in sorted(self.image_ids):  # earlier builds' images the later ones untagged
                tags = facts.output(
                    self.run, docker.docker_argv("image", "inspect", "--format", "{{len .RepoTags}}", image_id)
                )
                if tags == "0":
                    self.run(docker.docker_argv("image", "rm", image_id), env=self.env, warn=True, capture=True)
            with contextlib.suppress(OSError):  # the bench's own zip folder, once empty
                (self.settings.root / BENCH_ZIP_DIR).rmdir()


class restored:
    """Put a file back byte-for-byte (and its mode and times) on exit, whatever happened inside; a file that
    did not exist is removed again."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self) -> Path:
        self.data = self.path.read_bytes() if self.path.exists() else None
        self.stat = self.path.stat() if self.data is not None else None
        return self.path

    def __exit__(self, *exc: object) -> None:
        if self.data is None or self.stat is None:
            self.path.unlink(missing_ok=True)
            return
        self.path.write_bytes(self.data)
        os.chmod(self.path, self.stat.st_mode)
        os.utime(self.path, ns=(self.stat.st_atime_ns, self.stat.st_mtime_ns))


def append_line(path: Path, line: str) -> None:
    data = path.read_bytes()
    path.write_bytes(data + (b"" if data.endswith(b"\n") or not data else b"\n") + line.encode() + b"\n")


def change_code(root: Path, number: int) -> None:
    """A new comment in CODE_FILE: a code change the next build must see (unique, so no cache hit)."""
    append_line(root / CODE_FILE, f"# bench: code change {time.time_ns()} {number}")
