"""A skipped build is never a stale one: each input of the image changes, and the next `invoke build` sees it.

`invoke build` skips the build when the image's build key (lifecycle/buildkey.py) matches its inputs; these
tests change each kind of input in a copy of the checkout — code, requirements, the Dockerfile, a build
argument, the base image — and look for the change in the image the next build leaves behind.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.checkout import IsolatedCheckout, copy_checkout
from tests.helpers.engine import docker, unique_name
from tests.helpers.tools import describe

pytestmark = pytest.mark.integration
UP_TO_DATE = "is up to date"


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Iterator[IsolatedCheckout]:
    root = copy_checkout(tmp_path_factory.mktemp("build-cache") / "checkout")
    project = IsolatedCheckout.new(root=root)
    try:
        yield project
    finally:
        project.remove()


def build(checkout: IsolatedCheckout, stage: str = "prod", env=None) -> str:
    done = checkout.invoke("build", "--stage", stage, env=env)
    assert done.returncode == 0, describe(done)
    return done.stdout + done.stderr


def label(image: str, name: str) -> str:
    return docker("image", "inspect", "--format", f'{{{{index .Config.Labels "{name}"}}}}', image).stdout.strip()


def file_in(image: str, path: str) -> str:
    return docker("run", "--rm", "--entrypoint", "cat", image, path).stdout


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def test_an_unchanged_build_is_skipped_and_a_code_change_is_built(checkout):
    build(checkout)
    assert UP_TO_DATE in build(checkout)
    append(checkout.root / "django_site" / "views.py", "\nBUILD_CACHE_MARKER = 1\n")
    output = build(checkout)
    assert UP_TO_DATE not in output
    image = checkout.image("prod")
    manifest = json.loads((checkout.root / "updated_zip" / "Project_playground.manifest.json").read_text())
    assert label(image, "io.lifecycle.code-zip.sha256") == manifest["sha256"]
    assert "BUILD_CACHE_MARKER" in file_in(image, "/app/django_site/views.py")


def image_id(image: str) -> str:
    return docker("image", "inspect", "--format", "{{.Id}}", image).stdout.strip()


def test_a_code_change_builds_the_stage_alone_and_keeps_its_sbom(checkout):
    """The SBOM image depends on the dependencies only: a code change neither rebuilds nor re-reads it."""
    build(checkout)
    sbom_image = f"{checkout.proj_name}:sbom-runtime"
    sbom_before, report = image_id(sbom_image), checkout.root / "reports" / "sbom-prod.json"
    report_before = report.read_bytes()
    append(checkout.root / "django_site" / "views.py", "\nSBOM_KEEP_MARKER = 1\n")
    output = build(checkout)
    assert " build prod" in output and "sbom-runtime prod" not in output, output[-3000:]
    assert "SBOM:" not in output  # not copied out again
    assert image_id(sbom_image) == sbom_before and report.read_bytes() == report_before
    assert "SBOM_KEEP_MARKER" in file_in(checkout.image("prod"), "/app/django_site/views.py")


def test_a_site_test_change_leaves_prod_up_to_date(checkout):
    """tests/site goes into test-qa only: prod's key does not read it."""
    build(checkout)
    append(checkout.root / "tests" / "site" / "conftest.py", "\n# build-cache marker\n")
    assert UP_TO_DATE in build(checkout)


def test_a_dockerfile_change_is_built(checkout):
    build(checkout)
    append(checkout.root / "docker" / "Dockerfile", '\nLABEL io.lifecycle.test-marker="dockerfile"\n')
    assert UP_TO_DATE not in build(checkout)
    assert label(checkout.image("prod"), "io.lifecycle.test-marker") == "dockerfile"


def test_a_build_argument_change_is_built(checkout):
    build(checkout)
    output = build(checkout, env={"TZ": "Europe/Paris"})
    assert UP_TO_DATE not in output
    env = docker("image", "inspect", "--format", "{{json .Config.Env}}", checkout.image("prod")).stdout
    assert "TZ=Europe/Paris" in json.loads(env)


def test_a_requirements_change_is_built(checkout):
    build(checkout, "dev")
    append(checkout.root / "requirements" / "runtime.txt", "# build-cache marker\n")
    output = build(checkout, "dev")
    assert UP_TO_DATE not in output
    assert "sbom-dev dev" in output, output[-3000:]  # the dependencies changed: so may the SBOM
    assert "# build-cache marker" in file_in(checkout.image("dev"), "/tmp/requirements/runtime.txt")


def test_a_new_base_image_under_the_same_name_is_built(checkout, settings):
    """BASE_IMAGE points at a tag that then moves to another image: the next build uses the new one."""
    base = settings.base_image  # e.g. lifecycle/python:3.13-trixie
    alias_repo = unique_name("it-base")
    alias = f"{alias_repo}:{settings['PY_VERSION']}-{settings['PY_BASE']}"
    env = {"BASE_IMAGE": alias_repo}
    docker("tag", base, alias)
    try:
        build(checkout, env=env)
        assert UP_TO_DATE in build(checkout, env=env)
        container = docker("create", base).stdout.strip()
        try:  # the same files under a new image id, told apart by a label
            docker("commit", "--change", "LABEL io.lifecycle.test-base=moved", container, alias)
        finally:
            docker("rm", "--force", container, check=False)
        assert UP_TO_DATE not in build(checkout, env=env)
        assert label(checkout.image("prod"), "io.lifecycle.test-base") == "moved"
    finally:
        docker("image", "rm", "--force", alias, check=False)
