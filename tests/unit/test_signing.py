"""lifecycle.signing without an engine: every skopeo command as an exact argv, skopeo's answers -> verdicts, the
policy, the key fingerprint, the passphrase file, and the deploy's order (the signature before any swarm command)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from lifecycle import deploy, signing
from lifecycle.commands import swarm
from lifecycle.context import Clock, Context
from lifecycle.errors import UserError
from lifecycle.runner import Result
from lifecycle.stages import PROD
from tests.helpers.recording import RecordingRunner

SKOPEO = "lifecycle/skopeo:1.18"
LOCAL = "127.0.0.1:5000/shop@sha256:" + "a" * 64
REMOTE = "registry.example.com/team/shop@sha256:" + "a" * 64
# A key made by `invoke keys.init`; its fingerprint is what `openssl pkey -pubin -outform DER | sha256sum` prints.
PUBLIC_KEY = """-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEbKKktKzYOmXCyS3w9WUKqnpqZUKc
edxnnM5Tb+qYKnT5ieS3Z3WSvJWnNRRTxNJi81kQkOvN9i4efwFa+lx1xw==
-----END PUBLIC KEY-----
"""
FINGERPRINT = "SHA256:66939a15cfe8f655cc56e9ae785f1bd656e0ad06481c1298ffdfd6a1d567d77b"
RUN = ["docker", "run", "--rm"]


def test_generate_key_argv_writes_only_to_its_folder_and_reads_the_passphrase_from_a_file():
    assert signing.generate_key_argv(SKOPEO, Path("/k/.keys-x"), Path("/k/passphrase"), "1000:1000") == [
        *RUN, "--network", "none", "--user", "1000:1000",
        "--volume", "/k/.keys-x:/out", "--volume", "/k/passphrase:/run/lifecycle/passphrase:ro",
        SKOPEO, "generate-sigstore-key", "--output-prefix", "/out/cosign",
        "--passphrase-file", "/run/lifecycle/passphrase",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("reference", "auth", "expected"),
    [
        pytest.param(
            LOCAL, None,
            [*RUN, "--network", "host", "--user", "0:0",
             "--volume", "/k/cosign.private:/run/lifecycle/cosign.private:ro",
             "--volume", "/k/passphrase:/run/lifecycle/passphrase:ro",
             SKOPEO, "--insecure-policy", "copy", "--quiet", "--preserve-digests",
             "--src-tls-verify=false", "--dest-tls-verify=false",
             "--sign-by-sigstore-private-key", "/run/lifecycle/cosign.private",
             "--sign-passphrase-file", "/run/lifecycle/passphrase",
             f"docker://{LOCAL}", "docker://127.0.0.1:5000/shop:prod-0123456789ab"],
            id="local-registry-plain-http",
        ),
        pytest.param(
            REMOTE, Path("/root/.docker/config.json"),
            [*RUN, "--network", "host", "--user", "0:0",
             "--volume", "/k/cosign.private:/run/lifecycle/cosign.private:ro",
             "--volume", "/k/passphrase:/run/lifecycle/passphrase:ro",
             "--volume", "/root/.docker/config.json:/tmp/.docker/config.json:ro",
             SKOPEO, "--insecure-policy", "copy", "--quiet", "--preserve-digests",
             "--sign-by-sigstore-private-key", "/run/lifecycle/cosign.private",
             "--sign-passphrase-file", "/run/lifecycle/passphrase",
             f"docker://{REMOTE}", "docker://127.0.0.1:5000/shop:prod-0123456789ab"],
            id="remote-registry-tls-verified-with-docker-logins",
        ),
    ],
)  # fmt: skip
def test_sign_argv(reference, auth, expected):
    tag = "127.0.0.1:5000/shop:prod-0123456789ab"
    argv = signing.sign_argv(SKOPEO, reference, tag, Path("/k/cosign.private"), Path("/k/passphrase"), "0:0", auth)
    assert argv == expected


@pytest.mark.parametrize(
    ("reference", "tls"),
    [pytest.param(LOCAL, ["--src-tls-verify=false"], id="local"), pytest.param(REMOTE, [], id="remote")],
)
def test_verify_argv_copies_under_the_policy_into_a_tmpfs(reference, tls):
    argv = signing.verify_argv(SKOPEO, reference, Path("/c/signing/cosign.pub"), Path("/t/policy.json"), "0:0")
    assert argv == [
        *RUN, "--network", "host", "--user", "0:0",
        "--volume", "/c/signing/cosign.pub:/run/lifecycle/cosign.pub:ro",
        "--volume", "/t/policy.json:/run/lifecycle/policy.json:ro", "--tmpfs", "/out",
        SKOPEO, "--policy", "/run/lifecycle/policy.json", "copy", "--quiet", *tls,
        f"docker://{reference}", "oci:/out/image:verified",
    ]  # fmt: skip


def test_no_argv_carries_a_passphrase_or_a_writable_key_mount():
    argv = signing.sign_argv(SKOPEO, LOCAL, "t", Path("/k/cosign.private"), Path("/k/passphrase"), "0:0")
    volumes = [argv[i + 1] for i, part in enumerate(argv) if part == "--volume"]
    assert volumes and all(volume.endswith(":ro") for volume in volumes)


@pytest.mark.parametrize(
    ("host", "local"),
    [("127.0.0.1:5000", True), ("localhost:5000", True), ("localhost", True), ("[::1]:5000", True),
     ("127.0.0.10:5000", False), ("localhost.example.com", False), ("registry.example.com", False)],
)  # fmt: skip
def test_only_loopback_registries_skip_tls_verification(host, local):
    assert signing.is_local_registry(f"{host}/shop@sha256:{'a' * 64}") is local


def test_policy_rejects_all_but_the_repository_signed_by_the_key():
    assert signing.policy("127.0.0.1:5000/shop") == {
        "default": [{"type": "reject"}],
        "transports": {
            "docker": {
                "127.0.0.1:5000/shop": [
                    {
                        "type": "sigstoreSigned",
                        "keyPath": "/run/lifecycle/cosign.pub",
                        "signedIdentity": {"type": "matchRepository"},
                    }
                ]
            }
        },
    }


# skopeo 1.18's own messages for each case (seen against the local registry).
FATAL = 'time="2026-12-04T04:13:32Z" level=fatal msg="Source image rejected: {}"'


@pytest.mark.parametrize(
    ("code", "stderr", "outcome", "detail"),
    [
        (0, "", "signed", ""),
        (1, 'level=fatal msg="Can not copy signatures to oci:/out/image:verified: Pushing signatures for OCI images '
            'is not supported"', "signed", ""),
        (1, FATAL.format("A signature was required, but no signature exists"), "unsigned",
         "Source image rejected: A signature was required, but no signature exists"),
        (1, FATAL.format("cryptographic signature verification failed: invalid signature when validating ASN.1 "
                         "encoded signature"), "other-key",
         "Source image rejected: cryptographic signature verification failed: invalid signature when validating "
         "ASN.1 encoded signature"),
        (1, FATAL.format('Signature for identity \\"127.0.0.1:5000/a:1\\" is not accepted'), "other-repository",
         'Source image rejected: Signature for identity \\"127.0.0.1:5000/a:1\\" is not accepted'),
        (1, 'level=fatal msg="reading manifest sha256:aa in 127.0.0.1:5000/shop: manifest unknown"', "missing",
         'level=fatal msg="reading manifest sha256:aa in 127.0.0.1:5000/shop: manifest unknown"'),
        (1, "dial tcp 127.0.0.1:5000: connect: connection refused\n", "error",
         "dial tcp 127.0.0.1:5000: connect: connection refused"),
    ],
    ids=["signed", "signed-policy-accepted-copy-stopped", "unsigned", "other-key", "other-repository", "missing",
         "unreachable"],
)  # fmt: skip
def test_verdict_reads_skopeos_answer(code, stderr, outcome, detail):
    assert signing.verdict(code, stderr) == signing.Verdict(outcome, detail)


def test_fingerprint_is_the_sha256_of_the_keys_der_as_openssl_prints_it():
    assert signing.fingerprint(PUBLIC_KEY) == FINGERPRINT
    with pytest.raises(UserError, match="not a PEM public key"):
        signing.fingerprint("-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\n")


@pytest.mark.parametrize(
    ("value", "allowed"), [("", False), ("false", False), ("0", False), ("true", True), ("YES", True), ("1", True)]
)
def test_allow_unsigned(make_settings, value, allowed):
    assert signing.allow_unsigned(make_settings(ALLOW_UNSIGNED=value)) is allowed


def test_allow_unsigned_refuses_a_value_it_cannot_read(make_settings):
    with pytest.raises(UserError, match="ALLOW_UNSIGNED='maybe' is not a boolean; set it to true or false"):
        make_settings(ALLOW_UNSIGNED="maybe")


def test_passphrase_file_is_made_once_0600_and_never_overwritten(tmp_path):
    path = tmp_path / "signing" / "passphrase"
    assert signing.ensure_passphrase(path) is True
    first = path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(first.strip()) >= 40
    assert signing.ensure_passphrase(path) is False and path.read_text() == first
    path.write_text("\n")
    with pytest.raises(UserError, match="is not a file with a passphrase"):
        signing.ensure_passphrase(path)


def test_keys_init_refuses_when_a_private_key_exists(make_settings, tmp_path):
    key = tmp_path / ".lifecycle" / "signing" / "cosign.private"
    key.parent.mkdir(parents=True)
    key.write_text("x")
    runner = RecordingRunner()
    with pytest.raises(UserError, match=r"a signing key exists already.*rotat"):
        signing.init_keys(make_settings(), runner)
    assert runner.calls == []


def test_release_without_a_private_key_is_unsigned_and_says_so(make_settings, capsys):
    runner = RecordingRunner()
    assert signing.sign(make_settings(), runner, LOCAL, "127.0.0.1:5000/shop:prod-0123456789ab") == ""
    assert runner.calls == []
    assert "not signed: no signing key" in capsys.readouterr().err


# ------------------------------------------------------------------------------------- require_signed
@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A checkout with the public key; the skopeo image counts as present (no build in a unit test)."""
    (tmp_path / "signing").mkdir()
    (tmp_path / "signing" / "cosign.pub").write_text(PUBLIC_KEY)
    monkeypatch.setattr(signing, "tool_image", lambda settings, run: SKOPEO)
    return tmp_path


def skopeo_says(stderr: str, code: int = 1) -> RecordingRunner:
    return RecordingRunner({("docker", "run"): Result(code, "", stderr)})


@pytest.mark.parametrize(
    ("stderr", "allow", "message"),
    [
        (FATAL.format("A signature was required, but no signature exists"), "false",
         r"shop@sha256:a{64} is not signed .*ALLOW_UNSIGNED=true.*nothing changed"),
        (FATAL.format("cryptographic signature verification failed: invalid signature"), "false",
         rf"is signed, but not by .*signing/cosign.pub \({FINGERPRINT}\).*nothing changed"),
        (FATAL.format("cryptographic signature verification failed: invalid signature"), "true",
         r"is signed, but not by"),
        (FATAL.format('Signature for identity \\"x/y:1\\" is not accepted'), "true",
         r"signature made for another repository"),
    ],
    ids=["unsigned", "other-key", "other-key-even-in-transition", "other-repository-even-in-transition"],
)  # fmt: skip
def test_require_signed_refuses_in_one_line(make_settings, checkout, stderr, allow, message):
    with pytest.raises(UserError, match=message) as refused:
        signing.require_signed(make_settings(checkout, ALLOW_UNSIGNED=allow), skopeo_says(stderr), LOCAL)
    assert "\n" not in str(refused.value)


def test_require_signed_passes_a_signed_image_quietly(make_settings, checkout, capsys):
    runner = skopeo_says("", code=0)
    assert signing.require_signed(make_settings(checkout), runner, LOCAL).ok
    (call,) = runner.calls
    assert call[:2] == ["docker", "run"] and call[-2:] == [f"docker://{LOCAL}", "oci:/out/image:verified"]
    assert capsys.readouterr().err == ""


def test_transition_deploys_unsigned_with_a_warning_every_time(make_settings, checkout, capsys):
    settings = make_settings(checkout, ALLOW_UNSIGNED="true")
    runner = skopeo_says(FATAL.format("A signature was required, but no signature exists"))
    for _ in range(2):
        assert signing.require_signed(settings, runner, LOCAL).outcome == "unsigned"
    err = capsys.readouterr().err
    assert err.count("WARNING: ALLOW_UNSIGNED=true") == 2 and err.count("UNSIGNED (ALLOW_UNSIGNED=true)") == 2


def test_without_a_public_key_nothing_deploys_unless_in_transition(make_settings, tmp_path, capsys):
    runner = RecordingRunner()
    with pytest.raises(UserError, match=r"no signing public key at .*run: invoke keys\.init"):
        signing.require_signed(make_settings(tmp_path), runner, LOCAL)
    assert signing.require_signed(make_settings(tmp_path, ALLOW_UNSIGNED="true"), runner, LOCAL).outcome == "unchecked"
    assert runner.calls == [] and "no signature is checked" in capsys.readouterr().err


def test_the_verification_policy_file_names_the_release_repository(make_settings, checkout, monkeypatch):
    seen = {}

    def runner(argv, **_):
        (mount,) = [part for part in argv if part.endswith(":/run/lifecycle/policy.json:ro")]
        seen["policy"] = json.loads(Path(mount.split(":")[0]).read_text())
        return Result(0)

    signing.verify(make_settings(checkout), runner, LOCAL)
    assert list(seen["policy"]["transports"]["docker"]) == ["127.0.0.1:5000/shop"]


# ------------------------------------------------------------------------------------- the deploy's order
def test_deploy_checks_the_signature_before_any_swarm_command(make_settings, checkout):
    """A refused signature: after `docker info` (read only) and skopeo, nothing ran: no pull, no secret, no stack."""
    (checkout / ".lifecycle").mkdir()
    (checkout / ".lifecycle" / "releases.jsonl").write_text(
        json.dumps({"reference": LOCAL, "stage": "prod", "tag": "t", "zip_sha256": "z", "commit": "c",
                    "dirty": False, "created": "2026-12-04T00:00:00Z", "base_image": "b"}) + "\n"
    )  # fmt: skip
    runner = RecordingRunner(
        {
            ("docker", "info"): Result(0, "active true n1"),
            ("docker", "run"): Result(1, "", FATAL.format("A signature was required, but no signature exists")),
        }
    )
    settings = make_settings(checkout, COMPOSE_PROJECT_NAME="shop")
    with pytest.raises(UserError, match="is not signed"):
        deploy.Deployer(Context(settings, runner, clock=Clock(sleep=lambda _: None))).deploy(PROD, 2)
    assert [call[:2] for call in runner.calls] == [swarm.swarm_state()[:2], ["docker", "run"]]


def test_deploy_checks_the_provenance_after_the_signature_and_before_any_swarm_command(make_settings, checkout):
    """Signed, but no provenance beside it: refused after the two skopeo runs, nothing else ran."""
    (checkout / ".lifecycle").mkdir()
    (checkout / ".lifecycle" / "releases.jsonl").write_text(
        json.dumps({"reference": LOCAL, "stage": "prod", "tag": "t", "zip_sha256": "z", "commit": "c",
                    "dirty": False, "created": "2026-12-04T00:00:00Z", "base_image": "b"}) + "\n"
    )  # fmt: skip
    answers = iter([Result(0), Result(1, "", 'level=fatal msg="reading manifest: manifest unknown"')])
    calls = []

    def runner(argv, **_):
        calls.append(list(argv))
        return Result(0, "active true n1") if argv[:2] == ["docker", "info"] else next(answers)

    settings = make_settings(checkout, COMPOSE_PROJECT_NAME="shop")
    with pytest.raises(UserError, match=r"shop@sha256:a{64} has no provenance; .*nothing changed"):
        deploy.Deployer(Context(settings, runner, clock=Clock(sleep=lambda _: None))).deploy(PROD, 2)
    assert [call[:2] for call in calls] == [["docker", "info"], ["docker", "run"], ["docker", "run"]]
    assert calls[-1][-2:] == [f"docker://127.0.0.1:5000/shop:sha256-{'a' * 64}.provenance", "dir:/out/provenance"]
