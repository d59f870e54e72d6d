"""[tool.lifecycle] in the project's pyproject.toml: a settings layer below .env and the environment."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from lifecycle.context import Context
from lifecycle.errors import UserError
from lifecycle.local import Local
from lifecycle.settings import IMAGES_ENV, USER_ENV, load_settings, project_rows_markdown, read_project_table, table_key
from lifecycle.settings_table import DEFAULTS, LAYER_PARTS, TABLE
from lifecycle_site import layer
from tests.helpers.recording import RecordingRunner

CHECKOUT = Path(__file__).resolve().parents[2]


def write(root: Path, relative: str | Path, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def pyproject(root: Path, table: str) -> Path:
    write(root, "pyproject.toml", f"[project]\nname = 'shop'\n\n[tool.lifecycle]\n{table}")
    return root


@pytest.mark.parametrize(
    ("user_env", "environ", "expected"),
    [
        pytest.param(None, None, "3.13", id="[tool.lifecycle] over the default"),
        pytest.param("3.11", None, "3.11", id=".env over [tool.lifecycle]"),
        pytest.param(None, "3.10", "3.10", id="the environment over [tool.lifecycle]"),
    ],
)
def test_the_project_table_is_the_layer_below_env_files_and_environment(tmp_path, user_env, environ, expected):
    pyproject(tmp_path, "py-version = '3.13'\n")
    if user_env:
        write(tmp_path, USER_ENV, f"PY_VERSION={user_env}\n")
    settings = load_settings(root=tmp_path, environ={"PY_VERSION": environ} if environ else {})
    assert settings["PY_VERSION"] == settings.env["PY_VERSION"] == expected


def test_images_env_beats_the_project_table(tmp_path):
    pyproject(tmp_path, "base-image = 'python'\n")
    write(tmp_path, IMAGES_ENV, "BASE_IMAGE=lifecycle/python\n")
    assert load_settings(root=tmp_path, environ={})["BASE_IMAGE"] == "lifecycle/python"


def test_keys_tables_lists_and_booleans_become_setting_values(tmp_path):
    pyproject(tmp_path, (
        "code = ['manage.py', 'mysite', 'home']\nwsgi-app = 'mysite.wsgi:application'\n"
        "release-commands = ['createcachetable', 'clearsessions']\nbuild-packages = ['libcurl4-openssl-dev']\n"
        "deploy-replicas = 3\n"
        "[tool.lifecycle.settings]\ndev = 'mysite.settings.dev'\nprod = 'mysite.settings.production'\n"
        "[tool.lifecycle.layer]\nstatic = false\n"
    ))  # fmt: skip
    assert read_project_table(tmp_path) == {
        "CODE": "manage.py mysite home",
        "WSGI_APP": "mysite.wsgi:application",
        "RELEASE_COMMANDS": "createcachetable;clearsessions",
        "BUILD_PACKAGES": "libcurl4-openssl-dev",
        "DEPLOY_REPLICAS": "3",
        "SETTINGS_DEV": "mysite.settings.dev",
        "SETTINGS_PROD": "mysite.settings.production",
        "LAYER_STATIC": "false",
    }
    settings = load_settings(root=tmp_path, environ={})
    assert settings.code_include == ("manage.py", "mysite", "home")
    assert settings["SETTINGS_TEST"] == ""  # unset: the default


def test_no_pyproject_or_no_table_is_nothing(tmp_path):
    assert read_project_table(tmp_path) == {}
    write(tmp_path, "pyproject.toml", "[tool.ruff]\nline-length = 100\n")
    assert read_project_table(tmp_path) == {}


@pytest.mark.parametrize(
    ("table", "message"),
    [
        pytest.param("colour = 'blue'\n", r"\[tool.lifecycle\] colour is not a setting; remove it", id="unknown key"),
        pytest.param(
            "app-port = 8080\n", r"\[tool.lifecycle\] app-port is a machine setting; set APP_PORT in .env",
            id="a machine setting",
        ),
        pytest.param("[tool.lifecycle.layer]\ncolour = false\n", r"layer.colour is not a setting", id="unknown switch"),
        pytest.param("py-version = ['3.12']\n", r"py-version must be a string, number or boolean", id="list for one"),
        pytest.param("code = [1, 2]\n", r"code must be a list of strings", id="a list of numbers"),
        pytest.param(
            "release-commands = ['a; b']\n", r"release-commands: an item holds ';', which separates the items",
            id="a separator inside an item",
        ),
        pytest.param("code = [\n", r"pyproject.toml is not valid TOML", id="not TOML"),
        pytest.param("test-runner = 'nose'\n", r"TEST_RUNNER='nose' is not valid", id="unknown test runner"),
        pytest.param("wsgi-app = 'mysite.wsgi'\n", r"WSGI_APP='mysite.wsgi' is not MODULE:NAME", id="no name"),
        pytest.param("[tool.lifecycle.settings]\nprod = 'my-site.settings'\n", r"SETTINGS_PROD=", id="bad module"),
        pytest.param("health-path = 'health'\n", r"HEALTH_PATH='health' must be a path", id="health path"),
        pytest.param("project-dir = '../elsewhere'\n", r"PROJECT_DIR='../elsewhere' must be a folder inside", id="dir"),
        pytest.param("[tool.lifecycle.layer]\nstatic = 'maybe'\n", r"LAYER_STATIC='maybe' is not a bool", id="bool"),
    ],
)  # fmt: skip
def test_bad_tables_are_one_line_naming_the_key(tmp_path, table, message):
    pyproject(tmp_path, table)
    with pytest.raises(UserError, match=message):
        load_settings(root=tmp_path, environ={})


def test_this_repository_describes_django_site_in_its_own_table():
    """The defaults are django_site's; the table says so explicitly (its own /health view needs no switch: the
    health wrapper steps aside for a project that routes the path itself)."""
    table = read_project_table(CHECKOUT)
    # TESTS: django_site keeps its tests outside its package (tests/site); a project's default is none.
    assert {name: value for name, value in table.items() if value != DEFAULTS[name]} == {"TESTS": "tests/site"}
    assert {"CODE", "SETTINGS_DEV", "SETTINGS_PROD", "WSGI_APP", "REQUIREMENTS"} <= set(table)


def test_the_switches_are_the_settings_layers_parts():
    assert LAYER_PARTS == layer.PARTS


def test_the_code_zip_comes_from_project_dir_and_code(tmp_path):
    pyproject(tmp_path, "project-dir = 'src'\ncode = ['manage.py', 'shop']\n")
    write(tmp_path, "src/manage.py", "print('manage')\n")
    write(tmp_path, "src/shop/__init__.py", "")
    write(tmp_path, "src/other/__init__.py", "")
    write(tmp_path, "README.md", "not code\n")
    suite = Local(Context(load_settings(root=tmp_path, environ={}), RecordingRunner()))
    result = suite.zip()
    with zipfile.ZipFile(result.path) as archive:
        assert archive.namelist() == ["manage.py", "shop/__init__.py"]


def test_docs_adopt_lists_every_key_as_the_table_has_it():
    page = (CHECKOUT / "docs" / "adopt.md").read_text(encoding="utf-8")
    block = page.split("<!-- project-settings:start -->\n", 1)[1].split("<!-- project-settings:end -->", 1)[0]
    assert block == project_rows_markdown(), "docs/adopt.md is stale: paste project_rows_markdown() between the markers"


def test_every_project_key_reads_back_as_its_setting(tmp_path):
    lines = [
        f"{table_key(s).rpartition('.')[2]} = {s.default!r}" for s in TABLE if s.project and "." not in table_key(s)
    ]
    pyproject(tmp_path, "\n".join(lines) + "\n")
    assert read_project_table(tmp_path) == {s.name: s.default for s in TABLE if s.project and "." not in table_key(s)}
    for setting in (s for s in TABLE if s.project and "." in table_key(s)):
        table, _, key = table_key(setting).partition(".")
        pyproject(tmp_path, f"[tool.lifecycle.{table}]\n{key} = {setting.default!r}\n")
        assert read_project_table(tmp_path) == {setting.name: setting.default}
