"""What users of container setups run into on their own machines (shared/USERS.md), with the real engine:
files written through a bind mount belong to the host user, and a new dependency is there after `invoke up`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import uuid

import pytest

from tests.helpers.checkout import REPO_ROOT, IsolatedCheckout, copy_checkout
from tests.helpers.engine import wait_for
from tests.helpers.tools import BUILD_TIMEOUT, describe, invoke_argv, strip_ansi

pytestmark = pytest.mark.integration

HOST_USER = {"HOST_UID": "4321", "HOST_GID": "4321"}


def run_in(checkout: IsolatedCheckout, stage: str, program: str, *args: str, env: dict[str, str] | None = None):
    """`docker compose run` of the stage's service through the suite's own compose passthrough."""
    compose_args = " ".join(["run --rm --no-deps --entrypoint", program, stage, *args])
    return checkout.invoke("compose", compose_args, "--stage", stage, env=env)


@pytest.mark.parametrize("stage", ["dev", "test-qa"])
def test_dev_and_test_qa_write_files_as_the_host_user(isolated, stage):
    done = isolated.invoke("build", "--stage", stage, timeout=BUILD_TIMEOUT)
    assert done.returncode == 0, describe(done)
    probe_dir = REPO_ROOT / f".owner-probe-{uuid.uuid4().hex[:8]}"
    probe_dir.mkdir()
    probe_dir.chmod(0o777)
    try:
        who = run_in(isolated, stage, "id", env=HOST_USER)
        assert who.returncode == 0, describe(who)
        assert "uid=4321" in who.stdout and "gid=4321" in who.stdout
        if stage == "dev":  # dev bind-mounts the checkout: what it writes there must be the host user's
            touched = run_in(isolated, stage, "touch", f"/app/{probe_dir.name}/made-in-container", env=HOST_USER)
            assert touched.returncode == 0, describe(touched)
            made = probe_dir / "made-in-container"
            assert (made.stat().st_uid, made.stat().st_gid) == (4321, 4321)
    finally:
        shutil.rmtree(probe_dir)


def test_the_dev_container_cannot_read_the_ca_key_or_the_secret_files(isolated):
    """Issue 23 #5: dev bind-mounts the checkout, but its .lifecycle/ (the local CA's key, the secret files) is an
    empty tmpfs inside, even for a root host user (the tests run as root, who could read any file it could see)."""
    from lifecycle.runner import SubprocessRunner
    from lifecycle.tls import ensure_local_certificate, local_files

    ensure_local_certificate(REPO_ROOT, SubprocessRunner(echo=False))
    assert local_files(REPO_ROOT).ca.with_suffix(".key").is_file(), "no CA key on the host: nothing to hide"
    done = isolated.invoke("build", "--stage", "dev", timeout=BUILD_TIMEOUT)
    assert done.returncode == 0, describe(done)
    # Markers the printed command does not contain ($((6*7)) prints 42): what `ls` said lies between them.
    script = (
        "'test -f /app/manage.py && echo $((6*7))-from && ls -A /app/.lifecycle && echo $((6*7))-to "
        "&& cat /app/.lifecycle/tls/ca.key'"
    )
    seen = run_in(isolated, "dev", "sh", "-c", script)
    assert "42-to" in seen.stdout, describe(seen)  # the checkout is there, and .lifecycle/ was listed
    listed = seen.stdout.split("42-from", 1)[1].split("42-to", 1)[0]
    assert listed.strip() == "", f".lifecycle/ is not empty in dev: {describe(seen)}"
    assert seen.returncode != 0 and "PRIVATE KEY" not in seen.stdout, describe(seen)


MIGRATION_0002 = """from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("notes", "0001_initial")]
    operations = []
"""


def test_a_new_dependency_and_a_new_migration_reach_dev_under_up_watch(isolated, tmp_path):
    """`invoke up --stage dev --watch`, with stdin closed and no terminal: a lock changed by `invoke deps.lock` (a
    line in `requirements/runtime.in`, as the README says) rebuilds dev and recreates it by itself, and the new
    package imports (no stale environment: the venv lives in the image); a new migration file is applied in the
    running container; SIGTERM stops watching and leaves dev running, healthy."""
    copy = copy_checkout(tmp_path / "checkout")
    checkout = IsolatedCheckout(isolated.proj_name + "-deps", isolated.port, "pw-deps", "root-deps", root=copy)
    log = tmp_path / "watch.log"

    def said(text: str, times: int = 1):
        def probe() -> bool:
            if watch.poll() is not None:
                raise AssertionError(f"the watch ended ({watch.returncode}): {log.read_text()[-3000:]}")
            return strip_ansi(log.read_text()).count(text) >= times

        return probe

    try:
        with log.open("w") as out:
            watch = subprocess.Popen([*invoke_argv(), "up", "--stage", "dev", "--watch"], cwd=copy, env=checkout.env,
                                     stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)  # fmt: skip
        try:
            wait_for(said("and new migrations (migrate)"), BUILD_TIMEOUT, "the watch to start")
            wanted = copy / "requirements" / "runtime.in"
            wanted.write_text(wanted.read_text() + "six==1.17.0\n")
            lock = checkout.invoke("deps.lock", timeout=BUILD_TIMEOUT)
            assert lock.returncode == 0, describe(lock)
            assert "six==1.17.0" in (copy / "requirements" / "runtime.txt").read_text()
            wait_for(said("dev is up and healthy", times=2), BUILD_TIMEOUT, "dev rebuilt by the watch")
            (copy / "django_site" / "notes" / "migrations" / "0002_watch.py").write_text(MIGRATION_0002)
            wait_for(said("Applying notes.0002_watch... OK"), 120, "the new migration applied by the watch")
            os.killpg(watch.pid, signal.SIGTERM)
            assert watch.wait(timeout=60) == 0, log.read_text()[-3000:]
        finally:
            if watch.poll() is None:
                os.killpg(watch.pid, signal.SIGKILL)
                watch.wait(timeout=30)
        output = strip_ansi(log.read_text())
        # The test lock includes the runtime lock (-r), so both may be named: the line names at least the one changed.
        rebuilt = [line for line in output.splitlines() if "changed: rebuilding dev" in line]
        assert rebuilt and "requirements/runtime.txt" in rebuilt[0], output[-3000:]
        assert "stopped watching; dev runs as up left it" in output
        assert checkout.health("dev") == "healthy"
        imported = checkout.invoke("compose", "exec --no-TTY dev python -c 'import six; print(six.__version__)'")
        assert imported.returncode == 0, describe(imported)
        assert "1.17.0" in imported.stdout
    finally:
        checkout.remove(timeout=180)
