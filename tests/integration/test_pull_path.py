"""The "present or pullable" path for real: the base and database images come from a registry (the local one, on a
free port of its own), not from the local image store. Both are pushed there under other names, their local tags of
those names removed, and `invoke up --stage stage` pulls them: BASE_IMAGE for the build, DB_IMAGE for compose up."""

from __future__ import annotations

import pytest

from tests.helpers.checkout import IsolatedCheckout
from tests.helpers.engine import docker
from tests.helpers.tools import UP_TIMEOUT, describe

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def project(engine):
    checkout = IsolatedCheckout.new()
    try:
        up = checkout.invoke("registry.up", timeout=600)
        assert up.returncode == 0, describe(up)
        yield checkout
    finally:
        checkout.remove()
        checkout.invoke("registry.down", "--volumes", "--yes")
        docker("volume", "rm", "--force", checkout.registry_volume, check=False)
        pulled = docker(
            "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", "--filter", f"reference={checkout.registry}/*/*"
        )
        if pulled.stdout.split():
            docker("image", "rm", "--force", *pulled.stdout.split(), check=False)


def publish(image: str, target: str) -> None:
    """Push image to the registry as target, then forget target locally: only a pull can bring it back."""
    docker("tag", image, target)
    docker("push", target)
    docker("image", "rm", target)
    assert docker("image", "inspect", target, check=False).returncode != 0


def test_base_and_database_images_are_pulled_from_the_registry(project, settings):
    namespace = f"{project.registry}/{project.proj_name}-base"
    base_repository = f"{namespace}/{settings['BASE_IMAGE'].rsplit('/', 1)[-1]}"
    base = f"{base_repository}:{settings['PY_VERSION']}-{settings['PY_BASE']}"
    database = f"{namespace}/{settings['DB_IMAGE'].rsplit('/', 1)[-1]}"
    publish(settings.base_image, base)
    publish(settings["DB_IMAGE"], database)

    done = project.invoke_combined(
        "up", "--stage", "stage", env={"BASE_IMAGE": base_repository, "DB_IMAGE": database}, timeout=UP_TIMEOUT
    )
    assert done.returncode == 0, done.stdout[-4000:]
    assert f"docker pull --quiet {base}" in done.stdout
    for image in (base, database):
        assert docker("image", "inspect", image, check=False).returncode == 0, f"{image} was not pulled"
    db_container = project.containers("db")
    assert docker("inspect", "--format", "{{.Config.Image}}", *db_container).stdout.strip() == database
    assert project.health("stage") == "healthy"
