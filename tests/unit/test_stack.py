"""The local lifecycle's decisions: CA certificates, volume deletion, the secret key, the zip, git labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecycle.buildinputs import git_metadata, public_url, sync_certs
from lifecycle.container_env import container_env_items
from lifecycle.errors import UserError
from lifecycle.health import container_verdict, db_verdict
from lifecycle.local import confirm_volume_deletion, ensure_secret_key
from lifecycle.runner import Result
from lifecycle.settings import load_settings
from lifecycle.stages import PROD, Stage
from tests.helpers.recording import RecordingRunner

# ------------------------------------------------------------------------------------------------ sync_certs


@pytest.fixture
def source(tmp_path) -> Path:
    folder = tmp_path / "ca"
    folder.mkdir()
    (folder / "proxy.crt").write_bytes(b"PROXY")
    (folder / "corp.crt").write_bytes(b"CORP")
    (folder / "notes.txt").write_text("not a certificate")
    return folder


@pytest.fixture
def target(tmp_path) -> Path:
    return tmp_path / "docker" / "certs"


def staged(target: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(target.iterdir())}


def certificates(folder: str, root: Path = Path("/checkout")) -> list[Path]:
    """What Local.build hands sync_certs: the settings' EXTRA_CA_DIR, resolved and checked."""
    return load_settings(root=root, environ={"EXTRA_CA_DIR": folder}).extra_ca_certs()


def test_sync_certs_mirrors_the_crt_files(source, target):
    assert sync_certs(certificates(str(source)), target) == ["corp.crt", "proxy.crt"]
    assert staged(target) == {"corp.crt": b"CORP", "proxy.crt": b"PROXY"}


def test_sync_certs_removes_stale_certs_and_updates_changed_ones(source, target):
    target.mkdir(parents=True)
    (target / "old.crt").write_bytes(b"OLD")
    (target / "proxy.crt").write_bytes(b"OUTDATED")
    (target / "README.md").write_text("kept")
    sync_certs(certificates(str(source)), target)
    assert staged(target) == {"README.md": b"kept", "corp.crt": b"CORP", "proxy.crt": b"PROXY"}


def test_sync_certs_leaves_unchanged_files_alone(source, target):
    sync_certs(certificates(str(source)), target)
    before = (target / "corp.crt").stat().st_mtime_ns
    sync_certs(certificates(str(source)), target)
    assert (target / "corp.crt").stat().st_mtime_ns == before


def test_sync_certs_expands_the_home_folder(source, target, monkeypatch):
    monkeypatch.setenv("HOME", str(source.parent))
    assert sync_certs(certificates("~/ca"), target) == ["corp.crt", "proxy.crt"]


def test_a_relative_extra_ca_dir_is_taken_from_the_checkout_not_the_current_folder(source, target, monkeypatch):
    elsewhere = source.parent / "elsewhere"  # no "ca" folder here
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert sync_certs(certificates("ca", root=source.parent), target) == ["corp.crt", "proxy.crt"]


def test_sync_certs_with_an_empty_setting_removes_every_staged_cert(target):
    target.mkdir(parents=True)
    (target / "old.crt").write_bytes(b"OLD")
    (target / "README.md").write_text("kept")
    assert sync_certs(certificates(""), target) == []
    assert staged(target) == {"README.md": b"kept"}


def test_sync_certs_with_an_empty_setting_makes_the_folder(target):
    assert sync_certs(certificates(""), target) == []
    assert target.is_dir()


NOT_A_FOLDER = "EXTRA_CA_DIR={} is not a folder; point it at a folder of *.crt files or unset it"
NO_CERTS = "EXTRA_CA_DIR={} holds no *.crt files; add the proxy's CA certificates or unset it"


def bad_source(base: Path, kind: str) -> Path:
    path = base / kind
    if kind == "file.crt":
        path.write_text("a file, not a folder")
    elif kind == "empty":
        path.mkdir()
        (path / "README").write_text("no certificates here")
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        pytest.param("missing", NOT_A_FOLDER, id="a missing folder is refused"),
        pytest.param("file.crt", NOT_A_FOLDER, id="a file instead of a folder is refused"),
        pytest.param("empty", NO_CERTS, id="a folder without crt files is refused"),
    ],
)
def test_sync_certs_refuses_a_bad_folder_and_changes_nothing(tmp_path, target, kind, message):
    bad = bad_source(tmp_path, kind)
    target.mkdir(parents=True)
    (target / "old.crt").write_bytes(b"OLD")
    with pytest.raises(UserError) as error:
        sync_certs(certificates(str(bad)), target)
    assert str(error.value) == message.format(bad)
    assert staged(target) == {"old.crt": b"OLD"}


def test_sync_certs_refuses_a_missing_folder_before_making_the_target(tmp_path, target):
    with pytest.raises(UserError):
        sync_certs(certificates(str(tmp_path / "missing")), target)
    assert not target.exists()


# -------------------------------------------------------------------------------------- volume deletion


class Asker:
    def __init__(self, answer: str):
        self.answer = answer
        self.prompts: list[str] = []

    def __call__(self, prompt: str) -> str:
        self.prompts.append(prompt)
        return self.answer


def test_yes_confirms_without_asking():
    ask = Asker("wrong")
    confirm_volume_deletion("shop-1a2b", True, ask)
    assert ask.prompts == []


def test_no_terminal_and_no_yes_is_refused():
    with pytest.raises(UserError) as error:
        confirm_volume_deletion("shop-1a2b", False, None)
    assert str(error.value) == (
        "--volumes deletes the database of shop-1a2b; add --yes to confirm (nothing was changed)"
    )


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param("", id="an empty answer is refused"),
        pytest.param("y", id="a plain y is refused"),
        pytest.param("shop", id="a partial name is refused"),
        pytest.param("SHOP-1A2B", id="the name in another case is refused"),
    ],
)
def test_a_wrong_typed_name_is_refused(answer):
    ask = Asker(answer)
    with pytest.raises(UserError) as error:
        confirm_volume_deletion("shop-1a2b", False, ask)
    assert str(error.value) == "not confirmed; nothing was changed"
    assert len(ask.prompts) == 1 and "shop-1a2b" in ask.prompts[0]


@pytest.mark.parametrize(
    "answer",
    [pytest.param("shop-1a2b", id="the exact name confirms"), pytest.param("  shop-1a2b\n", id="whitespace is ok")],
)
def test_the_right_typed_name_confirms(answer):
    confirm_volume_deletion("shop-1a2b", False, Asker(answer))


# -------------------------------------------------------------------------------------------- secret key


KEYS = {"DJANGO_SECRET_KEY": "k", "DB_PASSWORD": "p", "DB_ROOT_PASSWORD": "r"}
FILL = "(scripts/bootstrap fills in every missing secret of an existing .env)"
PUBLIC = "set a secret of your own in .env (delete the line and run scripts/bootstrap to generate one)"


@pytest.mark.parametrize(
    ("stage", "environ", "refusal"),
    [
        pytest.param("dev", {}, None, id="dev needs no secret of the user's"),
        pytest.param("test-qa", {}, None, id="test-qa needs no secret of the user's"),
        pytest.param("stage", {},
                     f"stage needs DJANGO_SECRET_KEY, DB_PASSWORD, DB_ROOT_PASSWORD; set them in .env {FILL}",
                     id="stage without secrets is refused"),
        pytest.param("prod", {**KEYS, "DJANGO_SECRET_KEY": ""}, f"prod needs DJANGO_SECRET_KEY; set it in .env {FILL}",
                     id="prod with an empty key is refused"),
        pytest.param("prod", {"DJANGO_SECRET_KEY": "k"}, f"prod needs DB_PASSWORD, DB_ROOT_PASSWORD; set them in .env "
                     f"{FILL}", id="a hand-written .env with only the key: the database passwords are named"),
        pytest.param("prod", {**KEYS, "DB_ROOT_PASSWORD": "root-dev-password"},
                     f"prod refuses the published default value of DB_ROOT_PASSWORD; {PUBLIC}",
                     id="the old compose fallback root password is refused"),
        pytest.param("stage", {**KEYS, "DB_PASSWORD": "app-dev-password",
                               "DJANGO_SECRET_KEY": "django-insecure-dev-only-key-never-use-outside-debug"},
                     f"stage refuses the published default value of DJANGO_SECRET_KEY, DB_PASSWORD; {PUBLIC}",
                     id="the debug key and the old app password are refused"),
        pytest.param("prod", {**KEYS, "DB_PASSWORD": "test-only-not-secret"},
                     f"prod refuses the published default value of DB_PASSWORD; {PUBLIC}", id="the qa key is refused"),
        pytest.param("stage", KEYS, None, id="stage with every secret passes"),
        pytest.param("prod", KEYS, None, id="prod with every secret passes"),
    ],
)  # fmt: skip
def test_ensure_secret_key(make_settings, stage, environ, refusal):
    settings = make_settings(**environ)
    if refusal is None:
        ensure_secret_key(settings, Stage.parse(stage))
        return
    with pytest.raises(UserError) as error:
        ensure_secret_key(settings, Stage.parse(stage))
    assert str(error.value) == refusal


def test_the_secrets_may_come_from_env_file(tmp_path, make_settings):
    (tmp_path / ".env").write_text("DJANGO_SECRET_KEY=from-file\nDB_PASSWORD=a\nDB_ROOT_PASSWORD=b\n")
    ensure_secret_key(make_settings(), PROD)


# ---------------------------------------------------------------------------------------------- git labels


def git(root: Path, *query: str) -> tuple[str, ...]:
    return ("git", "-C", str(root), *query)


def test_git_metadata_reads_each_label_from_git(tmp_path):
    run = RecordingRunner({
        git(tmp_path, "log", "-1", "--format=%H %cI"): Result(0, "abc123 2026-01-02T03:04:05+00:00\n"),
        git(tmp_path, "describe", "--tags", "--always", "--dirty"): Result(0, "v1.2.0-dirty\n"),
        git(tmp_path, "config", "--get", "remote.origin.url"): Result(0, "https://example.org/shop.git\n"),
    })  # fmt: skip
    assert git_metadata(run, tmp_path) == {
        "VCS_REF": "abc123",
        "CREATED": "2026-01-02T03:04:05+00:00",
        "VERSION": "v1.2.0-dirty",
        "SOURCE_URL": "https://example.org/shop.git",
    }
    assert all(call[:3] == ["git", "-C", str(tmp_path)] for call in run.calls)


TOKEN = "glcbt-64_s3cr3tT0k3n"


@pytest.mark.parametrize(
    ("url", "public"),
    [
        pytest.param(f"https://gitlab-ci-token:{TOKEN}@gitlab.example.com/group/shop.git",
                     "https://gitlab.example.com/group/shop.git", id="a CI clone URL loses its token"),
        pytest.param(f"https://{TOKEN}@github.com/org/shop.git", "https://github.com/org/shop.git",
                     id="a token as the user name"),
        pytest.param(f"https://x-access-token:{TOKEN}@github.com:8443/org/shop", "https://github.com:8443/org/shop",
                     id="the port stays"),
        pytest.param(f"https://user:p%40ss@w@host/a?private_token={TOKEN}#frag", "https://host/a",
                     id="an @ in the password, a token in the query"),
        pytest.param(f"ssh://git:{TOKEN}@host:2222/org/shop.git", "ssh://host:2222/org/shop.git", id="ssh URL"),
        pytest.param("https://github.com/org/shop.git", "https://github.com/org/shop.git", id="a clean URL stays"),
        pytest.param("https://[::1]:8080/shop.git", "https://[::1]:8080/shop.git", id="an IPv6 host stays"),
        pytest.param("git@github.com:org/shop.git", "git@github.com:org/shop.git", id="scp-like stays as it is"),
        pytest.param("github.com:org/shop.git", "github.com:org/shop.git", id="scp-like without a user"),
        pytest.param(f"user:{TOKEN}@host:org/shop.git", "unknown", id="scp-like with a password: unknown"),
        pytest.param("/srv/git/shop.git", "/srv/git/shop.git", id="a local path stays"),
        pytest.param("../shop@v2/.git", "../shop@v2/.git", id="a relative path with an @ stays"),
        pytest.param("file:///srv/git/shop.git", "file:///srv/git/shop.git", id="a file URL stays"),
        pytest.param(f"https://user:{TOKEN}@", "unknown", id="nothing but credentials: unknown"),
        pytest.param("unknown", "unknown", id="no remote"),
    ],
)  # fmt: skip
def test_public_url_strips_user_information(url, public):
    assert public_url(url) == public
    assert TOKEN not in public_url(url)


def test_a_token_in_the_remote_never_reaches_the_source_label(tmp_path):
    run = RecordingRunner(
        {git(tmp_path, "config", "--get", "remote.origin.url"): Result(0, f"https://ci:{TOKEN}@host/shop.git\n")}
    )
    assert git_metadata(run, tmp_path)["SOURCE_URL"] == "https://host/shop.git"


def test_git_metadata_is_unknown_when_git_fails(tmp_path):
    run = RecordingRunner(default=Result(128, "fatal: not a git repository\n"))
    assert git_metadata(run, tmp_path) == dict.fromkeys(("VCS_REF", "CREATED", "VERSION", "SOURCE_URL"), "unknown")


def test_git_metadata_is_unknown_for_an_empty_answer(tmp_path):
    run = RecordingRunner(
        {git(tmp_path, "config", "--get", "remote.origin.url"): Result(0, "\n")}, default=Result(0, "x\n")
    )
    assert git_metadata(run, tmp_path) == {
        "VCS_REF": "x",
        "CREATED": "unknown",
        "VERSION": "x",
        "SOURCE_URL": "unknown",
    }


# ------------------------------------------------------------------------------------- db health, --env


@pytest.mark.parametrize(
    ("state", "verdict"),
    [
        pytest.param('{"Status": "running", "Health": {"Status": "healthy"}}', "healthy", id="healthy"),
        pytest.param(
            '{"Status": "running", "Health": {"Status": "starting", "Log": [{"Output": "ERROR 1045 (28000): '
            "Access denied for user 'app'\"}]}}",
            "denied",
            id="the last check was refused",
        ),
        pytest.param(
            '{"Status": "running", "Health": {"Status": "starting", "Log": [{"Output": "Access denied"}, '
            '{"Output": "ERROR 2002: Can\'t connect"}]}}',
            "waiting",
            id="only the last check counts",
        ),
        pytest.param(
            '{"Status": "running", "Health": {"Status": "starting", "Log": []}}', "waiting", id="no check yet"
        ),
        pytest.param('{"Status": "exited", "Health": {"Status": "unhealthy"}}', "exited", id="exited"),
        pytest.param("", "waiting", id="no answer"),
        pytest.param("not json", "waiting", id="garbage"),
    ],
)
def test_db_verdict(state, verdict):
    assert db_verdict(state) == verdict


@pytest.mark.parametrize(
    ("state", "verdict"),
    [
        pytest.param('{"Status": "running", "Health": {"Status": "healthy"}}', "healthy", id="healthy"),
        pytest.param('{"Status": "running", "Health": {"Status": "unhealthy"}}', "unhealthy", id="unhealthy"),
        pytest.param('{"Status": "running", "Health": {"Status": "starting"}}', "waiting", id="starting"),
        pytest.param('{"Status": "created"}', "waiting", id="not started yet"),
        pytest.param('{"Status": "exited", "Health": {"Status": "healthy"}}', "exited", id="exited"),
        pytest.param('{"Status": "dead"}', "exited", id="dead"),
        pytest.param("", "waiting", id="no answer"),
        pytest.param("not json", "waiting", id="garbage"),
    ],
)
def test_container_verdict(state, verdict):
    assert container_verdict(state) == verdict


@pytest.mark.parametrize(
    ("items", "flags", "values"),
    [
        pytest.param(["A=1", "B"], ["A=1", "B"], {}, id="plain values stay on the command line"),
        pytest.param(["DB_PASSWORD=x y"], ["DB_PASSWORD"], {"DB_PASSWORD": "x y"}, id="a password goes by name"),
        pytest.param(["api_token=t", "SIGNING_KEY=k"], ["api_token", "SIGNING_KEY"],
                     {"api_token": "t", "SIGNING_KEY": "k"}, id="token and key, any case"),
        pytest.param(["E="], ["E="], {}, id="an empty value"),
        pytest.param(["A=b=c"], ["A=b=c"], {}, id="only the first equals sign splits"),
    ],
)  # fmt: skip
def test_container_env_items(items, flags, values):
    assert container_env_items(items, {"B": "from the environment"}) == (flags, values)
