"""The whole lifecycle on real projects nobody here wrote (`nox -s adopt`), through the commands a user types.

For each project of projects.MAKERS (made at test time from the package index, outside the suite's checkout, a git
repository with one commit), in order: `invoke adopt PATH` from the suite's checkout -> `./scripts/bootstrap` in
PATH -> `invoke build --stage prod` (cold) -> `invoke up --stage prod` -> HTTPS through the proxy with the generated
CA (the home page, /admin/login/ and its CSS) -> the project's own tests in `nox -s qa` against the real database ->
an upload survives `down`/`up` -> `db.backup`, a change, `db.restore` (rows and media) -> a code-only rebuild ->
`invoke release` -> `invoke deploy` on a single-node swarm answering over HTTPS (under /tmp/swarm.lock, the
machine's flock(1) lock; ADOPT_SWARM_LOCK names another).

Times go to reports/adopt.json (the bench's adopt rows). Each project's stack, images, volumes and folder are
removed at the end. ADOPT_PROJECTS=startproject,wagtail picks projects; ADOPT_KEEP=1 keeps the folders.
"""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.parse
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from admin_upload import Browser, upload_through_the_admin
from projects import MAKERS, SUITE, UPLOADS, clean_env, commit, run

from tests.helpers.engine import gwbridge_exists, images_built_by, remove_gwbridge

pytestmark = pytest.mark.integration

REPORT = SUITE / "reports" / "adopt.json"
SWARM_LOCK = Path(os.environ.get("ADOPT_SWARM_LOCK", "/tmp/swarm.lock"))  # the machine-wide one flock(1) takes
# Mezzanine 6.1.1 imports `imp`, which Python 3.12 removed: it builds but cannot start on the images' Python, so it
# runs only when named (ADOPT_PROJECTS=mezzanine), to see that failure; docs/adopt.md says so.
DEFAULT_PROJECTS = [name for name in MAKERS if name != "mezzanine"]
SELECTED = [n for n in os.environ.get("ADOPT_PROJECTS", ",".join(DEFAULT_PROJECTS)).split(",") if n]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Adopted:
    name: str
    path: Path
    project: str
    ports: dict[str, int]
    times: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)

    def invoke(self, *args: str, timeout: float = 1200, env: dict[str, str] | None = None) -> str:
        return run([str(self.path / ".venv" / "bin" / "invoke"), *args], self.path, timeout, env)

    def timed(self, key: str, *args: str, env: dict[str, str] | None = None) -> str:
        start = time.monotonic()
        output = self.invoke(*args, env=env)
        self.times[key] = round(time.monotonic() - start, 1)
        return output

    def invoke_python(self, code: str) -> str:
        """Python of the project's own tools virtualenv (the suite's library as the project has it)."""
        return run([str(self.path / ".venv" / "bin" / "python"), "-c", code], self.path)

    def container(self, service: str) -> str:
        label = f"label=com.docker.compose.project={self.project}"
        found = docker("ps", "--quiet", "--filter", label, "--filter", f"label=com.docker.compose.service={service}")
        return found.split()[0]

    def python(self, code: str, *args: str) -> str:
        """Python with the project's settings (the layer over them) in the running prod container."""
        return docker("exec", self.container("prod"), "python", "-c", f"import django; django.setup(); {code}", *args)


def docker(*args: str, check: bool = True) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    if check and done.returncode:
        raise AssertionError(f"docker {' '.join(args[:3])} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


def https_get(adopted: Adopted, path: str, port: int | None = None, follow: bool = False, with_headers: bool = False):
    """GET through the TLS proxy, the certificate checked against the project's own generated CA; with follow, the
    redirects on the same site followed as a browser does (Spirit puts /admin/login/ behind its own login page);
    with_headers: (status, body, headers with lower-case names)."""
    context = ssl.create_default_context(cafile=str(adopted.path / ".lifecycle" / "tls" / "ca.crt"))
    for _ in range(6):
        connection = http.client.HTTPSConnection("localhost", port or adopted.ports["HTTPS_PORT"], context=context,
                                                 timeout=15)  # fmt: skip
        try:
            connection.request("GET", path, headers={"Host": "localhost"})
            response = connection.getresponse()
            status, body, location = response.status, response.read(), response.getheader("Location", "")
            headers = {name.lower(): value for name, value in response.getheaders()}
        finally:
            connection.close()
        if not (follow and status in (301, 302, 303, 307, 308)):
            return (status, body, headers) if with_headers else (status, body)
        target = urllib.parse.urlsplit(urllib.parse.urljoin(f"https://localhost{path}", location))
        assert target.hostname == "localhost", f"{path} redirects off the site: {location}"
        path = urllib.parse.urlunsplit(("", "", target.path, target.query, ""))
    raise AssertionError(f"{path}: more than 5 redirects")


def set_env(path: Path, values: dict[str, str]) -> None:
    env_file = path / ".env"
    lines = [line for line in env_file.read_text().splitlines() if line.split("=", 1)[0] not in values]
    env_file.write_text("\n".join([*lines, *(f"{k}={v}" for k, v in values.items())]) + "\n")


@contextlib.contextmanager
def swarm_lock() -> Iterator[None]:
    """The machine's swarm lock (flock(1)'s, shared with every other user of swarm mode), waited for at most
    ADOPT_SWARM_WAIT seconds (default 1800)."""
    deadline = time.monotonic() + float(os.environ.get("ADOPT_SWARM_WAIT", "1800"))
    with SWARM_LOCK.open("a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(f"{SWARM_LOCK} still held by another swarm user after ADOPT_SWARM_WAIT", pytrace=False)
                time.sleep(2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def record(adopted: Adopted) -> None:
    """This project's times into the report, under a lock: the workers of one run finish in any order."""
    REPORT.parent.mkdir(exist_ok=True)
    with REPORT.with_suffix(".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = json.loads(REPORT.read_text()) if REPORT.is_file() else {}
        found[adopted.name] = {"times": adopted.times, "notes": adopted.notes, "passed": adopted.passed,
                               "failed": adopted.failed}  # fmt: skip
        REPORT.write_text(json.dumps(found, indent=2, sort_keys=True) + "\n")


@pytest.fixture(scope="module", params=SELECTED)
def adopted(request) -> Iterator[Adopted]:
    work = Path(tempfile.mkdtemp(prefix="lifecycle-adopt-"))
    name = request.param
    start = time.monotonic()
    path = MAKERS[name](work)
    project = f"adopt-{name}-{secrets.token_hex(3)}"
    ports = {key: free_port() for key in ("APP_PORT", "HTTPS_PORT", "REGISTRY_PORT", "DEBUG_PORT")}
    result = Adopted(name, path, project, ports, times={"make": round(time.monotonic() - start, 1)})
    try:
        yield result
    finally:
        if (path / ".venv" / "bin" / "invoke").exists():
            subprocess.run([str(path / ".venv/bin/invoke"), "down", "--volumes", "--yes", "--no-backup"], cwd=path,
                           env=clean_env(), capture_output=True, check=False, timeout=600)  # fmt: skip
            subprocess.run([str(path / ".venv/bin/invoke"), "registry.down", "--volumes", "--yes"], cwd=path,
                           env=clean_env(), capture_output=True, check=False, timeout=300)  # fmt: skip
        remove_volumes_of(project)
        images = docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", check=False).split()
        mine = [image for image in images if image.startswith(f"{project}:") or f"/{project}:" in image]
        if mine:
            docker("image", "rm", "--force", *mine, check=False)
        earlier = images_built_by({project})  # the builds a later one took the tag from (a cold run left six)
        if earlier:
            docker("image", "rm", "--force", *earlier, check=False)
        record(result)
        if not os.environ.get("ADOPT_KEEP"):
            shutil.rmtree(work, ignore_errors=True)


def remove_volumes_of(project: str, deadline: float = 60) -> None:
    """Remove the project's volumes (the swarm stack's STACK_db-data and STACK_media outlive `deploy.rm`). A swarm
    task's container can hold one for a while after its stack is gone (a cold CI run left two `_media` volumes
    behind), so first wait, bounded, for the project's containers to go, removing what is left of them then."""

    def volumes() -> list[str]:
        return [v for v in docker("volume", "ls", "--quiet", check=False).split() if v.startswith(f"{project}_")]

    def holders() -> set[str]:
        labels = (f"com.docker.stack.namespace={project}", f"com.docker.compose.project={project}")
        return {c for label in labels for c in docker("ps", "-aq", "--filter", f"label={label}", check=False).split()}

    end = time.monotonic() + deadline
    while holders() and time.monotonic() < end:
        time.sleep(1)
    if left := holders():
        docker("rm", "--force", *left, check=False)
    if found := volumes():
        docker("volume", "rm", "--force", *found, check=False)
    if found := volumes():
        warnings.warn(f"volumes of {project} left behind: {found}", stacklevel=1)


NEEDS = {  # a step runs once what it needs passed; otherwise it fails naming that step (no cascade of errors)
    "adopt": (), "bootstrap": ("adopt",), "build": ("bootstrap",), "up": ("build",), "qa": ("bootstrap",),
    "media": ("up",), "backup": ("up",), "rebuild": ("build",), "deploy": ("build",),
}  # fmt: skip


@contextlib.contextmanager
def step(adopted: Adopted, name: str) -> Iterator[None]:
    missing = [need for need in NEEDS[name] if need not in adopted.passed]
    if missing:
        adopted.failed.append(name)
        pytest.fail(f"{adopted.name}: {name} not tried: {missing[0]} did not pass", pytrace=False)
    try:
        yield
    except BaseException:
        adopted.failed.append(name)
        raise
    adopted.passed.append(name)


# --------------------------------------------------------------------------------------------------- the steps
def test_01_adopt(adopted):
    with step(adopted, "adopt"):
        start = time.monotonic()
        output = run([str(SUITE / ".venv" / "bin" / "invoke"), "adopt", str(adopted.path)], SUITE)
        adopted.times["adopt"] = round(time.monotonic() - start, 1)
        assert "[tool.lifecycle]" in output, output
        assert (adopted.path / "tasks.py").is_file() and (adopted.path / ".copier-answers.yml").is_file(), output
        commit(adopted.path, "adopt the lifecycle suite")


def test_02_bootstrap(adopted):
    with step(adopted, "bootstrap"):
        start = time.monotonic()
        run(["./scripts/bootstrap"], adopted.path, timeout=1800)
        adopted.times["bootstrap"] = round(time.monotonic() - start, 1)
        # a machine's settings: a shared CI engine runs a big project's first migrations (Spirit: ~100) past the
        # default 180 s
        set_env(adopted.path, {**{k: str(v) for k, v in adopted.ports.items()}, "COMPOSE_PROJECT_NAME": adopted.project,
                               "PROJ_NAME": adopted.project, "WAIT_TIMEOUT": "600"})  # fmt: skip


def test_03_cold_prod_build(adopted):
    with step(adopted, "build"):
        adopted.timed("cold_prod_build", "build", "--stage", "prod")
        base = adopted.invoke_python("from lifecycle.settings import load_settings; print(load_settings().base_image)")
        size, base_size = (int(docker("image", "inspect", "--format", "{{.Size}}", image)) for image in
                           (f"{adopted.project}:prod", base.strip()))  # fmt: skip
        adopted.times["image_over_base_mb"] = round((size - base_size) / 1e6, 1)


def test_04_up_prod_answers_https(adopted):
    with step(adopted, "up"):
        adopted.timed("up_healthy", "up", "--stage", "prod")
        status, body = https_get(adopted, "/")
        assert status in (200, 302), (status, body[:500])
        status, body = https_get(adopted, "/admin/login/", follow=True)
        assert status == 200, (status, body[:500])
        css = next(part.split('"')[0] for part in body.decode().split('href="')[1:] if ".css" in part.split('"')[0])
        status, _ = https_get(adopted, css)
        assert status == 200, css


def test_05_project_tests_in_qa(adopted):
    with step(adopted, "qa"):
        start = time.monotonic()
        run([str(adopted.path / ".venv" / "bin" / "nox"), "-s", "qa"], adopted.path, timeout=1800)
        adopted.times["qa"] = round(time.monotonic() - start, 1)


SAVE = ("import sys; from django.core.files.base import ContentFile; from django.core.files.storage import "
        "default_storage as s; print(s.save(sys.argv[1], ContentFile(sys.argv[2].encode())))")  # fmt: skip
READ = "import sys; from django.core.files.storage import default_storage as s; print(s.open(sys.argv[1]).read())"


def test_06_upload_survives_down_up(adopted):
    with step(adopted, "media"):
        name = adopted.python(SAVE, "adopt/upload.txt", "kept across down and up").strip()
        adopted.invoke("down")
        adopted.invoke("up", "--stage", "prod")
        assert adopted.python(READ, name).strip() == "b'kept across down and up'"
        # served by prod over HTTPS from the volume (DEBUG off), as the project's own pages link it
        url = adopted.python("from django.core.files.storage import default_storage as s; import sys; "
                             "print(s.url(sys.argv[1]))", name).strip()  # fmt: skip
        status, body, headers = https_get(adopted, url, with_headers=True)
        assert (status, body) == (200, b"kept across down and up"), (url, status, body[:300])
        assert (headers["content-type"], headers["x-content-type-options"]) == ("text/plain", "nosniff"), headers
        assert https_get(adopted, url.rsplit("/", 1)[0] + "/")[0] == 404  # no listing of the folder
        if adopted.name in UPLOADS:  # a file a user uploads through the project's admin, then fetches
            upload = UPLOADS[adopted.name]
            password = secrets.token_urlsafe(12)
            superuser = "g().objects.create_superuser('uploader', 'u@example.invalid', sys.argv[1])"
            adopted.python(f"import sys; from django.contrib.auth import get_user_model as g; {superuser}", password)
            browser = Browser(adopted.ports["HTTPS_PORT"], adopted.path / ".lifecycle" / "tls" / "ca.crt")
            upload_through_the_admin(browser, upload, "uploader", password, b"uploaded through the admin")
            url = adopted.python(upload.url_of_upload).strip()
            assert https_get(adopted, url)[:2] == (200, b"uploaded through the admin"), url


USERS = (
    "from django.contrib.auth import get_user_model as g; print(sorted(g().objects.values_list('username', flat=1)))"
)


def test_07_backup_change_restore(adopted):
    with step(adopted, "backup"):
        adopted.python("from django.contrib.auth import get_user_model as g; g().objects.create(username='before')")
        users = adopted.python(USERS)
        adopted.invoke("db.backup")
        adopted.python("from django.contrib.auth import get_user_model as g; g().objects.filter(username='before')"
                       ".delete(); g().objects.create(username='after')")  # fmt: skip
        adopted.python(SAVE, "adopt/after.txt", "after the backup")
        adopted.python("import sys; from django.core.files.storage import default_storage as s; s.delete(sys.argv[1])",
                       "adopt/upload.txt")  # fmt: skip
        adopted.invoke("db.restore", latest_manual(adopted).as_posix(), "--yes")
        assert adopted.python(USERS) == users
        assert adopted.python(READ, "adopt/upload.txt").strip() == "b'kept across down and up'"
        exists = "import sys; from django.core.files.storage import default_storage as s; print(s.exists(sys.argv[1]))"
        assert adopted.python(exists, "adopt/after.txt").strip() == "False"


def latest_manual(adopted: Adopted) -> Path:
    manifests = sorted((adopted.path / "backups").glob("*.json"))
    manual = [m for m in manifests if json.loads(m.read_text())["kind"] == "manual"]
    return manual[-1].with_name(manual[-1].name.removesuffix(".json") + ".sql.gz")


def test_08_code_only_rebuild(adopted):
    with step(adopted, "rebuild"):
        mine = [p for name in ("views.py", "urls.py") for p in sorted(adopted.path.rglob(name))]
        code = [
            p for p in mine if not {".venv", ".lifecycle", ".lifecycle-suite"} & set(p.relative_to(adopted.path).parts)
        ]
        with code[0].open("a") as handle:  # a view, else the URLs (Mezzanine's project has no views.py)
            handle.write("\n# a code-only change (nox -s adopt)\n")
        commit(adopted.path, "a code-only change")
        adopted.timed("code_only_rebuild", "build", "--stage", "prod")


def test_09_release_and_deploy_on_a_swarm(adopted):
    with step(adopted, "deploy"):
        # unsigned (no key in a fresh project) and past the vulnerability gate (the base image's pending updates are
        # not under test here), the reason recorded in the release log as a user's is
        env = {"ALLOW_UNSIGNED": "true", "RELEASE_ALLOW": "nox -s adopt: the base image's updates are not under test"}
        adopted.invoke("down")  # the swarm's proxy takes HTTPS_PORT; the compose volumes stay
        adopted.invoke("registry.up")
        adopted.timed("release", "release", "--stage", "prod", env=env)
        with swarm_lock():
            was_active = docker("info", "--format", "{{.Swarm.LocalNodeState}}").strip() == "active"
            had_gwbridge = gwbridge_exists()  # swarm init makes it, swarm leave keeps it
            if not was_active:
                adopted.invoke("swarm.init")
            try:
                adopted.timed("deploy", "deploy", "--stage", "prod", "--replicas", "1", env=env)
                status, _ = https_get(adopted, "/admin/login/", follow=True)
                assert status == 200
            finally:
                subprocess.run([str(adopted.path / ".venv/bin/invoke"), "deploy.rm", "--yes"], cwd=adopted.path,
                               env=clean_env(), capture_output=True, check=False, timeout=600)  # fmt: skip
                if not was_active:  # the engine as it was found
                    subprocess.run([str(adopted.path / ".venv/bin/invoke"), "swarm.leave", "--yes"], cwd=adopted.path,
                                   env=clean_env(), capture_output=True, check=False, timeout=600)  # fmt: skip
                    if not had_gwbridge:
                        remove_gwbridge()
