"""What the images add to an adopted project's runtime lock: the MySQL driver and what they run the project with
(gunicorn, WhiteNoise) and measure it with (django-prometheus, unless LAYER_METRICS is off), unless the project lists
them; found by `nox -s adopt` (startproject's requirements.txt holds Django alone: its prod image had no gunicorn)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecycle import projectlock
from lifecycle.runner import Result

HASH = " --hash=sha256:" + "0" * 64


@pytest.mark.parametrize(
    ("requirements", "metrics", "added", "copied"),
    [
        ("Django==5.2.19\n", True, ("mysqlclient", "gunicorn", "whitenoise", "django-prometheus"), False),
        ("Django>=6.1,<6.2\nwagtail>=8.0,<8.1\ngunicorn\n", True, ("mysqlclient", "whitenoise", "django-prometheus"),
         False),
        ("Django==5.2.19\n", False, ("mysqlclient", "gunicorn", "whitenoise"), False),
        ("".join(f"{name}==1.0{HASH}\n" for name in ("django", "mysqlclient", "gunicorn", "whitenoise",
                                                     "django-prometheus")), True, (), True),
        ("".join(f"{name}==1.0{HASH}\n" for name in ("django", "mysqlclient", "gunicorn", "whitenoise")), False, (),
         True),
    ],
    ids=["django alone", "gunicorn listed", "metrics off", "a lock with everything is copied",
         "metrics off: a lock without django-prometheus is copied"],
)  # fmt: skip
def test_runtime_lock_adds_what_the_images_run(tmp_path: Path, requirements, metrics, added, copied):
    (tmp_path / "requirements.txt").write_text(requirements)
    runtime = projectlock.plan_locks(tmp_path, ["requirements.txt"], [], "django", metrics=metrics)[0]
    assert runtime.added == added
    assert (runtime.copy_from == "requirements.txt") is copied


class NewDjangoUv:
    """`uv pip compile` for a project on a Django newer than django-prometheus supports: with it, only an older Django
    would resolve, which the project's own pins (the first compile's, as constraints) rule out."""

    def __init__(self, root: Path):
        self.root, self.added = root, []

    def __call__(self, argv, **kwargs):
        output = self.root / argv[argv.index("--output-file") + 1]
        self.added.append((self.root / projectlock.LOCK_DIR / f"{output.stem}.added.in").read_text().split())
        if "django-prometheus" in self.added[-1]:
            assert "--constraint" in argv  # never free to move the project's Django
            why = "  ╰─▶ Because django-prometheus==2.5.0 depends on django<6.1 and you require django==6.1.3, ..."
            return Result(1, "", f"  \u00d7 No solution found when resolving dependencies:\n{why}\n")
        output.write_text(
            'django==6.1.3 \\\n    --hash=sha256:61\ntzdata==2026.1 ; sys_platform == "win32" \\\n'
            "    --hash=sha256:77\n"
        )
        return Result(0)


def test_django_prometheus_never_moves_the_projects_pins_it_is_left_out_with_a_note(tmp_path: Path):
    (tmp_path / "requirements.txt").write_text("Django>=6.1\nmysqlclient\ngunicorn\nwhitenoise\n")
    values = {"REQUIREMENTS": "requirements.txt", "REQUIREMENTS_TEST": "", "TEST_RUNNER": "django",
              "PY_VERSION": "3.12"}  # fmt: skip
    said: list[str] = []
    uv_run = NewDjangoUv(tmp_path)
    runtime, _ = projectlock.ensure_locks(uv_run, tmp_path, values, say=said.append)
    assert uv_run.added == [[], ["django-prometheus"], ["coverage"], ["django-prometheus", "coverage"]]
    assert "django==6.1.3" in runtime.read_text()  # the project's own resolution, kept
    pins = (tmp_path / projectlock.LOCK_DIR / "runtime.pins.txt").read_text()
    assert pins == 'django==6.1.3\ntzdata==2026.1 ; sys_platform == "win32"\n'  # markers kept, hashes not
    assert said[1].startswith("lock: note: django-prometheus does not fit requirements.txt's pins (Because ")
    assert "the images serve no /metrics" in said[1]
    projectlock.ensure_locks(uv_run, tmp_path, values, say=said.append)
    assert len(uv_run.added) == 4  # the inputs did not change: not tried again
    projectlock.ensure_locks(uv_run, tmp_path, {**values, "LAYER_METRICS": "false"}, say=said.append)
    assert uv_run.added[4:] == [[], ["coverage"]]  # switched off: not even tried
