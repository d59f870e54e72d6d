"""lifecycle.detect: what a Django repository is made of, read from small fixture trees (nothing imported)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecycle import detect, detect_settings
from lifecycle.errors import UserError

CHECKOUT = Path(__file__).resolve().parents[2]

MANAGE = """#!/usr/bin/env python
import os
import sys

def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "{settings}")
    from django.core.management import execute_from_command_line
    execute_from_command_line(sys.argv)

if __name__ == "__main__":
    main()
"""
WSGI = """import os
from django.core.wsgi import get_wsgi_application
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "{settings}")
application = get_wsgi_application()
"""


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def startproject(prefix: str = "") -> dict[str, str]:
    """What `django-admin startproject mysite .` plus `startapp shop` write (the parts detection reads)."""
    return {
        f"{prefix}manage.py": MANAGE.format(settings="mysite.settings"),
        f"{prefix}mysite/__init__.py": "",
        f"{prefix}mysite/settings.py": (
            "from pathlib import Path\nBASE_DIR = Path(__file__).resolve().parent.parent\n"
            "SECRET_KEY = 'django-insecure-x'\nDEBUG = True\nWSGI_APPLICATION = 'mysite.wsgi.application'\n"
            "DATABASES = {'default': {'ENGINE': 'django.db.backends.sqlite3', 'NAME': BASE_DIR / 'db.sqlite3'}}\n"
            "STATIC_URL = 'static/'\n"
        ),
        f"{prefix}mysite/wsgi.py": WSGI.format(settings="mysite.settings"),
        f"{prefix}shop/__init__.py": "",
        f"{prefix}shop/models.py": "",
    }


WAGTAIL = {
    "manage.py": MANAGE.format(settings="mysite.settings.dev"),
    "mysite/__init__.py": "",
    "mysite/wsgi.py": WSGI.format(settings="mysite.settings.production"),
    "mysite/settings/__init__.py": "",
    "mysite/settings/base.py": (
        "import os\nPROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))\n"
        "BASE_DIR = os.path.dirname(PROJECT_DIR)\nWSGI_APPLICATION = 'mysite.wsgi.application'\n"
        "STATIC_ROOT = os.path.join(BASE_DIR, 'static')\nSTATIC_URL = '/static/'\n"
        "MEDIA_ROOT = os.path.join(BASE_DIR, 'media')\nMEDIA_URL = '/media/'\n"
    ),
    "mysite/settings/dev.py": "from .base import *\nDEBUG = True\n",
    "mysite/settings/production.py": "from .base import *\nDEBUG = False\n",
    "home/__init__.py": "",
    "search/__init__.py": "",
    "requirements.txt": "Django>=5.2,<5.3\nwagtail>=7.0,<7.1\n",
}

COOKIECUTTER = {
    "manage.py": MANAGE.format(settings="config.settings.local"),
    "config/__init__.py": "",
    "config/wsgi.py": WSGI.format(settings="config.settings.production"),
    "config/settings/__init__.py": "",
    "config/settings/base.py": "WSGI_APPLICATION = 'config.wsgi.application'\n",
    "config/settings/local.py": "from .base import *  # noqa\n",
    "config/settings/production.py": "from .base import *  # noqa\n",
    "config/settings/test.py": "from .base import *  # noqa\n",
    "requirements/base.txt": "django==5.2.1  # pinned\nPillow==11.0.0\n",
    "requirements/local.txt": "-r base.txt\npytest-django==4.9.0\n",
    "requirements/production.txt": "-r base.txt\ngunicorn==23.0.0\n",
    "pytest.ini": "[pytest]\naddopts = --ds=config.settings.test --reuse-db\n",
    "Procfile": "release: python manage.py migrate && python manage.py createcachetable\nweb: gunicorn x\n",
}


# --------------------------------------------------------------------------------------------- whole trees


def test_a_startproject_tree(tmp_path):
    found = detect.detect(tree(tmp_path, startproject()))
    assert (found.manage_dir, found.settings_dev, found.settings_test, found.settings_prod) == (
        ".", "mysite.settings", "mysite.settings", "mysite.settings",
    )  # fmt: skip
    assert found.wsgi_app == "mysite.wsgi:application"
    assert found.packages == ("mysite", "shop")
    assert found.test_runner == "django"
    assert found.static == {"STATIC_URL": "'static/'"}
    assert found.media == {}
    assert any("no requirements" in note for note in found.notes)


def test_manage_py_in_a_subfolder(tmp_path):
    found = detect.detect(tree(tmp_path, {**startproject("src/"), "requirements.txt": "django\nmysqlclient\n"}))
    assert found.manage_dir == "src"
    assert found.settings_prod == "mysite.settings"
    assert found.wsgi_app == "mysite.wsgi:application"
    assert found.requirements == ("requirements.txt",)
    assert not any("MySQL driver" in note for note in found.notes)


def test_wagtail_split_settings_production_for_prod_dev_for_dev(tmp_path):
    found = detect.detect(tree(tmp_path, WAGTAIL))
    assert (found.settings_dev, found.settings_test, found.settings_prod) == (
        "mysite.settings.dev", "mysite.settings.dev", "mysite.settings.production",
    )  # fmt: skip
    assert found.settings_modules == ("mysite.settings.base", "mysite.settings.dev", "mysite.settings.production")
    assert found.wsgi_app == "mysite.wsgi:application"  # from base.py, through production.py's star import
    assert found.media == {"MEDIA_URL": "'/media/'", "MEDIA_ROOT": "os.path.join(BASE_DIR, 'media')"}
    assert found.packages == ("home", "mysite", "search")
    assert found.django_requirement == "Django>=5.2,<5.3"


def test_cookiecutter_layout(tmp_path):
    found = detect.detect(tree(tmp_path, COOKIECUTTER))
    assert (found.settings_dev, found.settings_test, found.settings_prod) == (
        "config.settings.local", "config.settings.test", "config.settings.production",
    )  # fmt: skip
    assert found.requirements == ("requirements/production.txt",)
    assert found.test_requirements == ("requirements/local.txt",)
    assert found.django_requirement == "django==5.2.1"
    assert found.test_runner == "pytest"
    assert found.release_commands == ("createcachetable",)


def test_this_repository_adopts_its_own_site():
    found = detect.detect(CHECKOUT)
    assert (found.settings_dev, found.settings_prod, found.wsgi_app) == (
        "django_site.settings", "django_site.settings", "django_site.wsgi:application",
    )  # fmt: skip
    # pyproject.toml's [project.dependencies] are the lifecycle wheel's (invoke wheel); this repository's own
    # [tool.lifecycle] names runtime.txt alone for django_site, as a user would correct a detection.
    assert found.requirements == ("requirements/runtime.txt", "pyproject.toml")
    assert found.test_requirements == ("requirements/test.txt",)
    assert found.test_runner == "pytest"


def test_describe_says_every_fact(tmp_path):
    lines = detect.describe(detect.detect(tree(tmp_path, COOKIECUTTER)))
    assert "settings:         dev config.settings.local, test config.settings.test, stage/prod " \
        "config.settings.production" in lines  # fmt: skip
    assert "release commands: createcachetable" in lines
    assert "test runner:      pytest (pytest-django)" in lines


# --------------------------------------------------------------------------------------------- manage.py


def test_no_manage_py_is_not_a_django_project(tmp_path):
    tree(tmp_path, {"app.py": "", "a/b/c/manage.py": ""})  # three folders down is too deep
    with pytest.raises(UserError, match=r"is not a Django project: no manage.py in it or 2 folders down$"):
        detect.find_manage_py(tmp_path)


def test_the_shallowest_manage_py_wins(tmp_path):
    tree(tmp_path, {"manage.py": "", "docs/example/manage.py": ""})
    assert detect.find_manage_py(tmp_path) == tmp_path / "manage.py"


def test_two_manage_py_at_one_depth_are_ambiguous(tmp_path):
    tree(tmp_path, {"a/manage.py": "", "b/manage.py": ""})
    with pytest.raises(UserError, match=r"more than one manage.py \(a/manage.py, b/manage.py\)"):
        detect.find_manage_py(tmp_path)


def test_a_virtualenv_is_never_searched(tmp_path):
    tree(tmp_path, {".venv/manage.py": "", "venv/manage.py": "", "node_modules/manage.py": "", "src/manage.py": ""})
    assert detect.find_manage_py(tmp_path) == tmp_path / "src" / "manage.py"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(MANAGE.format(settings="a.settings"), "a.settings", id="os.environ.setdefault"),
        pytest.param("import os\nos.environ['DJANGO_SETTINGS_MODULE'] = 'b.settings'\n", "b.settings", id="assigned"),
        pytest.param("from os import environ\nenviron.setdefault('DJANGO_SETTINGS_MODULE', 'c.s')\n", "c.s", id="bare"),
        pytest.param(
            "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', os.getenv('X'))\n", None, id="computed"
        ),
        pytest.param("def (:\n", None, id="not Python"),
    ],
)
def test_settings_default(tmp_path, source, expected):
    assert detect_settings.settings_default(tree(tmp_path, {"manage.py": source}) / "manage.py") == expected


# --------------------------------------------------------------------------------------------- settings per stage


@pytest.mark.parametrize(
    ("manage", "wsgi", "candidates", "expected"),
    [
        pytest.param("m.settings", "m.settings", [], ("m.settings", "m.settings", "m.settings"), id="one module"),
        pytest.param(
            "m.settings.dev", "m.settings.production", ["m.settings.base", "m.settings.dev", "m.settings.production"],
            ("m.settings.dev", "m.settings.production", "m.settings.dev"), id="wagtail",
        ),
        pytest.param(
            "m.settings", "m.settings", ["m.settings.local", "m.settings.prod", "m.settings.testing"],
            ("m.settings.local", "m.settings.prod", "m.settings.testing"), id="a settings package by names",
        ),
        pytest.param(
            "m.settings.local", "m.settings.local", ["m.settings.local"],
            ("m.settings.local", "m.settings.local", "m.settings.local"), id="only a dev module: it is all there is",
        ),
        pytest.param(
            "m.settings", "m.wsgi_settings", [], ("m.settings", "m.wsgi_settings", "m.settings"),
            id="wsgi.py's own module for prod",
        ),
        pytest.param(None, None, [], ("", "", ""), id="nothing named"),
    ],
)  # fmt: skip
def test_choose_settings(manage, wsgi, candidates, expected):
    chosen = detect_settings.choose_settings(manage, wsgi, candidates)
    assert (chosen["dev"], chosen["prod"], chosen["test"]) == expected


# --------------------------------------------------------------------------------------------- dependencies


@pytest.mark.parametrize(
    ("files", "runtime", "test"),
    [
        pytest.param(
            {"requirements.txt": "-r requirements/base.txt\n", "requirements/base.txt": "django\n",
             "requirements-dev.txt": "-r requirements.txt\npytest\n"},
            ["requirements.txt"], ["requirements-dev.txt"], id="requirements.txt including a base, a dev file",
        ),
        pytest.param(
            {"requirements/base.txt": "django\n", "requirements/production.txt": "-r base.txt\n",
             "requirements/local.txt": "-r base.txt\n", "requirements/test.txt": "-r local.txt\n"},
            ["requirements/production.txt"], ["requirements/test.txt"], id="requirements/ with a base",
        ),
        pytest.param(
            {"pyproject.toml": "[project]\nname='x'\ndependencies=['django']\n"
             "[project.optional-dependencies]\ntest=['pytest']\n"},
            ["pyproject.toml"], ["pyproject.toml[test]"], id="pyproject dependencies and a test extra",
        ),
        pytest.param({"setup.py": ""}, [], [], id="nothing found"),
    ],
)  # fmt: skip
def test_dependency_sources(tmp_path, files, runtime, test):
    found_runtime, found_test, _ = detect.dependency_sources(tree(tmp_path, files))
    assert (found_runtime, found_test) == (runtime, test)


def test_requirement_lines_follow_includes_and_hash_locks(tmp_path):
    tree(tmp_path, {
        "requirements.txt": "-r base.txt\ngunicorn==23.0 \\\n    --hash=sha256:abc\n# comment\n--index-url x\n",
        "base.txt": "Django==5.2.1  # web\n-c requirements.txt\n",
    })  # fmt: skip
    assert detect.requirement_lines(tmp_path / "requirements.txt") == ["Django==5.2.1", "gunicorn==23.0"]


# --------------------------------------------------------------------------------------------- test runner


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param({"pytest.ini": "[pytest]\nDJANGO_SETTINGS_MODULE = a.test\n"}, "a.test", id="pytest.ini"),
        pytest.param({"pytest.ini": "[pytest]\naddopts = -q --ds=a.ci\n"}, "a.ci", id="--ds in addopts"),
        pytest.param(
            {"pyproject.toml": "[tool.pytest.ini_options]\nDJANGO_SETTINGS_MODULE = 'a.s'\n"}, "a.s", id="pyproject"
        ),
        pytest.param({"setup.cfg": "[tool:pytest]\nDJANGO_SETTINGS_MODULE = a.cfg\n"}, "a.cfg", id="setup.cfg"),
        pytest.param({"tox.ini": "[pytest]\ndjango_settings_module = a.tox\n"}, "a.tox", id="tox.ini"),
        pytest.param({"pytest.ini": "[pytest]\naddopts = -q\n"}, None, id="pytest without Django"),
        pytest.param({}, None, id="no pytest configuration"),
    ],
)
def test_pytest_django_settings(tmp_path, files, expected):
    assert detect.pytest_django_settings(tree(tmp_path, files)) == expected


def test_pytest_django_in_the_test_requirements_means_pytest(tmp_path):
    files = {**startproject(), "requirements.txt": "django\n", "requirements-test.txt": "pytest-django\n"}
    assert detect.detect(tree(tmp_path, files)).test_runner == "pytest"


# --------------------------------------------------------------------------------------------- release


@pytest.mark.parametrize(
    ("line", "commands", "others"),
    [
        ("python manage.py migrate && python manage.py createcachetable", ["migrate", "createcachetable"], []),
        ("./manage.py compress --force; ./release.sh", ["compress --force"], ["./release.sh"]),
        ("python src/manage.py clearsessions", ["clearsessions"], []),
        ("bin/release", [], ["bin/release"]),
    ],
)
def test_manage_commands(line, commands, others):
    assert detect.manage_commands(line) == (commands, others)


def test_heroku_yml_release_commands(tmp_path):
    tree(tmp_path, {**startproject(), "heroku.yml": (
        "build:\n  docker:\n    web: Dockerfile\nrelease:\n  image: web\n  command:\n"
        "    - python manage.py migrate\n    - python manage.py createcachetable\nrun:\n  web: gunicorn\n"
    )})  # fmt: skip
    assert detect.detect(tmp_path).release_commands == ("createcachetable",)


def test_a_release_script_is_a_note_not_a_command(tmp_path):
    found = detect.detect(tree(tmp_path, {**startproject(), "Procfile": "release: ./release-tasks.sh\n"}))
    assert found.release_commands == ()
    assert "release step not a manage.py command, not carried over: ./release-tasks.sh" in found.notes


# --------------------------------------------------------------------------------------------- what settings imply


@pytest.mark.parametrize(
    ("settings", "requirements", "build", "release", "noted"),
    [
        pytest.param(
            "INSTALLED_APPS = ['compressor']\nCOMPRESS_OFFLINE = True\n", "django\n", ("compress",), (), False,
            id="compressor offline: a build step",
        ),
        pytest.param(
            "INSTALLED_APPS = ['compressor']\n", "django\n", (), (), True, id="compressor online: a note",
        ),
        pytest.param(
            "CACHES = {'default': {'BACKEND': 'django.core.cache.backends.db.DatabaseCache', 'LOCATION': 'c'}}\n",
            "django\n", (), ("createcachetable",), False, id="a database cache: its table at release",
        ),
        pytest.param(
            "CACHES = {'default': {'BACKEND': 'django.core.cache.backends.locmem.LocMemCache'}}\n", "django\n",
            (), (), False, id="another cache: nothing",
        ),
    ],
)  # fmt: skip
def test_what_the_prod_settings_imply(tmp_path, settings, requirements, build, release, noted):
    files = {**startproject(), "requirements.txt": requirements}
    files["mysite/settings.py"] += settings
    found = detect.detect(tree(tmp_path, files))
    assert (found.build_steps, found.release_commands) == (build, release)
    assert any("COMPRESS_OFFLINE" in note for note in found.notes) is noted


def test_a_procfile_createcachetable_and_a_database_cache_give_one_release_command(tmp_path):
    files = {**startproject(), "Procfile": "release: python manage.py createcachetable\n"}
    files["mysite/settings.py"] += "CACHES = {'default': {'BACKEND': 'django.core.cache.backends.db.DatabaseCache'}}\n"
    assert detect.detect(tree(tmp_path, files)).release_commands == ("createcachetable",)


@pytest.mark.parametrize(
    ("requirements", "build", "runtime"),
    [
        ("django\nmysqlclient\n", (), ()),
        ("django\npycurl==7.45\n", ("libcurl4-openssl-dev", "libssl-dev"), ("libcurl4t64",)),
        ("psycopg2==2.9\npython-magic\n", ("libpq-dev",), ("libmagic1t64", "libpq5")),
        ("psycopg2-binary==2.9\n", (), ()),
    ],
)
def test_system_packages_a_dependency_needs(tmp_path, requirements, build, runtime):
    found = detect.detect(tree(tmp_path, {**startproject(), "requirements.txt": requirements}))
    assert (found.build_packages, tuple(sorted(found.runtime_packages))) == (build, runtime)


MEZZANINE_MANAGE = """import os, sys
if __name__ == "__main__":
    from mezzanine.utils.conf import real_project_name
    settings_module = "%s.settings" % real_project_name("mysite")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings_module)
"""


def test_computed_settings_are_the_settings_beside_wsgi_py(tmp_path):
    """`mezzanine-project` computes DJANGO_SETTINGS_MODULE in manage.py and wsgi.py: the settings beside wsgi.py."""
    files = {
        **startproject(),
        "manage.py": MEZZANINE_MANAGE,
        "mysite/wsgi.py": "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', '%s.settings' % 'mysite')\n",
    }
    found = detect.detect(tree(tmp_path, files))
    assert (found.settings_dev, found.settings_prod) == ("mysite.settings", "mysite.settings")
    assert any("compute DJANGO_SETTINGS_MODULE; taken: mysite.settings (beside wsgi)" in note for note in found.notes)
    assert not any("sets no DJANGO_SETTINGS_MODULE" in note for note in found.notes)


@pytest.mark.parametrize(
    ("files", "tests"),
    [
        pytest.param({"polls/__init__.py": "", "polls/tests.py": ""}, [], id="app tests: inside the code"),
        pytest.param({"tests/test_a.py": "", "pytest.ini": "[pytest]\n"}, ["tests", "pytest.ini"], id="tests folder"),
        pytest.param({"tests/__init__.py": ""}, [], id="a tests package is code"),
        pytest.param({"conftest.py": "", "setup.cfg": "[metadata]\n", "tox.ini": "[pytest]\nx = 1\n"},
                     ["conftest.py", "tox.ini"], id="pytest's configuration only"),
        pytest.param({"pyproject.toml": "[tool.pytest.ini_options]\naddopts = '-q'\n"}, ["pyproject.toml"],
                     id="pyproject configuring pytest"),
    ],
)  # fmt: skip
def test_tests_outside_the_code_are_what_test_qa_adds(tmp_path, files, tests):
    for relative, text in {"manage.py": "", **files}.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    packages = sorted(p.name for p in tmp_path.iterdir() if (p / "__init__.py").is_file())
    assert detect.test_paths(tmp_path, packages) == tests
