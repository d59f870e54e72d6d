"""The whole lifecycle as a user runs it, through the real `invoke` CLI and the real engine.

zip, build stage and prod, up, /health, a write-then-read through the API, ps, down, up again (the data
is still there), down --volumes --yes; and the CLI's error paths. Every command runs with the session's
isolated settings (its own image name, compose project and port: the `isolated` fixture in conftest).

The stack tests are steps of one story and run in file order (pytest's default); the error-path tests at
the end use names of their own and do not depend on them.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import urllib.error
import urllib.request
import uuid

import pytest

from tests.helpers.checkout import HTTPS_PROXY_HEADERS, REPO_ROOT, ZIP
from tests.helpers.tools import HEALTH_TIMEOUT, UP_TIMEOUT, describe, nonblank_lines

pytestmark = pytest.mark.integration

NOTE_TEXT = f"lifecycle note {uuid.uuid4().hex}"  # unique, so a note from another run cannot pass the test


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


HTTP = urllib.request.build_opener(NoRedirect)


def http(url: str, *, method: str = "GET", body: dict | None = None, headers: dict | None = None):
    """(status, headers, body text) of one request; HTTP errors and redirects are answers, not exceptions."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with HTTP.open(request, timeout=10) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


def notes(base: str) -> dict:
    status, _, text = http(f"{base}api/notes", headers=HTTPS_PROXY_HEADERS)
    assert status == 200, f"GET /api/notes answered {status}: {text[:500]}"
    return json.loads(text)


def assert_healthy_stack(isolated, engine) -> None:
    """db and prod each have exactly one container, both healthy per `docker inspect`."""
    for service in ("db", "prod"):
        engine.wait_for(
            lambda service=service: isolated.health(service) == "healthy",
            timeout=HEALTH_TIMEOUT,
            what=f"the {service} container of {isolated.project} to be healthy (now {isolated.health(service)!r})",
        )


def up_prod(isolated, port: int | None = None) -> str:
    """`invoke up --stage prod` (on another APP_PORT when port is given); returns the plain HTTP URL of the app (the
    printed HTTPS URL is the proxy's, see test_https.py)."""
    env = {"APP_PORT": str(port)} if port else None
    done = isolated.invoke("up", "--stage", "prod", env=env, timeout=UP_TIMEOUT)
    assert done.returncode == 0, f"invoke up --stage prod failed: {describe(done)}"
    url = f"http://127.0.0.1:{port or isolated.port}/"
    for printed in (f"https://127.0.0.1:{isolated.https_port}/", f"{url}health"):
        assert printed in done.stdout + done.stderr, f"invoke up did not print {printed}: {describe(done)}"
    return url


@pytest.fixture(scope="module")
def base_url(isolated) -> str:
    return f"http://127.0.0.1:{isolated.port}/"


# ------------------------------------------------------------------------------------------------- the story


def test_zip_prints_path_count_size_and_sha256(isolated):
    done = isolated.invoke("zip")
    assert done.returncode == 0, describe(done)
    match = re.search(
        r"(?P<path>\S+\.zip): (?P<count>\d+) files, (?P<size>[\d.]+ (?:B|KiB|MiB)), sha256 (?P<sha>[0-9a-f]{64})",
        done.stderr,
    )
    assert match, f"invoke zip did not print path, file count, size and sha256: {describe(done)}"
    assert (REPO_ROOT / match["path"]).resolve() == ZIP.resolve()
    assert ZIP.is_file()
    assert (
        int(match["count"]) == json.loads(ZIP.with_name("Project_playground.manifest.json").read_text())["file_count"]
    )
    assert match["sha"] == hashlib.sha256(ZIP.read_bytes()).hexdigest()


@pytest.mark.parametrize("stage", ["stage", "prod"])
def test_build_stage_and_prod(isolated, stage_builds, engine, stage):
    done = stage_builds[stage]
    assert done.returncode == 0, f"invoke build --stage {stage} failed: {describe(done)}"
    # The stage's image and, in the same run, its SBOM image (lifecycle.commands.compose.build_argv).
    assert re.search(rf" --profile \S+ build (sbom-\S+ )?{stage}$", done.stdout, re.MULTILINE), (
        f"the compose build command was not printed: {describe(done)}"
    )
    labels = engine.docker("image", "inspect", "--format", "{{json .Config.Labels}}", isolated.image(stage))
    assert json.loads(labels.stdout)["org.opencontainers.image.title"] == isolated.proj_name


def test_up_prod_prints_url_and_both_containers_turn_healthy(isolated, stage_builds, engine, base_url):
    assert up_prod(isolated) == base_url
    assert_healthy_stack(isolated, engine)


def test_health_says_database_reachable(base_url):
    status, headers, text = http(f"{base_url}health")
    assert status == 200, f"/health answered {status}: {text[:500]}"
    assert headers.get_content_type() == "application/json"
    assert json.loads(text) == {"status": "ok", "database": "reachable"}


def test_plain_http_redirects_to_https(base_url):
    status, headers, _ = http(f"{base_url}api/notes")
    assert status in (301, 302), f"plain HTTP got {status}, expected a redirect to HTTPS"
    assert headers["Location"].startswith("https://")


def test_write_then_read_a_note(base_url):
    status, _, text = http(f"{base_url}api/notes", method="POST", body={"text": NOTE_TEXT}, headers=HTTPS_PROXY_HEADERS)
    assert status == 201, f"POST /api/notes answered {status}: {text[:500]}"
    created = json.loads(text)
    assert created["text"] == NOTE_TEXT
    listed = notes(base_url)
    assert {"id": created["id"], "text": NOTE_TEXT} in [{"id": n["id"], "text": n["text"]} for n in listed["notes"]]
    assert listed["count"] >= 1


def test_ps_lists_db_and_prod(isolated):
    done = isolated.invoke("ps")
    assert done.returncode == 0, describe(done)
    for service in ("db", "prod"):
        assert re.search(rf"^{re.escape(isolated.project)}-{service}-1\s.*\(healthy\)", done.stdout, re.M), (
            f"invoke ps does not list a healthy {service} container: {describe(done)}"
        )


def test_down_leaves_no_containers_but_keeps_the_volume(isolated):
    done = isolated.invoke("down")
    assert done.returncode == 0, describe(done)
    assert isolated.containers() == [], "invoke down left containers behind"
    assert isolated.volume_exists(), f"invoke down (without --volumes) deleted {isolated.volume}"


def leave_time_wait_on(port: int) -> None:
    """What serving one request leaves behind: a connection the server side closed first, in TIME_WAIT on port."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            server_side, _ = listener.accept()
            server_side.close()  # the server closes first, as the site's proxy does after a response
            client.settimeout(5)
            assert client.recv(1) == b""  # the FIN arrived; closing now leaves the server side in TIME_WAIT


def test_up_right_after_down_reuses_the_port(isolated, engine):
    assert isolated.containers() == [], "the stack should be down at this step"
    leave_time_wait_on(isolated.port)
    done = isolated.invoke("up", "--stage", "prod", "--no-build", timeout=UP_TIMEOUT)
    assert done.returncode == 0, f"invoke up right after invoke down failed: {describe(done)}"


def test_up_again_still_has_the_note(isolated, engine):
    # A fresh port: the one used before may be refused for a minute (see test_up_right_after_down_reuses_the_port).
    port = engine.free_port()
    url = up_prod(isolated, port)
    assert_healthy_stack(isolated, engine)
    assert NOTE_TEXT in [n["text"] for n in notes(url)["notes"]], "the note written before down is gone"


def test_down_volumes_without_a_terminal_refuses_and_keeps_the_data(isolated):
    done = isolated.invoke("down", "--volumes")  # stdin is /dev/null: nobody can type the project name
    assert done.returncode != 0, f"invoke down --volumes without --yes or a terminal succeeded: {describe(done)}"
    assert "--yes" in done.stderr, describe(done)
    assert isolated.volume_exists(), "the volume was deleted without confirmation"
    assert isolated.health("prod") == "healthy", "the stack was touched although nothing was confirmed"


def test_down_volumes_yes_removes_containers_and_volume(isolated):
    done = isolated.invoke("down", "--volumes", "--yes")
    assert done.returncode == 0, describe(done)
    assert isolated.containers() == []
    assert not isolated.volume_exists(), f"{isolated.volume} still exists after invoke down --volumes --yes"


# ------------------------------------------------------------------------------------------------ error paths


def test_build_unknown_stage_is_one_line_and_builds_nothing(isolated, engine):
    name = engine.unique_name("it-err")
    done = isolated.invoke("build", "--stage", "nope", env={"PROJ_NAME": name, "COMPOSE_PROJECT_NAME": name})
    assert done.returncode != 0
    lines = nonblank_lines(done.stderr)
    assert len(lines) == 1, f"expected one line on stderr: {describe(done)}"
    assert "nope" in lines[0]
    for stage in ("dev", "test-qa", "stage", "prod"):
        assert stage in lines[0], f"the error does not name the valid stage {stage}: {lines[0]}"
    assert " build " not in done.stdout, f"a build command ran: {describe(done)}"
    assert engine.docker("image", "ls", "--quiet", name).stdout.strip() == "", "an image was built"


def test_up_without_secret_key_is_one_line(isolated, engine):
    name = engine.unique_name("it-err")
    done = isolated.invoke(
        "up", "--stage", "prod", env={"PROJ_NAME": name, "COMPOSE_PROJECT_NAME": name, "DJANGO_SECRET_KEY": ""}
    )
    assert done.returncode != 0, f"up without DJANGO_SECRET_KEY succeeded: {describe(done)}"
    lines = nonblank_lines(done.stderr)
    assert len(lines) == 1 and "DJANGO_SECRET_KEY" in lines[0], describe(done)
    assert engine.docker("ps", "--all", "--quiet", "--filter", f"label=com.docker.compose.project={name}").stdout == ""
    assert engine.docker("image", "ls", "--quiet", name).stdout.strip() == "", "an image was built"


def test_dry_build_prints_the_compose_command_and_builds_nothing(isolated, engine):
    name = engine.unique_name("it-dry")
    zip_before = ZIP.stat().st_mtime_ns if ZIP.exists() else None
    done = isolated.invoke("--dry", "build", "--stage", "prod", env={"PROJ_NAME": name, "COMPOSE_PROJECT_NAME": name})
    assert done.returncode == 0, describe(done)
    compose = f"compose --project-name {name} --file {REPO_ROOT / 'docker' / 'compose.yaml'} --profile"
    expected = f"docker --log-level error {compose}"  # builds keep compose's warnings (bake fallback) off
    assert re.search(rf"^{re.escape(expected)} \S+ build (sbom-\S+ )?prod$", done.stdout, re.MULTILINE), (
        f"the compose build command was not printed: {describe(done)}"
    )
    assert engine.docker("image", "ls", "--quiet", name).stdout.strip() == "", "a dry run built an image"
    assert (ZIP.stat().st_mtime_ns if ZIP.exists() else None) == zip_before, "a dry run rewrote the zip"
