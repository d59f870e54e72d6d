"""lifecycle.release without an engine: the release record, its log, tags, refusals and registry errors."""

from __future__ import annotations

import hashlib
import json
import subprocess

import pytest

from lifecycle import release
from lifecycle.commands import docker
from lifecycle.errors import UserError
from lifecycle.release import Release, ReleaseLog
from lifecycle.runner import Result
from lifecycle.settings import load_settings
from lifecycle.stages import PROD, Stage

DIGEST = "sha256:" + "ab" * 32
ZIP = "0123456789abcdef" * 4


def make_release(stage: str = "stage", digest: str = DIGEST, created: str = "2026-11-25T18:00:00Z") -> Release:
    return Release(
        reference=f"127.0.0.1:5000/shop@{digest}",
        stage=stage,
        tag=f"127.0.0.1:5000/shop:{stage}-{ZIP[:12]}",
        zip_sha256=ZIP,
        commit="c0ffee" * 6 + "abcd",
        dirty=False,
        created=created,
        base_image="python@sha256:" + "cd" * 32,
    )


def test_release_json_round_trip_and_parts():
    record = make_release()
    assert Release.from_json(record.to_json()) == record
    assert json.loads(record.to_json())["reference"] == f"127.0.0.1:5000/shop@{DIGEST}"
    assert (record.repository, record.digest) == ("127.0.0.1:5000/shop", DIGEST)


def test_log_appends_one_line_each_and_latest_is_per_stage(tmp_path):
    log = ReleaseLog(tmp_path / ".lifecycle" / "releases.jsonl")
    assert log.all() == [] and log.latest("stage") is None
    first, prod, second = make_release(), make_release("prod"), make_release(digest="sha256:" + "ef" * 32)
    for record in (first, prod, second):
        log.append(record)
    assert len(log.path.read_text().splitlines()) == 3
    assert log.all() == [first, prod, second]
    assert log.latest("stage") == second
    assert log.latest("prod") == prod == log.latest(PROD)


def test_releases_lists_a_repeat_release_of_one_image_once_at_its_newest_time():
    a, b = DIGEST, "sha256:" + "ef" * 32
    log = [
        make_release(digest=a, created="T1"),
        make_release(digest=b, created="T2"),
        make_release("prod", digest=a, created="T3"),
        make_release(digest=a, created="T4"),
        make_release(digest=a, created="T5"),
    ]
    rows = release.listing(log)
    assert [row.split()[:3] for row in rows] == [
        ["T2", "stage", f"127.0.0.1:5000/shop@{b}"],
        ["T3", "prod", f"127.0.0.1:5000/shop@{a}"],  # another stage: a row of its own
        ["T5", "stage", f"127.0.0.1:5000/shop@{a}"],  # the stage's last row is what a deploy takes
    ]
    assert rows[2].endswith("(released 3 times, first at T1)")
    assert "released" not in rows[0] + rows[1]
    assert release.listing([]) == []


def test_log_with_a_broken_line_names_it(tmp_path):
    log = ReleaseLog(tmp_path / "releases.jsonl")
    log.append(make_release())
    with log.path.open("a") as file:
        file.write("{not json\n")
    with pytest.raises(UserError, match=r"releases.jsonl line 2 is not a release record"):
        log.all()


@pytest.mark.parametrize(
    ("environ", "stage", "expected"),
    [
        pytest.param(
            {}, "stage", ("127.0.0.1:5000/project:stage-0123456789ab", "127.0.0.1:5000/project:stage"), id="local"
        ),
        pytest.param(
            {"REGISTRY": "registry.example.com/team", "PROJ_NAME": "shop"},
            "prod",
            ("registry.example.com/team/shop:prod-0123456789ab", "registry.example.com/team/shop:prod"),
            id="remote",
        ),
    ],
)
def test_release_tags(tmp_path, environ, stage, expected):
    assert release.release_tags(load_settings(root=tmp_path, environ=environ), Stage.parse(stage), ZIP) == expected


@pytest.mark.parametrize("stage", ["dev", "test-qa"])
def test_only_stage_and_prod_are_released(stage):
    with pytest.raises(UserError, match=r"only stage and prod are released.*--stage stage or prod"):
        release.check_release_stage(Stage.parse(stage))


@pytest.mark.parametrize(
    ("commit", "changed", "expected"),
    [
        pytest.param("abc", [], None, id="clean-commit-released"),
        pytest.param(
            "abc",
            ["django_site/views.py"],
            "uncommitted changes in what the release is built from: django_site/views.py;",
            id="dirty-refused-naming-the-file",
        ),
        pytest.param(
            "abc",
            [f"docker/f{n}" for n in range(7)],
            "docker/f0, docker/f1, docker/f2, docker/f3, docker/f4 and 2 more;",
            id="many-named-then-counted",
        ),
        pytest.param("abc", None, "git cannot tell", id="unknown-state-refused"),
        pytest.param(None, None, "no git commit", id="no-git-refused"),
    ],
)
def test_dirty_refusal(commit, changed, expected):
    refusal = release.dirty_refusal(commit, changed)
    assert (refusal is None) if expected is None else (expected in refusal and "--allow-dirty" in refusal)


@pytest.mark.parametrize(
    ("porcelain", "paths"),
    [
        pytest.param("", [], id="clean"),
        pytest.param(
            " M django_site/views.py\n?? docker/new.conf\n",
            ["django_site/views.py", "docker/new.conf"],
            id="modified-and-untracked",
        ),
        pytest.param("R  bash_files/a.sh -> bash_files/b.sh\n", ["bash_files/b.sh"], id="renamed-new-path"),
        pytest.param('?? "django_site/a b.py"\n', ["django_site/a b.py"], id="quoted"),
    ],
)
def test_changed_paths(porcelain, paths):
    assert release.changed_paths(porcelain) == paths


def test_only_files_the_release_is_built_from_make_it_dirty(tmp_path):
    """An untracked note at the root, a test or a doc never reaches the image and is only noted; a new file under
    django_site/ (the code zip) or docker/ (the build) does, untracked or ignored-by-nothing, and is named. Paths
    are the checkout's own even when it is a folder of a larger repository."""

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    root = tmp_path / "site"
    for path in ("manage.py", "django_site/views.py", "docker/Dockerfile", "README.md"):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text("x\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "initial")
    inputs = release.release_inputs(".", ["manage.py", "django_site"], ["requirements/runtime.txt"])
    (tmp_path / "elsewhere.txt").write_text("outside the checkout\n")
    (root / "my-notes.txt").write_text("mine\n")
    (root / "tests").mkdir()
    (root / "tests" / "test_new.py").write_text("x\n")
    (root / "README.md").write_text("changed\n")
    assert release.split_changes(release.uncommitted(root), inputs) == (
        [],
        ["README.md", "my-notes.txt", "tests/test_new.py"],
    )
    (root / "django_site" / "new").mkdir()
    (root / "django_site" / "new" / "module.py").write_text("x\n")
    (root / "docker" / "Dockerfile").write_text("changed\n")
    inside, _ = release.split_changes(release.uncommitted(root), inputs)
    assert inside == ["django_site/new/module.py", "docker/Dockerfile"]
    assert release.uncommitted(tmp_path.parent / "not-a-checkout") is None


@pytest.mark.parametrize(
    ("project_dir", "code", "locks", "first"),
    [
        (".", ["manage.py", "django_site"], ["requirements/runtime.txt"], ("manage.py", "django_site")),
        ("src", ["manage.py", "mysite"], ["requirements.txt"], ("src/manage.py", "src/mysite", "requirements.txt")),
    ],
    ids=["suite", "adopted-in-src"],
)
def test_release_inputs_are_the_zips_paths_the_locks_and_the_build(project_dir, code, locks, first):
    inputs = release.release_inputs(project_dir, code, locks)
    assert inputs[: len(first)] == first and set(release.BUILD_INPUTS) <= set(inputs)
    assert len(inputs) == len(set(inputs))


@pytest.mark.parametrize(
    ("changed", "inside", "others"),
    [
        pytest.param([], [], [], id="clean"),
        pytest.param(["django_site/a.py", "notes.txt"], ["django_site/a.py"], ["notes.txt"], id="split"),
        pytest.param(["django_site_old/a.py", "manage.py"], ["manage.py"], ["django_site_old/a.py"], id="prefix"),
        pytest.param(["pyproject.toml", "docs/x.md"], ["pyproject.toml"], ["docs/x.md"], id="project-table"),
    ],
)
def test_split_changes(changed, inside, others):
    inputs = release.release_inputs(".", ["manage.py", "django_site"], [])
    assert release.split_changes(changed, inputs) == (inside, others)


@pytest.mark.parametrize(
    ("others", "expected"),
    [
        pytest.param([], None, id="nothing"),
        pytest.param(
            ["notes.txt"], "note: not released, outside what the image is built from (uncommitted): notes.txt", id="one"
        ),
        pytest.param([f"n{i}" for i in range(8)], "n0, n1, n2, n3, n4 and 3 more", id="many"),
    ],
)
def test_outside_note_names_the_first_few_on_one_line(others, expected):
    note = release.outside_note(others)
    assert note is None if expected is None else (note.endswith(expected) and "\n" not in note)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        pytest.param("127.0.0.1:5401", ("127.0.0.1", 5401), id="local-port"),
        pytest.param("registry.example.com/team", ("registry.example.com", 443), id="https-default-port"),
        pytest.param("registry.example.com:8443/a/b", ("registry.example.com", 8443), id="port-and-path"),
    ],
)
def test_registry_host_port(address, expected):
    assert release.registry_host_port(address) == expected


@pytest.mark.parametrize(
    ("environ", "stderr", "expected"),
    [
        pytest.param(
            {}, "unauthorized: authentication required",
            "requires authentication for IMG; run: docker login 127.0.0.1:5000", id="auth-required",
        ),
        pytest.param(
            {"REGISTRY": "registry.example.com/team"}, "no basic auth credentials",
            "run: docker login registry.example.com", id="no-credentials-names-the-host",
        ),
        pytest.param({}, "name invalid: invalid repository name", "rejects the name IMG", id="name-invalid"),
        pytest.param({}, "name unknown: repository x does not exist", "rejects the name IMG", id="name-unknown"),
        pytest.param(
            {}, "denied: requested access to the resource is denied",
            "denies pushing IMG; docker login 127.0.0.1:5000 as a user", id="denied",
        ),
        pytest.param(
            {}, 'Get "http://127.0.0.1:5000/v2/": dial tcp 127.0.0.1:5000: connect: connection refused',
            "registry 127.0.0.1:5000 is not reachable; start it: invoke registry.up", id="refused-local",
        ),
        pytest.param(
            {"REGISTRY": "registry.example.com"}, "dial tcp: lookup registry.example.com: no such host",
            "registry registry.example.com is not reachable; check REGISTRY and the network", id="unknown-host",
        ),
        pytest.param({}, "\nsomething odd happened\n", "pushing IMG failed: something odd happened", id="other"),
    ],
)  # fmt: skip
def test_push_error_is_one_line_with_the_fix(tmp_path, environ, stderr, expected):
    message = release.push_error(load_settings(root=tmp_path, environ=environ), "IMG", stderr)
    assert expected in message and "\n" not in message


def test_pushed_digest_and_layers_from_push_output():
    output = (
        "The push refers to repository [127.0.0.1:5000/shop]\n"
        "5f70bf18a086: Layer already exists\n"
        "a1b2c3d4e5f6: Pushed\n"
        "0a1b2c3d4e5f: Mounted from other/repo\n"
        f"stage-0123456789ab: digest: {DIGEST} size: 2200\n"
    )
    assert release.pushed_digest(output) == DIGEST
    assert release.pushed_layers(output) == (1, 2)


def test_no_digest_in_push_output_is_a_user_error():
    with pytest.raises(UserError, match="printed no digest"):
        release.pushed_digest("Pushed\n")


# ------------------------------------------------------------------------------ pushing exactly the built image


def test_push_and_manifest_argv():
    assert docker.tag_argv("sha256:" + "1" * 64, "r:5000/shop:prod") == ["docker", "tag", "sha256:" + "1" * 64,
                                                                      "r:5000/shop:prod"]  # fmt: skip
    assert docker.push_argv("r:5000/shop:prod") == ["docker", "push", "r:5000/shop:prod"]
    assert docker.manifest_inspect_argv(f"r:5000/shop@{DIGEST}") == ["docker", "manifest", "inspect",
                                                                 f"r:5000/shop@{DIGEST}"]  # fmt: skip
    assert docker.manifest_inspect_argv("127.0.0.1:5000/shop:prod", plain_http=True) == [
        "docker", "manifest", "inspect", "--insecure", "127.0.0.1:5000/shop:prod"]  # fmt: skip


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        pytest.param("127.0.0.1:5000", True, id="local-registry"),
        pytest.param("127.0.0.1:5050/team", True, id="cluster-registry"),
        pytest.param("localhost:5000", True, id="localhost"),
        pytest.param("registry.example.com/team", False, id="remote"),
        pytest.param("127.example.com", False, id="a-name-that-starts-with-127"),
    ],
)
def test_only_a_loopback_registry_is_asked_over_plain_http(address, expected):
    assert release.on_loopback(address) is expected


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        pytest.param('{"schemaVersion": 2, "config": {"digest": "sha256:aa", "size": 7}}', "sha256:aa", id="image"),
        pytest.param('{"schemaVersion": 2, "manifests": []}', "", id="an-index-names-no-config"),
        pytest.param("not json", "", id="garbage"),
        pytest.param("", "", id="nothing"),
    ],
)
def test_config_digest(answer, expected):
    assert release.config_digest(answer) == expected


class EngineAndRegistry:
    """docker tag / push / manifest inspect as the engine and a registry answer them: local names point at image
    ids, a push sends the image the name points at *then*. `move_before_push` maps a name to the image another
    checkout tags with it just before this run's push of that name (each once)."""

    def __init__(self, move_before_push: dict[str, list[str]] | None = None) -> None:
        self.names: dict[str, str] = {}
        self.manifests: dict[str, str] = {}  # digest -> image id of its config
        self.move_before_push = move_before_push or {}
        self.calls: list[list[str]] = []

    def __call__(self, argv, *, env=None, warn=False, capture=False, interactive=False, timeout=None) -> Result:
        self.calls.append(list(argv))
        verb = argv[1:3] if argv[1] == "manifest" else argv[1:2]
        if verb == ["tag"]:
            self.names[argv[3]] = self.names.get(argv[2], argv[2])
            return Result(0, "", "")
        if verb == ["push"]:
            name = argv[2]
            if self.move_before_push.get(name):
                self.names[name] = self.move_before_push[name].pop(0)
            image = self.names[name]
            digest = "sha256:" + hashlib.sha256(image.encode()).hexdigest()
            self.manifests[digest] = image
            return Result(0, f"abc: Pushed\n{name.rsplit(':', 1)[1]}: digest: {digest} size: 1\n", "")
        if verb == ["manifest", "inspect"]:
            image = self.manifests.get(argv[-1].split("@", 1)[1])
            return Result(0, json.dumps({"config": {"digest": image}}), "") if image else Result(1, "", "not found")
        raise AssertionError(f"unexpected command {argv}")


OURS, THEIRS = "sha256:" + "0" * 64, "sha256:" + "f" * 64
TARGET = "127.0.0.1:5000/shop:prod-0123456789ab"


def test_push_exactly_pushes_the_image_id_and_returns_its_digest(tmp_path):
    engine = EngineAndRegistry()
    digest = release.push_exactly(engine, load_settings(root=tmp_path, environ={}), OURS, TARGET)
    assert engine.manifests[digest] == OURS
    assert engine.calls[0] == ["docker", "tag", OURS, TARGET]  # by id, never through a name
    assert engine.calls[2] == ["docker", "manifest", "inspect", "--insecure", f"127.0.0.1:5000/shop@{digest}"]


def test_a_name_moved_by_another_checkout_between_tag_and_push_is_pushed_again(tmp_path, capsys):
    """What issue 24 saw: both checkouts tag one shared name; the other's tag lands between this tag and this push."""
    engine = EngineAndRegistry({TARGET: [THEIRS]})
    digest = release.push_exactly(engine, load_settings(root=tmp_path, environ={}), OURS, TARGET)
    assert engine.manifests[digest] == OURS
    assert [argv[1] for argv in engine.calls] == ["tag", "push", "manifest", "tag", "push", "manifest"]
    assert "another checkout moved it" in capsys.readouterr().err


def test_a_name_that_keeps_moving_ends_in_one_line(tmp_path):
    engine = EngineAndRegistry({TARGET: [THEIRS] * release.PUSH_ATTEMPTS})
    with pytest.raises(UserError, match=r"another checkout kept moving .*prod-0123456789ab.*release again"):
        release.push_exactly(engine, load_settings(root=tmp_path, environ={}), OURS, TARGET)
