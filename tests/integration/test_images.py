"""Image contracts, on the images `invoke build` makes with the session's isolated settings.

stage and prod: non-root, no compiler, no headers, no test tools, a `_mysql` that links libmariadb, healthy
under compose, `check --deploy` clean (prod), labels that name the code zip they embed, and no secrets in
the image. dev is the build stage (compiler and headers); test-qa carries pytest. The code zip is
byte-identical across runs and across copies of the tree.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import zipfile

import pytest

from lifecycle.settings import parse_env_file
from tests.helpers.checkout import REPO_ROOT, ZIP, copy_checkout
from tests.helpers.tools import BUILD_TIMEOUT, HEALTH_TIMEOUT, PYTHON_FOR_TASKS, UP_TIMEOUT, describe

pytestmark = pytest.mark.integration

MANIFEST = ZIP.with_name("Project_playground.manifest.json")
RUNTIME_STAGES = ("stage", "prod")
APP_UID = "10001"
RUN_TIMEOUT = 120  # seconds for one short command in a throwaway container
OCI_LABELS = ("title", "description", "source", "revision", "created", "version")
MYSQL_EXTENSION = "python -c 'import MySQLdb._mysql as m; print(m.__file__)'"


def run_in(image: str, script: str, *, env: dict[str, str] | None = None):
    """`sh -c script` in a throwaway container of image (entrypoint bypassed); env values stay off the command line."""
    env_flags = [flag for name in (env or {}) for flag in ("-e", name)]
    return subprocess.run(
        ["docker", "run", "--rm", *env_flags, "--entrypoint", "sh", image, "-c", script],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


def inspect_image(image: str) -> dict:
    done = subprocess.run(
        ["docker", "image", "inspect", image], capture_output=True, text=True, timeout=RUN_TIMEOUT, check=True
    )
    return json.loads(done.stdout)[0]


@pytest.fixture(scope="module", params=RUNTIME_STAGES)
def runtime_image(request, built_images) -> str:
    return built_images[request.param]


@pytest.fixture(scope="module")
def build_stage_images(isolated):
    """dev and test-qa under the isolated image name (cached: stage and prod are built from dev)."""

    def build(stage: str) -> str:
        done = isolated.invoke("build", "--stage", stage, timeout=BUILD_TIMEOUT)
        assert done.returncode == 0, f"invoke build --stage {stage} failed: {describe(done)}"
        return isolated.image(stage)

    return build


# ------------------------------------------------------------------------------------------------ stage and prod


def test_runs_as_uid_10001(runtime_image):
    done = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "id", runtime_image, "-u"],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, describe(done)
    assert done.stdout.strip() != "0", "the image runs as root"
    assert done.stdout.strip() == APP_UID


@pytest.mark.parametrize("tool", ["gcc", "cc", "c++", "make"])
def test_has_no_compiler(runtime_image, tool):
    done = run_in(runtime_image, f"command -v {tool}")
    assert done.returncode != 0, f"{runtime_image} ships {tool}: {done.stdout.strip()}"


def test_has_no_mysql_headers(runtime_image):
    done = run_in(runtime_image, "find /usr -name mysql.h 2>/dev/null")
    assert done.stdout.strip() == "", f"{runtime_image} ships client headers: {done.stdout.strip()}"


def test_has_no_pytest(runtime_image):
    done = run_in(runtime_image, "python -c 'import pytest'")
    assert done.returncode != 0, f"{runtime_image} can import pytest"
    assert "ModuleNotFoundError" in done.stderr, describe(done)


def test_mysql_extension_links_libmariadb(runtime_image):
    done = run_in(runtime_image, f'ldd "$({MYSQL_EXTENSION})"')
    assert done.returncode == 0, describe(done)
    assert "not found" not in done.stdout, f"_mysql has unresolved libraries:\n{done.stdout}"
    assert re.search(r"libmariadb\.so\.\d+ => /", done.stdout), f"_mysql does not link libmariadb:\n{done.stdout}"


def test_labels_name_the_embedded_zip(runtime_image):
    labels = inspect_image(runtime_image)["Config"]["Labels"]
    for name in OCI_LABELS:
        value = labels.get(f"org.opencontainers.image.{name}", "")
        assert value.strip(), f"label org.opencontainers.image.{name} missing or empty: {labels}"
    stage = runtime_image.rsplit(":", 1)[1]
    assert labels["org.opencontainers.image.title"] == runtime_image.rsplit(":", 1)[0]
    assert f"({stage})" in labels["org.opencontainers.image.description"]
    # The commit the image was built from: HEAD, or an ancestor when someone committed since the session's build.
    revision = labels["org.opencontainers.image.revision"]
    assert re.fullmatch(r"[0-9a-f]{40}", revision), f"revision label is not a commit: {revision!r}"
    ancestor = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "merge-base", "--is-ancestor", revision, "HEAD"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert ancestor.returncode == 0, f"revision label {revision} is not HEAD or one of its ancestors"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d.*", labels["org.opencontainers.image.created"])

    zip_sha = labels["io.lifecycle.code-zip.sha256"]
    assert re.fullmatch(r"[0-9a-f]{64}", zip_sha), f"zip label is not a sha256: {zip_sha!r}"
    assert zip_sha == hashlib.sha256(ZIP.read_bytes()).hexdigest(), "the label is not the sha256 of the host's zip"
    assert zip_sha == json.loads(MANIFEST.read_text())["sha256"]


def test_app_folder_is_exactly_the_zips_content(runtime_image):
    manifest = json.loads(MANIFEST.read_text())
    expected = {entry["path"]: entry["sha256"] for entry in manifest["files"]}
    with zipfile.ZipFile(ZIP) as archive:
        in_zip = {name: hashlib.sha256(archive.read(name)).hexdigest() for name in archive.namelist()}
    assert in_zip == expected, "the manifest does not describe the zip"

    # Everything under /app except what the build adds (collected static files, compiled bytecode).
    done = run_in(
        runtime_image,
        "cd /app && find . -path ./staticfiles -prune -o -name __pycache__ -prune -o -type f -print0"
        " | xargs -0 sha256sum",
    )
    assert done.returncode == 0, describe(done)
    in_image = {}
    for line in done.stdout.splitlines():
        digest, path = line.split(maxsplit=1)
        in_image[path.removeprefix("./")] = digest
    assert in_image == expected, "the files under /app differ from the zip's"


def test_turns_healthy_under_compose(isolated, built_images, engine, runtime_image):
    """Up with compose (the db is shared by both stages); docker's own health status turns healthy in time."""
    stage = runtime_image.rsplit(":", 1)[1]
    # A fresh port each time: one used earlier in the session may be refused for a while (a product bug, see
    # test_lifecycle.py::test_up_right_after_down_reuses_the_port).
    port = engine.free_port()
    done = isolated.invoke(
        "up", "--stage", stage, "--no-build", "--wait-timeout", "150", env={"APP_PORT": str(port)}, timeout=UP_TIMEOUT
    )
    try:
        assert done.returncode == 0, f"invoke up --stage {stage} failed: {describe(done)}"
        for service in ("db", stage):
            engine.wait_for(
                lambda service=service: isolated.health(service) == "healthy",
                timeout=HEALTH_TIMEOUT,
                what=f"{service} of {isolated.project} to be healthy",
            )
        (container,) = isolated.containers(stage)
        image_id = engine.docker("inspect", "--format", "{{.Image}}", container).stdout.strip()
        assert image_id == inspect_image(runtime_image)["Id"], "the container does not run the image under test"
    finally:
        if stage != "prod":  # prod stays up for the lifecycle tests; the session fixture takes everything down
            for container in isolated.containers(stage):
                engine.docker("rm", "--force", "--volumes", container, check=False)


# ---------------------------------------------------------------------------------------------------------- prod


def test_prod_check_deploy_is_clean(built_images, engine):
    secret = engine.random_secret(50)
    done = run_in(
        built_images["prod"],
        "python manage.py check --deploy --fail-level WARNING",
        env={"DJANGO_SECRET_KEY": secret, "APP_STAGE": "prod"},
    )
    assert done.returncode == 0, f"check --deploy reports problems: {describe(done)}"
    assert "no issues" in done.stdout + done.stderr, describe(done)


def test_prod_image_holds_no_secrets(built_images, isolated):
    env_file = REPO_ROOT / ".env"
    user_env = parse_env_file(env_file.read_text(encoding="utf-8"), ".env") if env_file.is_file() else {}
    secrets = {
        "DJANGO_SECRET_KEY from .env": user_env.get("DJANGO_SECRET_KEY", ""),
        "DB_PASSWORD": isolated.db_password,
        "DB_ROOT_PASSWORD": isolated.db_root_password,
        "the default DB_PASSWORD": "app-dev-password",
        "the default DB_ROOT_PASSWORD": "root-dev-password",
    }
    image = built_images["prod"]
    history = subprocess.run(
        ["docker", "history", "--no-trunc", image], capture_output=True, text=True, timeout=RUN_TIMEOUT, check=True
    ).stdout
    inspected = json.dumps(inspect_image(image))
    # The whole RUN lines are there (not truncated), so a secret in one would be found.
    # RUNTIME_PACKAGES=libmariadb3: the build argument's value is in the RUN line's recorded environment.
    assert "RUNTIME_PACKAGES=libmariadb3" in history, "the history is not what the check expects to read"
    assert "--no-install-recommends $RUNTIME_PACKAGES" in history
    for what, value in secrets.items():
        if len(value) < 8:  # nothing to look for (no .env key): an empty string is in every text
            continue
        assert value not in history, f"docker history of {image} contains {what}"
        assert value not in inspected, f"docker inspect of {image} contains {what}"


# --------------------------------------------------------------------------------------------- dev and test-qa


def test_dev_is_the_build_stage(build_stage_images):
    image = build_stage_images("dev")
    done = run_in(image, "command -v gcc && find /usr -name mysql.h")
    assert done.returncode == 0, f"dev has no gcc: {describe(done)}"
    assert "/gcc" in done.stdout and "/mysql.h" in done.stdout, f"dev lacks gcc or mysql.h: {describe(done)}"


def test_test_qa_has_pytest(build_stage_images):
    image = build_stage_images("test-qa")
    done = run_in(image, "python -c 'import pytest; print(pytest.__version__)'")
    assert done.returncode == 0, f"test-qa cannot import pytest: {describe(done)}"
    assert re.fullmatch(r"\d+\.\d+.*", done.stdout.strip())


# ------------------------------------------------------------------------------------------- debugger and SBOMs


@pytest.mark.parametrize(("stage", "has_it"), [("dev", True), ("test-qa", False), ("stage", False), ("prod", False)])
def test_debugpy_is_in_dev_only(build_stage_images, built_images, stage, has_it):
    image = built_images.get(stage) or build_stage_images(stage)
    done = run_in(image, "python -c 'import debugpy'")
    assert (done.returncode == 0) == has_it, f"{image}: import debugpy: {describe(done)}"


def sbom_versions(path) -> dict[str, str]:
    bom = json.loads(path.read_text())
    assert bom["bomFormat"] == "CycloneDX"
    return {c["name"].lower(): c.get("version", "") for c in bom["components"]}


@pytest.mark.parametrize("stage", ["dev", "test-qa", "stage", "prod"])
def test_every_build_writes_an_sbom_with_the_locked_versions(build_stage_images, isolated, stage):
    """Django, mysqlclient and gunicorn at requirements/runtime.txt's pins; libmariadb3 (the Debian package _mysql
    links against) in stage and prod; debugpy in dev's only; pytest in test-qa's only."""
    from lifecycle import deps

    # Built (or, for stage and prod, found up to date) here: another test's `invoke clean` of the shared checkout may
    # have removed reports/ since the session's builds, and a build writes a missing report again.
    image = build_stage_images(stage)
    found = sbom_versions(REPO_ROOT / "reports" / f"sbom-{stage}.json")
    pins = deps.pins((REPO_ROOT / "requirements" / "runtime.txt").read_text())
    for name in ("django", "mysqlclient", "gunicorn"):
        assert found.get(name) == pins[name], f"{image} SBOM: {name} {found.get(name)} != locked {pins[name]}"
    assert found.get("libmariadb3"), f"{image} SBOM lacks libmariadb3"
    assert ("debugpy" in found) == (stage == "dev")
    assert ("pytest" in found) == (stage == "test-qa")
    summary = isolated.invoke("sbom", "--stage", stage)
    assert summary.returncode == 0, describe(summary)
    assert f"  django {pins['django']}" in summary.stdout


def test_prod_carries_its_sbom_with_the_sha256_in_a_label(built_images):
    image = built_images["prod"]
    labels = inspect_image(image)["Config"]["Labels"]
    done = run_in(image, f"cat {labels['io.lifecycle.sbom.path']}")
    assert done.returncode == 0, describe(done)
    assert hashlib.sha256(done.stdout.encode()).hexdigest() == labels["io.lifecycle.sbom.sha256"]
    assert "libmariadb3" in done.stdout


# ----------------------------------------------------------------------------------------------------- the code zip


def test_zip_is_byte_identical_across_two_runs(isolated):
    contents = []
    for attempt in (1, 2):
        done = isolated.invoke("zip")
        assert done.returncode == 0, f"invoke zip (run {attempt}) failed: {describe(done)}"
        contents.append(ZIP.read_bytes())
    assert contents[0] == contents[1]
    assert "(unchanged)" in done.stderr, f"the second run rewrote the zip: {describe(done)}"


def test_zip_is_byte_identical_in_a_copy_of_the_tree(isolated, tmp_path):
    assert isolated.invoke("zip").returncode == 0
    copy = copy_checkout(tmp_path / "checkout")
    script = (
        "from pathlib import Path; from lifecycle.codezip import pack_zip; "
        "root = Path.cwd(); print(pack_zip(root, root / 'updated_zip' / 'Project_playground.zip').sha256)"
    )
    done = subprocess.run(
        [PYTHON_FOR_TASKS, "-c", script],
        cwd=copy,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, describe(done)
    copied_zip = copy / "updated_zip" / "Project_playground.zip"
    assert copied_zip.read_bytes() == ZIP.read_bytes(), "the copy of the tree packs to different bytes"
    assert done.stdout.strip() == hashlib.sha256(ZIP.read_bytes()).hexdigest()
