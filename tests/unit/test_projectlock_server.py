"""What the images add to an adopted project's runtime lock: the MySQL driver and what they run the project with
(gunicorn, WhiteNoise), unless the project lists them; found by `nox -s adopt` (startproject's requirements.txt
holds Django alone: its prod image had no gunicorn)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecycle import projectlock

HASH = " --hash=sha256:" + "0" * 64


@pytest.mark.parametrize(
    ("requirements", "added", "copied"),
    [
        ("Django==5.2.19\n", ("mysqlclient", "gunicorn", "whitenoise"), False),
        ("Django>=6.1,<6.2\nwagtail>=8.0,<8.1\ngunicorn\n", ("mysqlclient", "whitenoise"), False),
        (
            "".join(f"{name}==1.0{HASH}\n" for name in ("django", "mysqlclient", "gunicorn", "whitenoise")),
            (),
            True,
        ),
    ],
    ids=["django alone", "gunicorn listed", "a lock with everything is copied"],
)
def test_runtime_lock_adds_what_the_images_run(tmp_path: Path, requirements, added, copied):
    (tmp_path / "requirements.txt").write_text(requirements)
    runtime = projectlock.plan_locks(tmp_path, ["requirements.txt"], [], "django")[0]
    assert runtime.added == added
    assert (runtime.copy_from == "requirements.txt") is copied
