"""Fixtures for tests against the real Docker engine: the `engine` helpers once an engine answers, an isolated
checkout and its builds per session, a prod stack per module; every image this run built is removed at the end.

The helpers themselves live in tests/helpers (engine, tools, checkout): `from tests.helpers.engine import docker`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.helpers.checkout import REPO_ROOT, IsolatedCheckout, project_up
from tests.helpers.engine import (
    CREATED_NAMES,
    EngineHelpers,
    clean_up_on_sigterm,
    docker,
    images_built_by,
    random_secret,
)
from tests.helpers.schedule import (
    forward_sigterm_to_workers,
    is_xdist_controller,
    module_scheduling,
    order_longest_first,
)
from tests.helpers.tools import BUILD_TIMEOUT, describe


def pytest_configure(config: pytest.Config) -> None:
    if is_xdist_controller(config):
        forward_sigterm_to_workers()
    else:
        clean_up_on_sigterm()
    config.addinivalue_line(
        "markers", "integration: needs a running Docker engine (deselect with -m 'not integration')"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    order_longest_first(items)


@pytest.hookimpl(tryfirst=True, optionalhook=True)  # before xdist's own choice from --dist
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    return module_scheduling(config, log)


@pytest.fixture(scope="session", autouse=True)
def no_images_left_behind() -> Iterator[None]:
    """After the run: every image this run's projects built, earlier builds included, is removed."""
    yield
    leftovers = images_built_by(CREATED_NAMES)
    if leftovers:
        docker("image", "rm", "--force", *leftovers, check=False)


@pytest.fixture(scope="session")
def engine() -> EngineHelpers:
    """The helpers of tests.helpers.engine, once a Docker engine answers. Fails rather than skips: a silent skip proves
    nothing."""
    if docker("info", "--format", "{{.ServerVersion}}", check=False).returncode:
        pytest.fail("no Docker engine answers `docker info`; start it, or deselect with -m 'not integration'")
    return EngineHelpers()


@pytest.fixture(scope="session")
def isolated(engine: EngineHelpers) -> Iterator[IsolatedCheckout]:
    """One isolated checkout per test session; afterwards its containers, network, volume and images are removed."""
    checkout = IsolatedCheckout.new(db_password=random_secret(24), db_root_password=random_secret(24))
    try:
        yield checkout
    finally:
        down = checkout.remove(timeout=180)
        if down.returncode:
            print(f"warning: `invoke down --volumes --yes` of {checkout.project} failed: {describe(down)}")


@pytest.fixture(scope="session")
def stage_builds(isolated: IsolatedCheckout) -> dict[str, subprocess.CompletedProcess[str]]:
    """`invoke build --stage stage` and `--stage prod` run once for the session (cached after the first time).

    Returns the finished commands, so tests can assert on what the CLI said as well as use the images."""
    return {stage: isolated.invoke("build", "--stage", stage, timeout=BUILD_TIMEOUT) for stage in ("stage", "prod")}


@pytest.fixture(scope="session")
def built_images(isolated: IsolatedCheckout, stage_builds) -> dict[str, str]:
    """stage -> image tag for stage and prod; fails (with the build output) when a build failed."""
    for stage, done in stage_builds.items():
        if done.returncode:
            pytest.fail(f"invoke build --stage {stage} failed: {describe(done)}")
    return {stage: isolated.image(stage) for stage in stage_builds}


@pytest.fixture(scope="module")
def stack(engine: EngineHelpers) -> Iterator[IsolatedCheckout]:
    """One isolated prod stack (`invoke up --stage prod`) per test module, for tests that do not destroy it.

    A module that needs other stages up overrides this fixture (see test_least_privilege.py)."""
    with project_up("prod") as project:
        yield project


@pytest.fixture(scope="module")
def settings():
    """The checkout's resolved settings (.env, images.env, the environment)."""
    from lifecycle.settings import load_settings

    return load_settings(REPO_ROOT)
