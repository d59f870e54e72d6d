"""`invoke release` / `invoke releases` against a real local registry (its own free port), in a committed copy of
the checkout: digests, the record, dirty refusal, prod's layers equal stage's, a code-only change pushes only the
code layers (measured in the registry's storage), and registry errors in one line.

The tests run in file order (pytest's default) and share one copy, one registry and its pushes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import urllib.request
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lifecycle import registry
from lifecycle.release import ReleaseLog
from lifecycle.settings import load_settings
from tests.helpers.checkout import IsolatedCheckout, copy_checkout
from tests.helpers.engine import docker, free_port, unique_name
from tests.helpers.tools import BUILD_TIMEOUT, assert_one_line, describe

pytestmark = pytest.mark.integration

GIT_IDENTITY = {"GIT_AUTHOR_NAME": "it", "GIT_AUTHOR_EMAIL": "it@lifecycle.invalid",
                "GIT_COMMITTER_NAME": "it", "GIT_COMMITTER_EMAIL": "it@lifecycle.invalid"}  # fmt: skip
CODE_FILE = "django_site/notes/views.py"


def git(root, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(root), *args], check=True, capture_output=True, env={**GIT_IDENTITY, "PATH": "/usr/bin:/bin"}
    )


@pytest.fixture(scope="module")
def checkout(engine, tmp_path_factory):
    """A committed copy of the checkout with its own image name, compose project and local registry."""
    root = copy_checkout(tmp_path_factory.mktemp("release") / "checkout")
    (root / ".lifecycle" / "releases.jsonl").unlink(missing_ok=True)
    git(root, "init", "--quiet")
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "--message", "release test")
    project = IsolatedCheckout.new(root=root)
    try:
        up = project.invoke("registry.up", timeout=600)
        assert up.returncode == 0, describe(up)
        yield project
    finally:
        project.invoke("registry.down", "--volumes", "--yes")
        docker("volume", "rm", "--force", project.registry_volume, check=False)
        pushed = docker(
            "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", f"{project.registry}/{project.proj_name}"
        )
        if pushed.stdout.split():
            docker("image", "rm", "--force", *pushed.stdout.split(), check=False)
        project.remove()


def settings_of(project: IsolatedCheckout):
    return load_settings(project.root, environ=project.env)


def stored_blobs(project: IsolatedCheckout) -> dict[str, int]:
    settings = settings_of(project)
    done = subprocess.run(
        registry.blob_sizes_argv(settings), env=dict(settings.env), capture_output=True, text=True, check=True
    )
    return registry.parse_blob_sizes(done.stdout)


def release(project: IsolatedCheckout, *args: str, env=None):
    return project.invoke("release", *args, env=env, timeout=BUILD_TIMEOUT)


def manifest_status(address: str, name: str, digest: str) -> int:
    request = urllib.request.Request(
        f"http://{address}/v2/{name}/manifests/{digest}",
        method="HEAD",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


@pytest.fixture(scope="module")
def pushes(checkout):
    """Bytes each push added to the registry's storage, filled in as the tests run."""
    return {}


def test_dirty_tree_is_refused_and_nothing_is_pushed(checkout):
    scratch = checkout.root / "django_site" / "scratch.py"  # untracked, in the code zip's paths
    scratch.write_text("NOT_COMMITTED = True\n")
    try:
        done = release(checkout, "--stage", "stage")
    finally:
        scratch.unlink()
    assert done.returncode == 1, describe(done)
    assert_one_line(done.stderr, "uncommitted changes", "django_site/scratch.py", "--allow-dirty")
    assert stored_blobs(checkout) == {}


def test_dev_is_not_released(checkout):
    done = release(checkout, "--stage", "dev")
    assert done.returncode == 1
    assert_one_line(done.stderr, "only stage and prod are released")


def test_release_stage_prints_the_pushed_digest_and_records_it(checkout, pushes):
    notes = checkout.root / "my-notes.txt"  # untracked, outside what the image is built from: not dirty
    notes.write_text("a note that never reaches the image\n")
    try:
        done = release(checkout, "--stage", "stage")
    finally:
        notes.unlink()
    assert done.returncode == 0, describe(done)
    assert "note: not released, outside what the image is built from (uncommitted): my-notes.txt" in done.stderr
    reference = done.stdout.strip().splitlines()[-1]
    name = checkout.proj_name
    assert re.fullmatch(rf"{re.escape(checkout.registry)}/{name}@sha256:[0-9a-f]{{64}}", reference), reference
    assert manifest_status(checkout.registry, name, reference.split("@")[1]) == 200
    pushes["first"] = sum(stored_blobs(checkout).values())

    (record,) = ReleaseLog.of(settings_of(checkout)).all()
    labels = json.loads(
        docker("image", "inspect", "--format", "{{json .Config.Labels}}", checkout.image("stage")).stdout
    )
    head = subprocess.run(["git", "-C", str(checkout.root), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    assert (record.reference, record.stage, record.dirty, record.commit) == (reference, "stage", False, head.strip())
    assert record.zip_sha256 == labels["io.lifecycle.code-zip.sha256"]
    assert record.tag == f"{checkout.registry}/{name}:stage-{record.zip_sha256[:12]}"
    assert record.created.endswith("Z") and record.base_image
    # Both tags name the same image in the registry.
    for tag in (record.tag, f"{checkout.registry}/{name}:stage"):
        digests = docker("image", "inspect", "--format", "{{json .RepoDigests}}", tag).stdout
        assert reference in json.loads(digests)

    listed = checkout.invoke("releases")
    assert listed.returncode == 0 and reference in listed.stdout


def test_prod_ships_stage_layers_and_its_release_uploads_no_layer(checkout, pushes):
    before = stored_blobs(checkout)
    done = release(checkout, "--stage", "prod")
    assert done.returncode == 0, describe(done)
    layers = {
        stage: json.loads(
            docker("image", "inspect", "--format", "{{json .RootFS.Layers}}", checkout.image(stage)).stdout
        )
        for stage in ("stage", "prod")
    }
    assert layers["prod"] == layers["stage"]
    added = registry.blob_delta(before, stored_blobs(checkout))
    # The registry stores manifests as blobs too: only prod's image config and its manifest are new.
    assert added.blobs == 2 and added.bytes < 64 * 1024, f"prod's push uploaded more than its config: {added}"
    assert "0 layer(s) uploaded" in done.stderr
    assert ReleaseLog.of(settings_of(checkout)).latest("prod").reference == done.stdout.strip().splitlines()[-1]


def test_code_only_change_pushes_only_the_code_layers(checkout, pushes):
    code = checkout.root / CODE_FILE
    code.write_text(code.read_text() + "\n# a code-only change\n")
    git(checkout.root, "commit", "--quiet", "--all", "--message", "code-only change")
    before = stored_blobs(checkout)
    first = ReleaseLog.of(settings_of(checkout)).latest("stage")
    done = release(checkout, "--stage", "stage")
    assert done.returncode == 0, describe(done)
    added = registry.blob_delta(before, stored_blobs(checkout))
    assert 0 < added.bytes < pushes["first"] * 0.05, f"{added} against a first push of {pushes['first']} bytes"
    latest = ReleaseLog.of(settings_of(checkout)).latest("stage")
    assert latest.reference != first.reference and latest.zip_sha256 != first.zip_sha256


def test_a_no_cache_rebuild_of_the_same_commit_pushes_no_new_layer(checkout):
    """Issue 24: which build-cache record the engine picks, or none at all, must not change what is pushed. Every
    layer is byte-identical for identical inputs, so only the new image config and its manifest go up."""
    before = stored_blobs(checkout)
    first = ReleaseLog.of(settings_of(checkout)).latest("stage")
    rebuilt = checkout.invoke("build", "--stage", "stage", "--no-cache", timeout=BUILD_TIMEOUT)
    assert rebuilt.returncode == 0, describe(rebuilt)
    done = release(checkout, "--stage", "stage")
    assert done.returncode == 0, describe(done)
    assert "0 layer(s) uploaded" in done.stderr, done.stderr[-2000:]
    added = registry.blob_delta(before, stored_blobs(checkout))
    assert added.blobs <= 2 and added.bytes < 64 * 1024, f"a rebuild of the same commit pushed {added}"
    assert ReleaseLog.of(settings_of(checkout)).latest("stage").zip_sha256 == first.zip_sha256


def test_unreachable_registry_is_one_line_before_building(checkout):
    done = release(checkout, "--stage", "stage", env={"REGISTRY_PORT": str(free_port())})
    assert done.returncode == 1
    assert_one_line(done.stderr, "is not reachable", "invoke registry.up")
    assert " build " not in done.stderr, "nothing is built for a registry that cannot take it"


class FakeRegistry(BaseHTTPRequestHandler):
    """A registry that wants a login (every request 401), or knows no repository (uploads: NAME_UNKNOWN)."""

    wants_login = True

    def answer(self, status: int, body: dict | None = None, headers: dict | None = None) -> None:
        data = json.dumps(body or {}).encode()
        self.send_response(status)
        for name, value in {"Docker-Distribution-Api-Version": "registry/2.0", **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.wants_login:
            self.answer(401, {"errors": [{"code": "UNAUTHORIZED"}]}, {"WWW-Authenticate": 'Basic realm="it"'})
        else:
            self.answer(200)

    def do_HEAD(self) -> None:
        self.answer(404)

    def do_POST(self) -> None:
        self.answer(404, {"errors": [{"code": "NAME_UNKNOWN", "message": "repository does not exist"}]})

    def log_message(self, *args) -> None:
        pass


@contextmanager
def fake_registry(wants_login: bool):
    handler = type("Handler", (FakeRegistry,), {"wants_login": wants_login})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("wants_login", "words"),
    [
        pytest.param(True, ("requires authentication", "docker login 127.0.0.1:"), id="authentication-required"),
        pytest.param(False, ("rejects the name",), id="name-rejected"),
    ],
)
def test_registry_refusals_are_one_line(checkout, wants_login, words):
    with fake_registry(wants_login) as address:
        done = release(checkout, "--stage", "stage", env={"REGISTRY": f"{address}/team"})
    assert done.returncode == 1, describe(done)
    assert_one_line(done.stderr, *words)
    tags = docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", f"{address}/team/{checkout.proj_name}")
    if tags.stdout.split():
        docker("image", "rm", *tags.stdout.split(), check=False)


# ------------------------------------------------------------------------------ two clones, one name, one registry


def manifest_config(address: str, name: str, digest: str) -> str:
    """The image id (config digest) of the manifest the registry holds under digest."""
    request = urllib.request.Request(
        f"http://{address}/v2/{name}/manifests/{digest}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["config"]["digest"]


SHIM = """#!/bin/sh
# `docker`, except that just before this run's first push, another checkout tags its own image with the pushed name.
if [ "$1" = push ] && [ ! -e "$SHIM_MARKER" ]; then
    : >"$SHIM_MARKER"
    "$REAL_DOCKER" tag "$OTHER_IMAGE" "$2"
fi
exec "$REAL_DOCKER" "$@"
"""


def test_a_release_records_its_own_image_when_another_clone_moves_the_shared_name_before_the_push(checkout, tmp_path):
    """Issue 24: two clones of one PROJ_NAME released at once both recorded the other's image. The other clone, with
    the same code, builds its own prod (another image: its compose project is in the labels); then, between this
    clone's tag and push, it tags the very name this clone pushes, as its own release would."""
    other_root = tmp_path / "other"
    shutil.copytree(checkout.root, other_root, ignore=shutil.ignore_patterns(".git", "reports"), symlinks=True)
    other_env = {"COMPOSE_PROJECT_NAME": unique_name("it-other")}
    other = IsolatedCheckout(checkout.proj_name, free_port(), root=other_root, registry_port=checkout.registry_port)
    try:
        built = other.invoke("build", "--stage", "prod", env=other_env, timeout=BUILD_TIMEOUT)
        assert built.returncode == 0, describe(built)
        theirs = docker("image", "inspect", "--format", "{{.Id}}", f"{other_env['COMPOSE_PROJECT_NAME']}:prod")
        shim = tmp_path / "bin" / "docker"
        shim.parent.mkdir()
        shim.write_text(SHIM)
        shim.chmod(0o755)
        env = {
            "PATH": f"{shim.parent}:{os.environ['PATH']}",
            "REAL_DOCKER": shutil.which("docker"),
            "OTHER_IMAGE": theirs.stdout.strip(),
            "SHIM_MARKER": str(tmp_path / "moved"),
        }
        done = release(checkout, "--stage", "prod", env=env)
        assert done.returncode == 0, describe(done)
        assert (tmp_path / "moved").is_file(), "the other clone never moved the name"
        assert "another checkout moved it" in done.stderr
        ours = docker("image", "inspect", "--format", "{{.Id}}", checkout.image("prod")).stdout.strip()
        assert ours != theirs.stdout.strip()
        record = ReleaseLog.of(settings_of(checkout)).latest("prod")
        assert manifest_config(checkout.registry, checkout.proj_name, record.digest) == ours
        assert record.reference == done.stdout.strip().splitlines()[-1]
    finally:
        other.invoke("clean", env=other_env)
        shutil.rmtree(other_root, ignore_errors=True)
