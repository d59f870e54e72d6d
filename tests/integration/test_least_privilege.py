"""Least privilege with the real engine: the running stage and prod containers are non-root, read-only, without
capabilities or privilege escalation; no secret is baked into an image; the app uses its own database user;
Django's deploy checks are clean; hadolint and ShellCheck are clean.

One isolated project (`it-<random>`) runs db, stage and prod (two free ports); it is removed at the end.
"""

from __future__ import annotations

import json
import os
import secrets
import string
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.checkout import REPO_ROOT, IsolatedCheckout, project_up
from tests.helpers.tools import PYTHON_FOR_TASKS

pytestmark = pytest.mark.integration

RUNTIME_STAGES = ("stage", "prod")


@pytest.fixture(scope="module")
def stack(engine) -> Iterator[IsolatedCheckout]:
    """`invoke up --stage stage` and `--stage prod` in one isolated project (one db, two ports)."""
    with project_up(*RUNTIME_STAGES) as project:
        yield project


PROCESS_UIDS = r"""
import os
for pid in (p for p in os.listdir('/proc') if p.isdigit()):
    try:
        uid = [l.split()[1] for l in open(f'/proc/{pid}/status') if l.startswith('Uid:')][0]
        cmd = open(f'/proc/{pid}/cmdline', 'rb').read().replace(b'\0', b' ').replace(b'\n', b' ').decode().strip()
    except OSError:
        continue
    print(uid, cmd)
"""


@pytest.mark.parametrize("stage", RUNTIME_STAGES)
def test_container_runs_non_root_read_only_without_capabilities(engine, stack, stage):
    container = stack.container(stage)
    info = json.loads(engine.docker("inspect", container).stdout)[0]
    host = info["HostConfig"]
    assert info["Config"]["User"].split(":")[0] == "10001"
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"] and not host.get("CapAdd")
    assert any(opt.startswith("no-new-privileges") and not opt.endswith("false") for opt in host["SecurityOpt"])
    assert host["Privileged"] is False
    assert "/tmp" in (host.get("Tmpfs") or {})
    assert engine.docker("exec", container, "id", "-u").stdout.strip() == "10001"
    listed = engine.docker("exec", container, "python3", "-c", PROCESS_UIDS).stdout.splitlines()
    # `runc init` is the engine setting up another exec (the health check, every second): it becomes that
    # process, as the container's user, a moment later; it is not a process of the container running as root.
    processes = [line for line in listed if line.split(" ", 1)[1:] != ["runc init"]]
    assert processes and all(line.split(" ", 1)[0] == "10001" for line in processes), listed
    assert engine.docker("exec", container, "touch", "/app/x", check=False).returncode != 0
    assert engine.docker("exec", container, "touch", "/tmp/x", check=False).returncode == 0, "tmpfs not writable"


def secret_values(settings) -> dict[str, str]:
    env = settings.env
    values = {
        "DJANGO_SECRET_KEY": env.get("DJANGO_SECRET_KEY", ""),
        "DB_PASSWORD": env.get("DB_PASSWORD", "app-dev-password"),
        "DB_ROOT_PASSWORD": env.get("DB_ROOT_PASSWORD", "root-dev-password"),
    }
    return {name: value for name, value in values.items() if len(value) >= 8}


@pytest.mark.parametrize("stage", RUNTIME_STAGES)
def test_no_secret_in_image_layers_labels_or_history(engine, stack, settings, stage):
    image = stack.image(stage)
    wanted = secret_values(settings)
    assert "DJANGO_SECRET_KEY" in wanted, "no DJANGO_SECRET_KEY in .env to look for"
    metadata = engine.docker("image", "inspect", image).stdout
    history = engine.docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", image).stdout
    for name, value in wanted.items():
        assert value not in metadata, f"{name} in the labels, environment or config of {image}"
        assert value not in history, f"{name} in the build history (a build argument?) of {image}"
    # Every layer's files: stream `docker save` and look for the bytes, across chunk boundaries.
    # A control: a string of the app's own code (in /app) must be found, or the scan sees no file contents.
    needles = {"control": b"SECURE_REDIRECT_EXEMPT", **{name: value.encode() for name, value in wanted.items()}}
    keep = max(len(n) for n in needles.values())
    found: set[str] = set()
    with subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE) as save:
        tail = b""
        while chunk := save.stdout.read(1 << 20):
            window = tail + chunk
            found |= {name for name, needle in needles.items() if needle in window}
            tail = window[-keep:]
    assert save.returncode == 0
    assert "control" in found, f"the scan of {image} did not see the app's code"
    assert found == {"control"}, f"{sorted(found - {'control'})} in a layer of {image}"


SECRET_FILE_VARIABLES = (
    "DJANGO_SECRET_KEY_FILE",
    "DB_PASSWORD_FILE",
    "MYSQL_PASSWORD_FILE",
    "MYSQL_ROOT_PASSWORD_FILE",
)


def written_secrets(project: IsolatedCheckout) -> dict[str, str]:
    """The secret values the suite gave the project's containers: the files it wrote (lifecycle/secretfiles.py)."""
    from lifecycle import secretfiles

    folder = REPO_ROOT / secretfiles.FOLDER / project.project
    return {secret.setting: (folder / secret.file).read_text(encoding="utf-8") for secret in secretfiles.SECRETS}


def test_no_secret_in_docker_inspect_of_any_container_nor_in_compose_config(engine, stack, settings):
    """Issue 23 #4: db, stage, prod, the proxy and a one-off container of prod hold every secret as a file only."""
    wanted = written_secrets(stack)
    for name in ("DJANGO_SECRET_KEY", "DB_PASSWORD", "DB_ROOT_PASSWORD"):
        assert len(wanted[name]) >= 16, f"{name} is not a generated secret: {len(wanted[name])} characters"
        if settings.env.get(name):  # .env's value is the one the containers got
            assert wanted[name] == settings.env[name], name
    one_off = f"{stack.project}-one-off"
    sleep = "run --detach --no-deps --name " + one_off + " prod python -c 'import time; time.sleep(300)'"
    started = stack.invoke("compose", sleep, "--stage", "prod")
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        ids = stack.containers()
        inspected = json.loads(engine.docker("inspect", *ids).stdout)
        services = sorted(c["Config"]["Labels"].get("com.docker.compose.service", "?") for c in inspected)
        assert {"db", "stage", "prod", "proxy"} <= set(services), services
        assert services.count("prod") == 2, f"no one-off prod container among {services}"
        text = json.dumps(inspected)
        for name, value in wanted.items():
            assert value not in text, f"{name}'s value in docker inspect of {services}"
        for item in inspected:  # each one reads its secrets from files, and the files are there
            env = dict(line.partition("=")[::2] for line in item["Config"]["Env"])
            service = item["Config"]["Labels"]["com.docker.compose.service"]
            files = {key: env[key] for key in SECRET_FILE_VARIABLES if key in env}
            if service != "proxy":
                assert files and all(path.startswith("/run/secrets/") for path in files.values()), (service, files)
            assert not {"DB_PASSWORD", "DJANGO_SECRET_KEY", "MYSQL_PASSWORD", "MYSQL_ROOT_PASSWORD"} & set(env)
        for stage in ("dev", "stage", "prod", "test-qa"):
            config = stack.invoke("compose", "config", "--stage", stage)
            assert config.returncode == 0 and "/run/secrets/db_password" in config.stdout, config.stderr
            for name, value in wanted.items():
                assert value not in config.stdout + config.stderr, f"{name}'s value in compose config of {stage}"
    finally:
        engine.docker("rm", "--force", one_off, check=False)


def test_app_uses_its_own_database_user_not_root(engine, stack):
    code = (
        "from django.db import connection; c = connection.cursor(); "
        "c.execute('SELECT CURRENT_USER()'); print(c.fetchone()[0])"
    )
    done = engine.docker("exec", stack.container("prod"), "python", "manage.py", "shell", "-c", code)
    user = done.stdout.strip().splitlines()[-1]
    assert user.startswith("app@"), user
    assert not user.startswith("root@")


def test_deploy_checks_are_clean_in_prod(engine, stack):
    key = "".join(secrets.choice(string.ascii_letters + string.digits + "!@#%^&*(-_=+)") for _ in range(50))
    done = engine.docker(
        "exec",
        "-e",
        "DJANGO_SECRET_KEY",
        stack.container("prod"),
        "python",
        "manage.py",
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        check=False,
        env={**os.environ, "DJANGO_SECRET_KEY": key},
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "WARNING" not in output, output


def tool(name: str) -> Path:
    path = Path(PYTHON_FOR_TASKS).parent / name
    if not path.is_file():
        pytest.skip(f"{name} is not installed next to {PYTHON_FOR_TASKS} (pip install -r requirements/tools.txt)")
    return path


def test_hadolint_is_clean():
    files = [
        "docker/Dockerfile",
        *sorted(str(p.relative_to(REPO_ROOT)) for p in REPO_ROOT.glob("docker/offline/*.Dockerfile")),
    ]
    done = subprocess.run([str(tool("hadolint")), *files], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_shellcheck_is_clean():
    files = [
        *sorted(str(p.relative_to(REPO_ROOT)) for p in REPO_ROOT.glob("bash_files/*.sh")),
        "scripts/bootstrap",
        ".ci/run",
        *sorted(str(p.relative_to(REPO_ROOT)) for p in REPO_ROOT.glob("docker/db-init/*.sh")),
        *sorted(str(p.relative_to(REPO_ROOT)) for p in REPO_ROOT.glob("docker/offline/*.sh")),
    ]
    done = subprocess.run(
        [str(tool("shellcheck")), "-x", *files], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
