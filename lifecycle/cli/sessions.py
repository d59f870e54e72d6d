"""Nox sessions: `nox` runs lint, unit, qa and e2e in the suite's own checkout (the README's test command), qa in an
adopted project; `nox --list` shows all, and the opt-in sessions declare themselves with `@nox.session(default=False)`.
The project's noxfile.py imports this module (a shim; template/).

Thin by design: the sessions sequence the shared core in `lifecycle/`, which builds every docker
command as a list and prints it before it runs.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nox

from lifecycle import deps, registry
from lifecycle.browser import ensure_chromium
from lifecycle.commands import compose
from lifecycle.context import Context
from lifecycle.doctor import preflight
from lifecycle.errors import EXPECTED_FAILURES
from lifecycle.layout import is_suite_checkout, tools_lock
from lifecycle.local import Local
from lifecycle.runner import SubprocessRunner, interrupt_on_sigterm
from lifecycle.settings import ENGINE_CACHE, ROOT, load_settings
from lifecycle.stages import STAGES

nox.needs_version = ">=2026.10.20"
if not is_suite_checkout(ROOT):  # an adopted project has no suite tests: its own run in qa
    nox.options.sessions = ["qa"]
nox.options.reuse_venv = "yes"
# uv (in the tools lock) makes a session's environment in about a second from its cache, where pip took 10 to 15 s
# for each of the seven sessions .ci/run makes; virtualenv + pip when uv is missing.
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.error_on_external_run = True

# SIGTERM (timeout(1), a cancelled CI job) cleans up as Ctrl-C does: the sessions that run in this process (qa, bench)
# take down what they made; a pytest session's run gets PYTEST_SHUTDOWN to do the same (see tests/*/conftest.py).
interrupt_on_sigterm()
# nox passes SIGTERM on to pytest after interrupt_timeout and kills it terminate_timeout later: time for its fixtures
# to remove their stacks, volumes and swarm mode (nox's defaults, under a second, would leave them behind).
PYTEST_SHUTDOWN = {"interrupt_timeout": 5, "terminate_timeout": 300}
TOOLS = tools_lock(ROOT)
# e2e runs everything but the swarm tests; `nox -s swarm` runs those (opt-in, .ci/run runs it after `nox`): they put
# the engine in swarm mode, and leaving it restarts every container on a user-defined network of the engine
# (lifecycle/commands/swarm.py), a user's own and other tests' too. Two workers, each module whole on one of them
# (docs/test-clock.md): one test's waiting overlaps another's work; `nox -s e2e -- -n 0` runs one at a time.
# Run by itself after the two-worker phase: with another module's work beside it, its restored server twice accepted
# the login its backup should have lacked (docs/test-clock.md); one at a time it always passed.
E2E_ALONE = "tests/integration/test_physical_backup.py"
E2E_TESTS = ("tests/integration", "-m", "not swarm", "-n", "2", "--ignore", E2E_ALONE)
SWARM_TESTS = ("tests/integration", "-m", "swarm")
SHELL_SCRIPTS = [
    "bash_files/entrypoint.sh",
    "bash_files/file_env.sh",
    "bash_files/qa.sh",
    "scripts/bootstrap",
    ".ci/run",
    *(["template/.ci/run"] if (ROOT / "template" / ".ci" / "run").is_file() else []),  # what adopt writes
    *sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("docker/**/*.sh")),
]
WORKFLOWS = sorted(str(p.relative_to(ROOT)) for p in ROOT.glob(".github/workflows/*.yml"))
DOCKERFILES = ["docker/Dockerfile", *sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("docker/offline/*.Dockerfile"))]


def install_locked(session: nox.Session, lock: Path = TOOLS) -> None:
    """Install a hash-locked requirements file: a tampered or unexpected download fails, naming the package."""
    session.install("--require-hashes", "-r", str(lock))


@contextmanager
def session_errors(session: nox.Session) -> Iterator[None]:
    """An expected failure (bad input, a failed command) fails the session with its one line."""
    try:
        yield
    except EXPECTED_FAILURES as error:
        session.error(str(error))


def engine_local(session: nox.Session) -> Local:
    """The shared core with a runner that prints each command, once docker and compose v2 answer."""
    with session_errors(session):
        local = Local(Context(load_settings(), SubprocessRunner()))
        preflight(local.run, cache=local.settings.root / ENGINE_CACHE)
    return local


def generated_pages_stale() -> list[str]:
    """docgen's line for each generated page (docs/settings.md, docs/tasks.md) that disagrees with the code."""
    import docgen  # the task list comes from tasks.py, which needs invoke: only lint reads it
    import tasks

    return docgen.stale(tasks.ns, ROOT)


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff (check and format), ShellCheck, hadolint, lock and generated-page freshness, actionlint, `docker compose
    config` (the stages and the registry)."""
    install_locked(session)
    stale = deps.stale_locks() + generated_pages_stale()
    if stale:
        session.error("\n".join(stale))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("shellcheck", "--external-sources", *SHELL_SCRIPTS)
    session.run("hadolint", *DOCKERFILES)
    session.run("actionlint", *WORKFLOWS)
    local = engine_local(session)
    for stage in STAGES:
        local.run(compose.config_argv(local.settings, stage), env=local.settings.env)
    local.run(registry.compose_argv(local.settings, "config", "--quiet"), env=local.settings.env)


@nox.session
def unit(session: nox.Session) -> None:
    """Host-side unit tests: command builders, zip, settings, decisions. No engine, seconds (two workers)."""
    install_locked(session)
    session.run("pytest", "tests/unit", "-n", "2", *session.posargs)


@nox.session(venv_backend="none")
def qa(session: nox.Session) -> None:
    """Build test-qa and run the site's tests in it against a real database (posargs go to pytest).

    Needs the Docker engine. Copies JUnit XML and coverage to reports/, exits with pytest's status, and
    always tears down its containers, network and test volume (dumping ps and logs on failure).
    """
    with session_errors(session):
        status = engine_local(session).qa(session.posargs)
    if status:
        session.error()  # the suite's last line already says pytest's status and where the reports are


@nox.session
def e2e(session: nox.Session) -> None:
    """The lifecycle as a user runs it, plus image contracts and faults, with the real engine (minutes).

    Runs tests/integration but its swarm tests (those are `nox -s swarm`'s), two modules at a time (`-- -n 0`: one
    at a time), then test_physical_backup.py by itself: zip, build stage and prod, up, /health and a write-then-read,
    down; offline base images; what each image must and must not contain; faults and bad input; releases and the
    registry; backups; prod over HTTPS, in headless Chromium too (installed from Debian when missing).
    """
    install_locked(session)
    try:
        ensure_chromium(SubprocessRunner())  # the HTTPS browser test; installed once, when missing
    except EXPECTED_FAILURES as error:
        session.error(str(error))
    env = {"PYTHON_FOR_TASKS": sys.executable}
    session.run("pytest", *E2E_TESTS, *session.posargs, env=env, **PYTEST_SHUTDOWN)
    # 5: what posargs selected holds none of its tests
    session.run("pytest", E2E_ALONE, *session.posargs, env=env, success_codes=[0, 5], **PYTEST_SHUTDOWN)


@nox.session(default=False)
def swarm(session: nox.Session) -> None:
    """`invoke deploy` and `swarm.leave` on a real single-node swarm (~5 min; not in the default set).

    Runs the swarm tests of tests/integration (mark `swarm`), one at a time: they put this engine in swarm mode and
    leave it again at the end, which restarts every container on a user-defined network of the engine (yours too:
    moby/moby#45144). .ci/run runs it right after the default set.
    """
    install_locked(session)
    session.run("pytest", *SWARM_TESTS, *session.posargs, env={"PYTHON_FOR_TASKS": sys.executable}, **PYTEST_SHUTDOWN)


@nox.session(default=False)
def cluster(session: nox.Session) -> None:
    """A 3-node swarm on this machine: nodes, registry pulls, overlay DNS, a node dying under load, a rollback (~5 min).

    Runs tests/cluster as root: three engines in network namespaces that the tests create and always remove
    (invoke cluster.up/down). Not in the default set; `.ci/run` runs it beside the swarm and adopt sessions (its
    engines are its own). Writes reports/cluster.json.
    """
    install_locked(session)
    session.run(
        "pytest", "tests/cluster", *session.posargs, env={"PYTHON_FOR_TASKS": sys.executable}, **PYTEST_SHUTDOWN
    )


@nox.session(default=False)
def adopt(session: nox.Session) -> None:
    """The whole lifecycle on real projects made at test time from the package index (~10 min; not in the default set).

    Runs tests/adopt: `django-admin startproject` + `startapp`, `wagtail start`, `spirit startproject`, each in a
    temporary folder outside the checkout: adopt, bootstrap, prod over HTTPS, the project's tests in qa, media across
    down/up (served over HTTPS), backup/restore, release, deploy on a single-node swarm (under /tmp/swarm.lock,
    ADOPT_SWARM_LOCK). .ci/run runs it after the swarm session, the cluster session beside it. Writes
    reports/adopt.json (times: the bench's adopt rows). ADOPT_PROJECTS=a,b picks.
    """
    install_locked(session)
    session.run("pytest", "tests/adopt", *session.posargs, env={"PYTHON_FOR_TASKS": sys.executable}, **PYTEST_SHUTDOWN)


@nox.session(venv_backend="none", default=False)
def bench(session: nox.Session) -> None:
    """Benchmark builds, image sizes, qa, start-up and serving against targets (~10+ min; not in the default set).

    Runs under isolated settings (its own images, compose project, port and zip folder) and removes what it made.
    Prints a table and writes reports/bench.json and reports/bench.md. Options after `--`: --runs N (medians of
    N samples, default 3), --duration S (seconds per load run), --skip SECTION, --strict (exit 1 on a MISS),
    --backup-mb MB (the backup section's data, default 200).
    """
    from bench.main import run_bench  # only this session needs them
    from bench.options import parse_options

    options = parse_options(session.posargs)
    local = engine_local(session)
    with session_errors(session):
        rows = run_bench(
            local.settings, local.run, options.runs, ROOT / "reports", duration=options.duration, skip=options.skip,
            backup_mb=options.backup_mb,
        )  # fmt: skip
    missed = [row.metric for row in rows if row.status == "MISS"]
    if options.strict and missed:
        session.error(f"{len(missed)} target(s) missed: {', '.join(missed)}")


@nox.session(default=False)
def audit(session: nox.Session) -> None:
    """pip-audit of every lock against PyPI's vulnerability data (not in the default set; needs pypi.org).

    When the service cannot be reached it says so in one line and fails, rather than passing unchecked; so does
    any package it could not check (--strict).
    """
    probe = deps.audit_probe_url()
    reason = deps.unreachable(probe)
    if reason:
        session.error(
            f"audit: cannot reach PyPI's vulnerability data at {probe} ({reason}); check the network or proxy"
        )
    install_locked(session, ROOT / "requirements" / "audit.txt")
    for lock in deps.LOCKS:  # --strict: a package that could not be audited fails the session too
        session.run("pip-audit", "--strict", "--progress-spinner", "off", "--disable-pip", "--require-hashes",
                    "-r", lock.output)  # fmt: skip
