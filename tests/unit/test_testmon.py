"""lifecycle.testmon without an engine: `invoke qa --changed`'s volume, options, and when the whole suite runs."""

from __future__ import annotations

import pytest

from lifecycle import testmon
from lifecycle.context import Context
from lifecycle.local import Local
from tests.helpers.recording import RecordingRunner


@pytest.fixture
def checkout(tmp_path, make_settings):
    """A tmp checkout with the files the key reads: the locks, the settings module, the tests' conftest."""
    for name, text in {
        "requirements/runtime.txt": "django==5.2.19\n",
        "requirements/test.txt": "pytest==9.2.0\n",
        "django_site/settings.py": "DEBUG = False\n",
        "django_site/notes/views.py": "def index(request): ...\n",
        "tests/site/conftest.py": "\n",
    }.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return make_settings(COMPOSE_PROJECT_NAME="shop-1a2b3c4d")


def test_the_data_lives_on_a_volume_of_the_checkouts_own_project(checkout):
    assert testmon.volume(checkout) == "shop-1a2b3c4d-testmon"
    env, volumes = testmon.run_options(checkout)
    assert env == [f"QA_CHANGED={testmon.inputs_key(checkout)}"] and volumes == ["shop-1a2b3c4d-testmon:/testmon"]


@pytest.mark.parametrize(
    ("changed", "whole_suite"),
    [
        pytest.param("requirements/runtime.txt", True, id="a-runtime-lock"),
        pytest.param("requirements/test.txt", True, id="the-test-lock"),
        pytest.param("django_site/settings.py", True, id="the-settings-module"),
        pytest.param("tests/site/conftest.py", True, id="the-tests-conftest"),
        pytest.param("django_site/notes/views.py", False, id="a-view-testmon-decides"),
    ],
)
def test_a_dependency_or_settings_change_changes_the_key_a_code_change_does_not(checkout, changed, whole_suite):
    before = testmon.inputs_key(checkout)
    path = checkout.root / changed
    path.write_text(path.read_text() + "# one line\n")
    assert (testmon.inputs_key(checkout) != before) is whole_suite


def test_the_settings_module_follows_settings_test_then_settings_dev(tmp_path, make_settings):
    (tmp_path / "shop" / "settings").mkdir(parents=True)
    settings = make_settings(SETTINGS_DEV="shop.settings", SETTINGS_TEST="shop.test_settings")
    assert testmon.settings_module_file(settings) == tmp_path / "shop" / "test_settings.py"
    assert testmon.settings_module_file(make_settings(SETTINGS_DEV="shop.settings")) == (
        tmp_path / "shop" / "settings" / "__init__.py"
    )


def test_a_missing_input_counts_as_its_absence(checkout):
    before = testmon.inputs_key(checkout)
    (checkout.root / "tests/site/conftest.py").unlink()
    assert testmon.inputs_key(checkout) != before


def test_qa_changed_runs_test_qa_with_the_key_and_the_volume(checkout):
    run = RecordingRunner()
    Local(Context(checkout, run, dry=True)).qa(changed=True)
    (pytest_run,) = [argv for argv in run.calls if "run" in argv and "test-qa" in argv]
    key = testmon.inputs_key(checkout)
    expected = ["--env", f"QA_CHANGED={key}", "--volume", "shop-1a2b3c4d-testmon:/testmon", "test-qa"]
    assert pytest_run[-5:] == expected
    plain = RecordingRunner()
    Local(Context(checkout, plain, dry=True)).qa()
    assert not any("QA_CHANGED" in " ".join(argv) for argv in plain.calls), "the whole suite, with coverage"


def test_clean_volumes_removes_the_testmon_volume_and_clean_alone_keeps_it(checkout):
    for volumes in (True, False):
        run = RecordingRunner()
        Local(Context(checkout, run, dry=True)).clean(volumes=volumes, yes=True, no_backup=True)
        removed = ["docker", "volume", "rm", "--force", "shop-1a2b3c4d-testmon"] in run.calls
        assert removed is volumes
