"""lifecycle.buildkey: the Dockerfile's context inputs are found, and every input changes the key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lifecycle import projectlock
from lifecycle.buildkey import CONTEXT_FILES, DOCKERFILE, build_key, context_sources, instructions, stage_closure
from lifecycle.settings import ROOT, load_settings

ENV = {"ZIP_DIR": "updated_zip", "ZIP_NAME": "Project_playground.zip", "SUITE_CODE": "."}


@pytest.mark.parametrize(
    ("dockerfile", "expected"),
    [
        ("COPY a b /dest/\n", ["a", "b"]),
        ('COPY ["a b", "c", "/dest"]\n', ["a b", "c"]),
        ("COPY --chmod=0755 x.sh y.sh /usr/local/bin/\n", ["x.sh", "y.sh"]),
        ("COPY --from=dev /opt/venv /opt/venv\n", []),
        ("ADD folder/ /dest\n", ["folder"]),
        ("COPY ${ZIP_DIR}/${ZIP_NAME} /tmp/code.zip\n", ["updated_zip/Project_playground.zip"]),
        ("COPY $ZIP_DIR/x /tmp/x\n", ["updated_zip/x"]),
        ("RUN cp a b\nCOPY \\\n    one \\\n    two /dest\n", ["one", "two"]),
        ("# COPY commented /out\nCOPY kept /dest\n", ["kept"]),
        (
            "RUN --mount=type=tmpfs,target=/mnt \\\n    --mount=type=bind,source=docker/x.sh,target=/mnt/x.sh sh x\n",
            ["docker/x.sh"],
        ),
        ("RUN --mount=type=bind,from=code,source=/app,target=/mnt/app --mount=type=cache,target=/root/.cache cp\n", []),
        ("RUN --mount=src=$ZIP_DIR/,target=/mnt/z --mount=type=bind,target=/mnt/all ls\n", ["updated_zip", "."]),
    ],
    ids=[
        "plain",
        "json",
        "chmod",
        "from-stage",
        "add-folder",
        "braced-args",
        "bare-arg",
        "continued",
        "comment",
        "run-bind-mount",
        "run-mount-from-stage-or-cache",
        "run-mount-default-bind-and-whole-context",
    ],
)
def test_context_sources(dockerfile, expected):
    assert context_sources(dockerfile, ENV) == sorted(expected)


def test_instructions_join_continuations_and_skip_comments():
    text = "FROM x AS y\n# note\nRUN a \\\n    && b\n\nENV A=1\n"
    assert instructions(text) == ["FROM x AS y", "RUN a && b", "ENV A=1"]


def test_the_projects_dockerfile_copies_only_what_the_key_reads():
    """Every COPY source of the real Dockerfile exists in the checkout (after invoke zip) or is the zip."""
    sources = context_sources((ROOT / DOCKERFILE).read_text(), ENV)
    assert "updated_zip/Project_playground.zip" in sources
    assert {".lifecycle/build/locks/runtime.txt", ".lifecycle/build/tests", "docker/certs"} <= set(sources)
    assert {"docker/static_inputs.sh", "docker/check_libs.py"} <= set(sources)
    assert {"docker/normalise.sh", "docker/healthcheck.py", "bash_files/entrypoint.sh"} <= set(sources)  # mounted
    assert {"lifecycle_site", "lifecycle/unpack_zip.py"} <= set(sources)  # the suite's code, at SUITE_CODE
    adopted = context_sources((ROOT / DOCKERFILE).read_text(), {**ENV, "SUITE_CODE": ".lifecycle/build/suite"})
    assert {".lifecycle/build/suite/lifecycle_site", ".lifecycle/build/suite/lifecycle/unpack_zip.py"} <= set(adopted)
    staged = (str(projectlock.BUILD_DIR), "updated_zip/")  # written by invoke build (stage_build_inputs, zip)
    missing = [s for s in sources if not (ROOT / s).exists() and not s.startswith(staged)]
    assert missing == []


def stage(root: Path) -> None:
    """What `invoke build` stages before the key (Suite.stage_build_inputs): django_site's locks are copies."""
    settings = load_settings(root=root, environ={})

    def no_compile(argv, **kwargs):
        raise AssertionError(f"django_site's locks are copied, never compiled: {argv}")

    projectlock.stage_tests(root, root, settings["TESTS"].split())
    projectlock.ensure_locks(no_compile, root, settings.values)


@pytest.fixture
def checkout(tmp_path) -> Path:
    """A copy of the files the key reads: the Dockerfile's sources, compose.yaml, .dockerignore, and the sources of
    what invoke build stages (the requirements, the site's tests, the [tool.lifecycle] table naming them)."""
    staged_from = ["pyproject.toml", "requirements", "tests/site"]
    for relative in [*CONTEXT_FILES, *staged_from, *context_sources((ROOT / DOCKERFILE).read_text(), ENV)]:
        source, target = ROOT / relative, tmp_path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.is_file():
            shutil.copy2(source, target)
    zip_file = tmp_path / "updated_zip" / "Project_playground.zip"
    zip_file.parent.mkdir(parents=True, exist_ok=True)
    zip_file.write_bytes(b"zip v1")
    stage(tmp_path)
    return tmp_path


def key(root: Path, target: str = "prod", env=None, base: str = "sha256:base") -> str:
    return build_key(root, target, {**ENV, **(env or {})}, base)


def append(path: Path, data: bytes) -> None:
    path.write_bytes(path.read_bytes() + data)


CHANGES = {
    "code zip": lambda root: (root / "updated_zip/Project_playground.zip").write_bytes(b"zip v2"),
    "requirements": lambda root: append(root / "requirements/runtime.txt", b"# new pin\n") or stage(root),
    "Dockerfile": lambda root: append(root / DOCKERFILE, b"LABEL x=y\n"),
    "compose file": lambda root: append(root / "docker/compose.yaml", b"# changed\n"),
    "entrypoint": lambda root: append(root / "bash_files/entrypoint.sh", b"# changed\n"),
    "a CA certificate": lambda root: (root / "docker/certs/new.crt").write_bytes(b"cert"),
    "a site test": lambda root: append(root / "tests/site/conftest.py", b"# changed\n") or stage(root),
    "a mode": lambda root: (root / "docker/healthcheck.py").chmod(0o700),
    "the test requirements": lambda root: append(root / "requirements/test.txt", b"# new pin\n") or stage(root),
    "the SBOM tool": lambda root: append(root / "docker/sbom.py", b"# changed\n"),
}
# What each change must rebuild: every target it is an input of (through FROM and --from), and no other.
AFFECTS = {
    "code zip": {"prod", "test-qa"},
    "requirements": {"prod", "test-qa", "sbom-runtime"},
    "Dockerfile": {"prod", "test-qa", "sbom-runtime"},
    "compose file": {"prod", "test-qa", "sbom-runtime"},
    "entrypoint": {"prod", "test-qa", "sbom-runtime"},
    "a CA certificate": {"prod", "test-qa", "sbom-runtime"},
    "a site test": {"test-qa"},
    "a mode": {"prod", "test-qa", "sbom-runtime"},
    "the test requirements": {"test-qa"},
    "the SBOM tool": {"prod", "sbom-runtime"},  # prod ships its SBOM
}
TARGETS = ("prod", "test-qa", "sbom-runtime")


@pytest.mark.parametrize("change", CHANGES, ids=CHANGES.keys())
def test_each_input_changes_the_keys_of_the_targets_built_from_it_and_no_other(checkout, change):
    before = {target: key(checkout, target) for target in TARGETS}
    CHANGES[change](checkout)
    changed = {target for target in TARGETS if key(checkout, target) != before[target]}
    assert changed == AFFECTS[change]


@pytest.mark.parametrize(
    ("dockerfile", "target", "stages"),
    [
        ("FROM a AS one\nFROM one AS two\nFROM b AS three\n", "two", ["one", "two"]),
        ("FROM a AS one\nFROM b AS two\nCOPY --from=one /x /x\n", "two", ["one", "two"]),
        ("FROM a AS one\nFROM b AS two\nRUN --mount=type=bind,from=one,target=/m true\n", "two", ["one", "two"]),
        ("FROM a AS one\nFROM b AS two\nCOPY --from=alpine /x /x\n", "two", ["two"]),
        ("FROM a\nCOPY x /x\nFROM b\nCOPY y /y\n", "unnamed", ["0", "1"]),
    ],
    ids=["from", "copy-from", "mount-from", "an-image-not-a-stage", "unknown-target-takes-all"],
)
def test_stage_closure_follows_from_and_copy_from(dockerfile, target, stages):
    closure = stage_closure(dockerfile, target)
    froms = [line for line in closure if line.startswith("FROM")]
    assert len(froms) == len(stages)
    if target != "unnamed":
        assert [line.split()[-1] for line in froms] == stages


def test_global_args_count_for_every_target():
    dockerfile = "ARG BASE=x\nFROM ${BASE} AS one\nARG ONLY_ONE\nFROM b AS two\n"
    assert stage_closure(dockerfile, "two") == ["ARG BASE=x", "FROM b AS two"]


@pytest.mark.parametrize(
    "other",
    [{"target": "stage"}, {"env": {"TZ": "Europe/Paris"}}, {"env": {"VCS_REF": "abc"}}, {"base": "sha256:new"}],
    ids=["target", "build-arg", "label-arg", "base-image"],
)
def test_target_args_and_base_image_change_the_key(checkout, other):
    assert key(checkout, **other) != key(checkout)


def test_the_key_is_stable_and_ignores_bytecode_caches(checkout):
    before = key(checkout)
    cache = checkout / ".lifecycle/build/tests/tests/site/__pycache__"
    cache.mkdir(exist_ok=True)
    (cache / "x.cpython-313.pyc").write_bytes(b"bytecode")
    assert key(checkout) == before
    assert key(checkout, env={"UNRELATED": "1"}) == before  # only ARGs the Dockerfile declares count
