"""Real Django projects nobody here wrote, made at test time from the package index, each in a folder of its own
outside the suite's checkout, as a git repository with one commit (what `invoke adopt` expects to find).

Each maker runs the project's own generator in a virtualenv of its own (`django-admin startproject`, `wagtail
start`, `spirit startproject`, `mezzanine-project`) and changes nothing the generator wrote, except what a user of
that generator is told to do next (startproject: an app with a model, a view, a migration and tests; Spirit: see
make_spirit).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from admin_upload import AdminUpload

SUITE = Path(__file__).resolve().parents[2]
WAGTAIL = "wagtail==8.0.1"
MEZZANINE = "mezzanine==6.1.1"
SPIRIT = "django-spirit[files,huey]==0.14.3"


def suite_django() -> str:
    """The Django the suite's images install (requirements/runtime.txt), so startproject's tree matches it."""
    found = re.search(r"^django==([\w.]+)", (SUITE / "requirements" / "runtime.txt").read_text(), re.MULTILINE)
    return f"Django=={found.group(1)}" if found else "Django"


def run(argv: list[str], cwd: Path, timeout: float = 900, env: dict[str, str] | None = None) -> str:
    """Run argv, output combined; on failure an AssertionError with the command and its last lines."""
    done = subprocess.run(
        argv, cwd=cwd, env={**clean_env(), **(env or {})}, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    if done.returncode:
        raise AssertionError(f"{' '.join(argv[:4])} failed ({done.returncode}) in {cwd}:\n{done.stdout[-4000:]}")
    return done.stdout


def clean_env() -> dict[str, str]:
    """The environment without the suite's own virtualenv and settings: the project's commands find their own."""
    drop = (
        "VIRTUAL_ENV",
        "PYTHONPATH",
        "DJANGO_SETTINGS_MODULE",
        "COMPOSE_PROJECT_NAME",
        "PROJ_NAME",
        "NOX_CURRENT_SESSION",
    )
    path = os.pathsep.join(
        p for p in os.environ.get("PATH", "").split(os.pathsep) if "/.nox/" not in p and "/.venv/" not in p
    )
    return {**{k: v for k, v in os.environ.items() if k not in drop}, "PATH": path}


def venv(folder: Path, *packages: str) -> Path:
    """A virtualenv with packages from the index; returns its bin folder."""
    if not (folder / "bin" / "python").exists():
        run([sys.executable, "-m", "venv", str(folder)], folder.parent)
    run([str(folder / "bin" / "python"), "-m", "pip", "install", "--quiet", *packages], folder.parent)
    return folder / "bin"


def commit(dest: Path, message: str) -> None:
    run(["git", "add", "--all"], dest)
    run(["git", "-c", "user.name=adopt-test", "-c", "user.email=adopt@example.invalid", "commit", "--quiet",
         "--allow-empty", "-m", message], dest)  # fmt: skip


def git_init(dest: Path) -> None:
    run(["git", "init", "--quiet", "--initial-branch", "main"], dest)
    commit(dest, "the project as its generator wrote it")


# ------------------------------------------------------------------------------------- (a) startproject
SHOP_MODELS = """\
from django.db import models


class Product(models.Model):
    name = models.CharField(max_length=100)
    photo = models.FileField(upload_to="products/", blank=True)

    def __str__(self):
        return self.name
"""
SHOP_VIEWS = """\
from django.http import HttpResponse

from .models import Product


def index(request):
    return HttpResponse(f"shop: {Product.objects.count()} products")
"""
SHOP_ADMIN = """\
from django.contrib import admin

from .models import Product

admin.site.register(Product)
"""
SHOP_TESTS = """\
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import TestCase

from .models import Product


class ShopTests(TestCase):
    def test_index_counts_products(self):
        Product.objects.create(name="chair")
        response = self.client.get("/")
        self.assertContains(response, "shop: 1 products")

    def test_a_photo_is_stored(self):
        product = Product.objects.create(name="lamp", photo=SimpleUploadedFile("lamp.txt", b"a lamp"))
        self.assertTrue(product.photo.storage.exists(product.photo.name))
        product.photo.delete()
"""


def make_startproject(work: Path) -> Path:
    """`django-admin startproject mysite` + `startapp shop`: a model with an upload, a view, a migration, tests."""
    bin_dir = venv(work / "venv-django", suite_django())
    dest = work / "startproject"
    dest.mkdir()
    run([str(bin_dir / "django-admin"), "startproject", "mysite", str(dest)], work)
    run([str(bin_dir / "python"), "manage.py", "startapp", "shop"], dest)
    for name, text in {"models.py": SHOP_MODELS, "views.py": SHOP_VIEWS, "admin.py": SHOP_ADMIN,
                       "tests.py": SHOP_TESTS}.items():  # fmt: skip
        (dest / "shop" / name).write_text(text)
    settings = dest / "mysite" / "settings.py"
    text = re.sub(
        r"(['\"])django.contrib.staticfiles\1,\n", lambda m: f"{m.group(0)}    'shop',\n", settings.read_text()
    )
    assert "'shop'" in text, "startproject's INSTALLED_APPS has changed shape"
    settings.write_text(text + '\nMEDIA_URL = "media/"\nMEDIA_ROOT = BASE_DIR / "media"\n')
    urls = dest / "mysite" / "urls.py"
    urls.write_text(urls.read_text().replace(
        "from django.urls import path\n", "from django.urls import path\n\nfrom shop.views import index\n").replace(
        "path('admin/', admin.site.urls),", "path('admin/', admin.site.urls),\n    path('', index),").replace(
        'path("admin/", admin.site.urls),', 'path("admin/", admin.site.urls),\n    path("", index),'))  # fmt: skip
    run([str(bin_dir / "python"), "manage.py", "makemigrations", "shop"], dest)
    (dest / "requirements.txt").write_text(suite_django() + "\n")
    (dest / ".gitignore").write_text("db.sqlite3\nmedia/\n__pycache__/\n.venv/\n")
    git_init(dest)
    return dest


# ------------------------------------------------------------------------------------------ (b) wagtail
def make_wagtail(work: Path) -> Path:
    """`wagtail start mysite .` (Wagtail 8.0.1): split settings, home and search apps, media, its own tests."""
    bin_dir = venv(work / "venv-wagtail", WAGTAIL)
    dest = work / "wagtail"
    dest.mkdir()
    run([str(bin_dir / "wagtail"), "start", "mysite", str(dest)], work)
    git_init(dest)
    return dest


# ---------------------------------------------------------------------------------------- (d) Mezzanine
def make_mezzanine(work: Path) -> Path:
    """Mezzanine 6.1.1's own project command (`mezzanine-project mysite .`, its bundled template): a CMS on Django 4.2
    (not the images' default Django), settings importing a local_settings.py, uploads (filebrowser), Pillow.

    django CMS 5.1.3's `djangocms` was the first choice: it downloads its project template from GitHub at run time,
    which no machine here reaches (only the package index); docs/adopt.md."""
    bin_dir = venv(work / "venv-mezzanine", MEZZANINE)
    dest = work / "mezzanine"
    dest.mkdir()
    run([str(bin_dir / "mezzanine-project"), "mysite", str(dest)], work)
    (dest / "requirements.txt").write_text(f"{MEZZANINE}\nDjango>=4.2,<5\n")
    git_init(dest)
    return dest


# ---------------------------------------------------------------------------------------------- (c) Spirit
# Spirit's own test suite ships inside the package, so the project names it in its committed [tool.lifecycle]
# test-args. Left out, 4 + ~90 of 645: tests_commands (the maintainers' commands; spirittxpush needs the repository's
# .tx folder) and the modules whose tests assume a case-sensitive database (users, user auth, private topics,
# category admin, markdown mentions: on MySQL's default case-insensitive collation 16 of them fail, as they would on
# any MySQL site; Spirit's CI runs SQLite and PostgreSQL).
SPIRIT_CORE_TESTS = ("avatar", "middleware", "storage", "tasks", "templates", "timezone", "utils",
                     "utils_deprecations", "utils_models", "utils_paginator", "utils_ratelimit")  # fmt: skip
SPIRIT_TEST_ARGS = [
    "spirit.admin", "spirit.category.tests", "spirit.comment", "spirit.search", "spirit.topic.tests",
    "spirit.topic.admin", "spirit.topic.favorite", "spirit.topic.moderate", "spirit.topic.notification",
    "spirit.topic.unread", "spirit.user.admin",
    *(f"spirit.core.tests.tests_{name}" for name in SPIRIT_CORE_TESTS),
]  # fmt: skip


def make_spirit(work: Path) -> Path:
    """`spirit startproject mysite` (Spirit 0.14.3, a forum: its bundled template): split settings (base, dev, prod
    on PostgreSQL, test), a DatabaseCache, ManifestStaticFilesStorage, uploads, python-magic (libmagic), /admin/login/
    behind the forum's own login, and its own test suite run from the installed package.

    What a user does that the generator does not: a requirements.txt (the template has none); the one line of the
    template's test settings that names Spirit's own repository layout (ROOT_URLCONF "test_project.test_project.urls")
    pointed at the project's urls; in [tool.lifecycle], the test labels and libmagic (the build asks for it)."""
    bin_dir = venv(work / "venv-spirit", SPIRIT)
    dest = work / "spirit"
    dest.mkdir()
    path = f"{bin_dir}{os.pathsep}{clean_env()['PATH']}"  # the command runs django-admin from its own venv
    run([str(bin_dir / "spirit"), "startproject", "mysite", "--path", str(dest)], work, env={"PATH": path})
    test_settings = dest / "mysite" / "settings" / "test.py"
    text = test_settings.read_text()
    assert '"test_project.test_project.urls"' in text, "Spirit's test settings have changed shape"
    test_settings.write_text(text.replace('"test_project.test_project.urls"', '"mysite.urls"'))
    (dest / "requirements.txt").write_text(SPIRIT + "\n")
    (dest / ".gitignore").write_text("*.sqlite3\nmedia/\nstatic/\nst_search/\n__pycache__/\n.venv/\n")
    args = ", ".join(f'"{label}"' for label in SPIRIT_TEST_ARGS)
    # python-magic comes in through the `files` extra, which adopt cannot see: the build names libmagic1t64 and
    # runtime-packages, and a user adds it as here
    (dest / "pyproject.toml").write_text(
        f'[tool.lifecycle]\ntest-args = [{args}]\nruntime-packages = ["libmariadb3", "libmagic1t64"]\n'
    )
    git_init(dest)
    return dest


# Where a project's admin takes a file (the step "an upload through the app, served over HTTPS"): startproject's shop.
UPLOADS = {
    "startproject": AdminUpload(
        "/admin/shop/product/add/", "photo", {"name": "uploaded lamp"},
        "from shop.models import Product; print(Product.objects.get(name='uploaded lamp').photo.url)",
    ),
}  # fmt: skip

MAKERS: dict[str, Callable[[Path], Path]] = {
    "startproject": make_startproject,
    "wagtail": make_wagtail,
    "spirit": make_spirit,
    "mezzanine": make_mezzanine,
}


def main() -> None:  # pragma: no cover - by hand: python tests/adopt/projects.py NAME FOLDER
    name, folder = sys.argv[1], Path(sys.argv[2])
    folder.mkdir(parents=True, exist_ok=True)
    print(MAKERS[name](folder))


if __name__ == "__main__":
    main()
