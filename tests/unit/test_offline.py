"""lifecycle.offline without an engine: decisions, argument lists and the switch file."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from lifecycle import offline
from lifecycle.errors import UserError
from lifecycle.offline import OfflineTags
from lifecycle.runner import Result
from lifecycle.settings import IMAGES_ENV, ROOT, load_settings

TAGS = OfflineTags(
    rootfs="lifecycle/debian:trixie",
    python="lifecycle/python:3.13-trixie",
    db="lifecycle/mariadb:11.8",
    registry="lifecycle/registry:2.8",
    proxy="lifecycle/haproxy:3.0",
    skopeo="lifecycle/skopeo:1.18",
)
ALL = {TAGS.rootfs, TAGS.python, TAGS.db, TAGS.registry, TAGS.proxy}
IMAGES = {TAGS.python, TAGS.db, TAGS.registry, TAGS.proxy}


def make_settings(tmp_path: Path, **environ: str):
    return load_settings(root=tmp_path, environ=environ)


class FakeRunner:
    """Records commands; `docker image inspect TAG` succeeds only for tags in `existing`, `docker pull TAG` only for
    tags in `pullable`."""

    def __init__(self, existing=(), pullable=(), stale=()):
        self.existing = set(existing)
        self.pullable = set(pullable)
        self.stale = set(stale)  # present, but built from other inputs (another build-key label)
        self.calls: list[tuple[list[str], dict | None]] = []

    def __call__(self, argv, *, env=None, warn=False, capture=False):
        self.calls.append((list(argv), env))
        if argv[:3] == ["docker", "image", "inspect"]:
            tag = argv[-1]
            if tag not in self.existing:
                return Result(1)
            if "{{.Id}}" in argv:
                return Result(0, f"sha256:{tag}\n")
            return Result(0, "built from other inputs\n" if tag in self.stale else f"key-of-sha256:{TAGS.rootfs}\n")
        if argv[:2] == ["docker", "pull"]:
            return Result(0 if argv[-1] in self.pullable else 1)
        return Result(0)

    @property
    def programs(self) -> list[str]:
        return [" ".join(argv[:2]) for argv, _ in self.calls if argv[:3] != ["docker", "image", "inspect"]]


@pytest.fixture(autouse=True)
def keys_of_the_rootfs(monkeypatch):
    """Every image's build key is `key-of-<rootfs id>` here (FakeRunner answers it for the images it has);
    the real keys are tested below, on files."""
    monkeypatch.setattr(
        offline, "build_keys", lambda settings, rootfs_id: dict.fromkeys(offline.IMAGES, f"key-of-{rootfs_id}")
    )


@pytest.mark.parametrize(
    ("existing", "force", "expected"),
    [
        pytest.param(ALL, False, [], id="all-present-nothing"),
        pytest.param(ALL, True, ["rootfs", "python", "db", "registry", "proxy"], id="all-present-force-all"),
        pytest.param(set(), False, ["rootfs", "python", "db", "registry", "proxy"], id="none-present-all"),
        pytest.param({TAGS.rootfs}, False, ["python", "db", "registry", "proxy"], id="rootfs-only-every-image"),
        pytest.param(ALL - {TAGS.db}, False, ["db"], id="db-missing-db-only"),
        pytest.param(ALL - {TAGS.python}, False, ["python"], id="python-missing-python-only"),
        pytest.param(ALL - {TAGS.proxy}, False, ["proxy"], id="proxy-missing-proxy-only"),
        pytest.param(IMAGES, False, [], id="rootfs-missing-but-unneeded"),
        pytest.param(IMAGES - {TAGS.db}, False, ["rootfs", "db"], id="db-and-rootfs-missing"),
        pytest.param({"lifecycle/debian:bookworm"}, False, list(offline.STEPS), id="other-suite-ignored"),
    ],
)
def test_plan(existing, force, expected):
    assert offline.plan(TAGS, existing, force) == expected


@pytest.mark.parametrize(
    ("existing", "force", "wanted", "expected"),
    [
        pytest.param({TAGS.rootfs}, False, ["registry"], ["registry"], id="only-the-wanted-image"),
        pytest.param(set(), False, ["proxy"], ["rootfs", "proxy"], id="wanted-image-and-its-rootfs"),
        pytest.param(ALL, True, ["proxy"], ["rootfs", "proxy"], id="force-rebuilds-only-the-wanted"),
        pytest.param({TAGS.rootfs, TAGS.registry}, False, ["registry"], [], id="wanted-present-nothing"),
    ],
)
def test_plan_of_wanted_images(existing, force, wanted, expected):
    assert offline.plan(TAGS, existing, force, wanted) == expected


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param(
            offline.debootstrap_argv("trixie", "http://deb.debian.org/debian", Path("/var/tmp/x/rootfs")),
            [
                "debootstrap",
                "--variant=minbase",
                "--force-check-gpg",
                "--keyring=/usr/share/keyrings/debian-archive-keyring.gpg",
                "trixie",
                "/var/tmp/x/rootfs",
                "http://deb.debian.org/debian",
            ],
            id="debootstrap-minbase-signatures-checked",
        ),
        pytest.param(
            offline.debootstrap_argv("bookworm", "https://mirror.example/debian", "/r", "/etc/apt/my.gpg"),
            [
                "debootstrap",
                "--variant=minbase",
                "--force-check-gpg",
                "--keyring=/etc/apt/my.gpg",
                "bookworm",
                "/r",
                "https://mirror.example/debian",
            ],
            id="debootstrap-own-keyring-https-mirror",
        ),
        pytest.param(
            offline.tar_argv(Path("/var/tmp/x/rootfs"), Path("/var/tmp/x/rootfs.tar")),
            ["tar", "-C", "/var/tmp/x/rootfs", "-c", "-f", "/var/tmp/x/rootfs.tar", "."],
            id="tar-whole-tree",
        ),
        pytest.param(
            offline.import_argv(Path("/var/tmp/x/rootfs.tar"), "lifecycle/debian:trixie"),
            ["docker", "import", "/var/tmp/x/rootfs.tar", "lifecycle/debian:trixie"],
            id="docker-import",
        ),
    ],
)
def test_argv(argv, expected):
    assert argv == expected


@pytest.mark.parametrize(
    ("services", "prefix", "expected_tail"),
    [
        pytest.param(["python", "db"], "lifecycle", ["lifecycle-offline-images", "build", "python", "db"], id="both"),
        pytest.param(["db"], "acme", ["acme-offline-images", "build", "db"], id="db-other-prefix"),
    ],
)
def test_build_images_argv(tmp_path, services, prefix, expected_tail):
    settings = make_settings(tmp_path, OFFLINE_PREFIX=prefix)
    argv = offline.build_images_argv(settings, services)
    assert argv == [
        "docker",
        "--log-level",
        "error",
        "compose",
        "--project-name",
        expected_tail[0],
        "--file",
        str(tmp_path / "docker/offline/compose.yaml"),
        "--profile",
        "*",
        *expected_tail[1:],
    ]


def test_build_env_adds_offline_values_and_keeps_settings(tmp_path):
    env = offline.build_images_env(make_settings(tmp_path, DEBIAN_SUITE="bookworm", PATH="/usr/bin"))
    assert env["PATH"] == "/usr/bin"
    assert "COMPOSE_BAKE" not in env
    assert env["DB_IMAGE"] == "mysql:8.4"  # the main stack's meaning is untouched
    assert {k: env[k] for k in OFFLINE_NAMES} == {
        "OFFLINE_SUITE": "bookworm",
        "OFFLINE_ROOTFS_IMAGE": "lifecycle/debian:bookworm",
        "OFFLINE_PYTHON_IMAGE": "lifecycle/python:3.11-bookworm",
        "OFFLINE_DB_IMAGE": "lifecycle/mariadb:10.11",
        "OFFLINE_REGISTRY_IMAGE": "lifecycle/registry:2.8",
        "OFFLINE_PROXY_IMAGE": "lifecycle/haproxy:2.6",
    }


OFFLINE_NAMES = (
    "OFFLINE_SUITE",
    "OFFLINE_ROOTFS_IMAGE",
    "OFFLINE_PYTHON_IMAGE",
    "OFFLINE_DB_IMAGE",
    "OFFLINE_REGISTRY_IMAGE",
    "OFFLINE_PROXY_IMAGE",
)


def test_build_env_names_match_compose_file():
    compose = (Path(offline.__file__).resolve().parent.parent / offline.COMPOSE_FILE).read_text()
    for name in OFFLINE_NAMES:
        assert f"${{{name}:?" in compose


@pytest.mark.parametrize(
    ("environ", "expected_tags", "expected_switch"),
    [
        pytest.param(
            {},
            TAGS,
            {
                "BASE_IMAGE": "lifecycle/python",
                "PY_VERSION": "3.13",
                "PY_BASE": "trixie",
                "DB_IMAGE": "lifecycle/mariadb:11.8",
                "REGISTRY_IMAGE": "lifecycle/registry:2.8",
                "PROXY_IMAGE": "lifecycle/haproxy:3.0",
            },
            id="defaults-trixie",
        ),
        pytest.param(
            {"DEBIAN_SUITE": "bookworm", "OFFLINE_PREFIX": "acme"},
            OfflineTags(
                "acme/debian:bookworm",
                "acme/python:3.11-bookworm",
                "acme/mariadb:10.11",
                "acme/registry:2.8",
                "acme/haproxy:2.6",
                "acme/skopeo:1.9",
            ),
            {
                "BASE_IMAGE": "acme/python",
                "PY_VERSION": "3.11",
                "PY_BASE": "bookworm",
                "DB_IMAGE": "acme/mariadb:10.11",
                "REGISTRY_IMAGE": "acme/registry:2.8",
                "PROXY_IMAGE": "acme/haproxy:2.6",
            },
            id="bookworm-other-prefix",
        ),
    ],
)
def test_tags_and_switch_values(tmp_path, environ, expected_tags, expected_switch):
    settings = make_settings(tmp_path, **environ)
    assert offline.offline_tags(settings) == expected_tags
    assert offline.switch_values(settings) == expected_switch


def test_switch_values_name_the_python_image(tmp_path):
    settings = make_settings(tmp_path)
    switched = settings.override(**offline.switch_values(settings))
    assert switched.base_image == offline.offline_tags(settings).python


def test_unknown_suite_names_the_valid_ones(tmp_path):
    with pytest.raises(UserError, match=r"DEBIAN_SUITE='sid'.*bookworm, trixie"):
        offline.offline_tags(make_settings(tmp_path, DEBIAN_SUITE="sid"))


def test_write_switch_content(tmp_path):
    settings = make_settings(tmp_path)
    assert offline.write_switch(settings) is True
    text = (tmp_path / IMAGES_ENV).read_text()
    assert text.startswith("# ")
    assert (
        "Delete this file to return to the official images (python:3.12-slim, mysql:8.4, registry:2, haproxy:3.0)"
        in text
    )
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert lines == [
        "BASE_IMAGE=lifecycle/python",
        "PY_VERSION=3.13",
        "PY_BASE=trixie",
        "DB_IMAGE=lifecycle/mariadb:11.8",
        "REGISTRY_IMAGE=lifecycle/registry:2.8",
        "PROXY_IMAGE=lifecycle/haproxy:3.0",
    ]
    # The settings loader reads it back as the switch it is.
    reloaded = load_settings(root=tmp_path, environ={})
    assert reloaded.base_image == "lifecycle/python:3.13-trixie"
    assert reloaded["DB_IMAGE"] == "lifecycle/mariadb:11.8"


def test_write_switch_leaves_identical_file_alone(tmp_path):
    settings = make_settings(tmp_path)
    offline.write_switch(settings)
    path = tmp_path / IMAGES_ENV
    long_ago = 1_000_000_000_000_000_000
    os.utime(path, ns=(long_ago, long_ago))
    assert offline.write_switch(load_settings(root=tmp_path, environ={})) is False
    assert path.stat().st_mtime_ns == long_ago


def test_write_switch_replaces_different_content(tmp_path):
    (tmp_path / IMAGES_ENV).parent.mkdir()
    (tmp_path / IMAGES_ENV).write_text("BASE_IMAGE=old\n")
    assert offline.write_switch(make_settings(tmp_path)) is True
    assert "BASE_IMAGE=lifecycle/python\n" in (tmp_path / IMAGES_ENV).read_text()


@pytest.fixture
def rootfs_allowed(monkeypatch, tmp_path):
    monkeypatch.setattr(offline.shutil, "which", lambda name: f"/usr/sbin/{name}")
    monkeypatch.setattr(offline.os, "geteuid", lambda: 0)
    monkeypatch.setattr(offline, "WORK_DIR", tmp_path)
    keyring = tmp_path / "debian-archive-keyring.gpg"
    keyring.write_bytes(b"keys")
    monkeypatch.setattr(offline, "DEBIAN_KEYRING", keyring)


def test_ensure_does_nothing_when_all_exist(tmp_path):
    run = FakeRunner(existing=ALL)
    assert offline.ensure_offline_images(make_settings(tmp_path), run) == []
    assert run.programs == []


def test_ensure_makes_rootfs_when_an_image_on_it_is_missing(tmp_path, rootfs_allowed):
    run = FakeRunner(existing=IMAGES - {TAGS.db})
    settings = make_settings(tmp_path)
    assert offline.ensure_offline_images(settings, run) == [TAGS.rootfs, TAGS.db]
    assert run.calls[-1][0] == offline.build_images_argv(settings, ["db"])


def test_ensure_builds_db_from_existing_rootfs(tmp_path):
    run = FakeRunner(existing=ALL - {TAGS.db})
    settings = make_settings(tmp_path)
    assert offline.ensure_offline_images(settings, run) == [TAGS.db]
    ((argv, env),) = [call for call in run.calls if call[0][:4] == ["docker", "--log-level", "error", "compose"]]
    assert argv == offline.build_images_argv(settings, ["db"])
    assert env == {**offline.build_images_env(settings), "OFFLINE_DB_KEY": f"key-of-sha256:{TAGS.rootfs}"}
    assert run.programs == ["docker --log-level"]


def test_ensure_makes_rootfs_then_builds(tmp_path, rootfs_allowed):
    run = FakeRunner()
    assert offline.ensure_offline_images(make_settings(tmp_path), run) == [TAGS.of(step) for step in offline.STEPS]
    assert run.programs == ["debootstrap --variant=minbase", "tar -C", "docker import", "docker --log-level"]
    assert not list(tmp_path.glob("lifecycle-rootfs-*")), "the work folder must be removed"


def test_force_rebuilds_all_without_inspecting(tmp_path, rootfs_allowed):
    run = FakeRunner(existing=ALL)
    assert offline.ensure_offline_images(make_settings(tmp_path), run, force=True) == [
        TAGS.of(step) for step in offline.STEPS
    ]
    assert run.programs == ["debootstrap --variant=minbase", "tar -C", "docker import", "docker --log-level"]


@pytest.mark.parametrize(
    ("which", "euid", "message"),
    [
        pytest.param(None, 0, "debootstrap is not installed; install it", id="no-debootstrap"),
        pytest.param("/usr/sbin/debootstrap", 1000, "needs root", id="not-root"),
        pytest.param(
            "/usr/sbin/debootstrap", 0,
            "no Debian archive keyring at .*/missing.gpg to check the mirror's signatures; install it "
            r"\(apt-get install debian-archive-keyring\)$",
            id="no-keyring",
        ),
    ],
)  # fmt: skip
def test_rootfs_prerequisites(monkeypatch, tmp_path, which, euid, message):
    monkeypatch.setattr(offline.shutil, "which", lambda name: which)
    monkeypatch.setattr(offline.os, "geteuid", lambda: euid)
    monkeypatch.setattr(offline, "DEBIAN_KEYRING", tmp_path / "missing.gpg")
    run = FakeRunner(existing=IMAGES - {TAGS.db})
    with pytest.raises(UserError, match=message):
        offline.ensure_offline_images(make_settings(tmp_path), run)
    assert run.programs == []


def test_prerequisites_not_checked_when_rootfs_not_needed(monkeypatch, tmp_path):
    monkeypatch.setattr(offline.shutil, "which", lambda name: None)
    run = FakeRunner(existing=IMAGES)
    assert offline.ensure_offline_images(make_settings(tmp_path), run) == []


def test_extra_cas_are_copied_into_the_rootfs(tmp_path):
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "corp.crt").write_text("PEM")
    (tmp_path / "certs" / "notes.txt").write_text("not a certificate")
    offline.copy_extra_cas(make_settings(tmp_path, EXTRA_CA_DIR="certs"), tmp_path / "rootfs")
    assert [p.name for p in (tmp_path / "rootfs/usr/local/share/ca-certificates").iterdir()] == ["corp.crt"]


def test_missing_extra_ca_dir_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match=f"^EXTRA_CA_DIR={tmp_path / 'nope'} is not a folder"):
        offline.copy_extra_cas(make_settings(tmp_path, EXTRA_CA_DIR="nope"), tmp_path / "rootfs")


def test_mounts_under_lists_deepest_first(tmp_path):
    mounts = tmp_path / "mounts"
    work = tmp_path / "work"
    mounts.write_text(
        f"proc /proc proc rw 0 0\nproc {work}/rootfs/proc proc rw 0 0\nsysfs {work}/rootfs/sys/fs x 0 0\n"
        f"tmpfs {work}other tmpfs rw 0 0\n"
    )
    assert offline.mounts_under(work, mounts) == [f"{work}/rootfs/sys/fs", f"{work}/rootfs/proc"]


def test_main_reports_user_error_on_one_line(monkeypatch, capsys):
    def broken_settings():
        raise UserError("APP_PORT='x' is not a port number; set it to a number from 1 to 65535")

    monkeypatch.setattr(offline, "load_settings", broken_settings)
    assert offline.main([]) == 1
    assert capsys.readouterr().err == "error: APP_PORT='x' is not a port number; set it to a number from 1 to 65535\n"


def test_trim_rootfs_drops_debootstrap_leftovers_only(tmp_path):
    kept = ["var/cache/apt/archives/partial/", "var/lib/apt/lists/lock", "usr/bin/apt"]
    dropped = [
        "var/cache/apt/archives/apt_3.0_amd64.deb",
        "var/cache/apt/pkgcache.bin",
        "var/lib/apt/lists/deb.debian.org_debian_dists_trixie_InRelease",
    ]
    for name in kept + dropped:
        path = tmp_path / name
        if name.endswith("/"):
            path.mkdir(parents=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("x")
    offline.trim_rootfs(tmp_path)
    assert [name for name in kept if (tmp_path / name).exists()] == kept
    assert [name for name in dropped if (tmp_path / name).exists()] == []


@pytest.mark.parametrize(
    ("existing", "pullable", "expected", "built"),
    [
        pytest.param({"registry:2"}, False, "registry:2", [], id="official-present-used"),
        pytest.param(set(), True, "registry:2", [], id="official-pullable-used"),
        pytest.param({TAGS.rootfs, TAGS.registry}, False, TAGS.registry, [], id="offline-present-used"),
        pytest.param({TAGS.rootfs}, False, TAGS.registry, ["registry"], id="offline-built-when-missing"),
    ],
)
def test_available_or_offline(tmp_path, existing, pullable, expected, built):
    run = FakeRunner(existing=existing, pullable={"registry:2"} if pullable else ())
    settings = make_settings(tmp_path)
    assert offline.available_or_offline(settings, run, "registry", "registry:2") == expected
    builds = [argv for argv, _ in run.calls if "compose" in argv[:4]]
    assert builds == ([offline.build_images_argv(settings, built)] if built else [])


# ------------------------------------------------------------------------------------------ build keys


def test_an_image_built_from_other_inputs_is_rebuilt_with_its_new_key(tmp_path):
    run = FakeRunner(existing=ALL, stale={TAGS.db})
    settings = make_settings(tmp_path)
    assert offline.ensure_offline_images(settings, run) == [TAGS.db]
    ((argv, env),) = [call for call in run.calls if "compose" in call[0][:4]]
    assert argv == offline.build_images_argv(settings, ["db"])
    assert env["OFFLINE_DB_KEY"] == f"key-of-sha256:{TAGS.rootfs}"


def test_the_offline_compose_file_builds_what_build_inputs_says():
    """BUILD_INPUTS (what each key reads) names the same context and Dockerfile as docker/offline/compose.yaml."""
    yaml = pytest.importorskip("yaml")
    services = yaml.safe_load((ROOT / offline.COMPOSE_FILE).read_text())["services"]
    assert set(services) == set(offline.BUILD_INPUTS)
    for step, inputs in offline.BUILD_INPUTS.items():
        build = services[step]["build"]
        context = (ROOT / offline.COMPOSE_FILE).parent / build["context"]
        assert context.resolve() == (ROOT / inputs.context).resolve(), step
        assert (context / build["dockerfile"]).resolve() == (ROOT / inputs.dockerfile).resolve(), step
        assert build["labels"]["io.lifecycle.build-key"] == f"${{OFFLINE_{step.upper()}_KEY:-}}", step


def test_real_keys_follow_each_images_own_files_and_the_rootfs(tmp_path, monkeypatch):
    monkeypatch.undo()  # the real build_keys
    shutil.copytree(ROOT / "docker", tmp_path / "docker")
    shutil.copytree(ROOT / "bash_files", tmp_path / "bash_files")
    shutil.copy(ROOT / ".dockerignore", tmp_path / ".dockerignore")
    settings = make_settings(tmp_path)
    before = offline.build_keys(settings, "sha256:rootfs")
    dockerfile = tmp_path / "docker" / "offline" / "mariadb.Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "\n# changed\n")
    after = offline.build_keys(settings, "sha256:rootfs")
    assert after["db"] != before["db"]
    assert {step: after[step] for step in ("python", "registry", "proxy")} == {
        step: before[step] for step in ("python", "registry", "proxy")
    }
    (tmp_path / "bash_files" / "file_env.sh").write_text("# changed\n")  # the db image copies it
    assert offline.build_keys(settings, "sha256:rootfs")["db"] != after["db"]
    assert offline.build_keys(settings, "sha256:new-rootfs")["python"] != after["python"]
