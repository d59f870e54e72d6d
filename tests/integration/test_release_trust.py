"""Signed releases against a real local registry (its own free port), in a committed copy of the checkout with a key
pair of its own: `invoke keys.init`, `invoke release` signing the pushed digest, and the verification `invoke deploy`
runs before any swarm command (skopeo under a sigstoreSigned policy) refusing an image pushed by hand, a tampered
manifest, a signature by another key and a signature copied to another repository. Times what signing adds to a
release and verification to a deploy (reports/trust-times.json).

The tests run in file order and share one copy, one registry and its pushes. The deploy's order (the signature
before `docker pull`, secrets or `docker stack deploy`) is tests/unit/test_signing.py's: a deploy needs swarm mode.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from test_release import git

from lifecycle import provenance, signing
from lifecycle.errors import UserError
from lifecycle.release import Release, ReleaseLog
from lifecycle.runner import SubprocessRunner
from lifecycle.settings import load_settings
from tests.helpers.checkout import IsolatedCheckout, copy_checkout
from tests.helpers.engine import docker
from tests.helpers.tools import BUILD_TIMEOUT, assert_one_line, describe, last_line

pytestmark = pytest.mark.integration

MANIFEST_TYPES = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"
HAND_PUSHED = "by-hand"


@pytest.fixture(scope="module")
def checkout(engine, tmp_path_factory):
    """A committed copy of the checkout without any key, with its own names, local registry and key pair."""
    root = copy_checkout(tmp_path_factory.mktemp("trust") / "checkout")
    shutil.rmtree(root / "signing", ignore_errors=True)
    shutil.rmtree(root / ".lifecycle" / "signing", ignore_errors=True)
    (root / ".lifecycle" / "releases.jsonl").unlink(missing_ok=True)
    git(root, "init", "--quiet")
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "--message", "trust test")
    project = IsolatedCheckout.new(root=root)
    try:
        up = project.invoke("registry.up", timeout=600)
        assert up.returncode == 0, describe(up)
        yield project
    finally:
        project.invoke("registry.down", "--volumes", "--yes")
        docker("volume", "rm", "--force", project.registry_volume, check=False)
        pushed = docker(
            "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", f"{project.registry}/{project.proj_name}"
        )
        if pushed.stdout.split():
            docker("image", "rm", "--force", *pushed.stdout.split(), check=False)
        project.remove()


@pytest.fixture(scope="module")
def times() -> dict[str, float]:
    """Seconds measured as the tests run; written to reports/trust-times.json at the end of the module."""
    measured: dict[str, float] = {}
    yield measured
    report = Path(__file__).resolve().parents[2] / "reports" / "trust-times.json"
    report.parent.mkdir(exist_ok=True)
    report.write_text(json.dumps(measured, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def settings_of(project: IsolatedCheckout, **changes: str):
    return load_settings(project.root, environ={**project.env, **changes})


RUN = SubprocessRunner(echo=False)


def timed(action):
    start = time.monotonic()
    result = action()
    return result, time.monotonic() - start


def manifest(project: IsolatedCheckout, reference: str) -> tuple[dict, str]:
    """(the manifest, its media type) of name:tag or name@digest in the local registry."""
    name, _, ref = reference.removeprefix(f"{project.registry}/").replace("@", ":", 1).partition(":")
    request = urllib.request.Request(
        f"http://{project.registry}/v2/{name}/manifests/{ref}", headers={"Accept": MANIFEST_TYPES}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read()), answer.headers["Content-Type"]


def put_manifest(project: IsolatedCheckout, tag: str, body: dict, media_type: str) -> str:
    """PUT a manifest under name:tag; the reference by the digest the registry computed."""
    data = json.dumps(body).encode()
    url = f"http://{project.registry}/v2/{project.proj_name}/manifests/{tag}"
    request = urllib.request.Request(url, data=data, method="PUT", headers={"Content-Type": media_type})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return f"{project.registry}/{project.proj_name}@{answer.headers['Docker-Content-Digest']}"


def push_by_hand(project: IsolatedCheckout, source: str, tag: str) -> str:
    """`docker tag` + `docker push`, as someone with registry access would: the pushed digest reference."""
    target = f"{project.registry}/{project.proj_name}:{tag}"
    docker("tag", source, target)
    docker("push", "--quiet", target)
    digests = json.loads(docker("image", "inspect", "--format", "{{json .RepoDigests}}", target).stdout)
    return next(d for d in digests if d.startswith(f"{project.registry}/{project.proj_name}@"))


def labels(image: str) -> dict[str, str]:
    return json.loads(docker("image", "inspect", "--format", "{{json .Config.Labels}}", image).stdout)


def refusal(project: IsolatedCheckout, reference: str, **changes: str) -> str:
    with pytest.raises(UserError) as refused:
        signing.require_signed(settings_of(project, **changes), RUN, reference)
    message = str(refused.value)
    assert "\n" not in message and message.endswith("nothing changed"), message
    return message


# --------------------------------------------------------------------------------------------------- keys
def test_keys_init_makes_a_0600_private_key_out_of_git_and_never_prints_the_passphrase(checkout):
    done = checkout.invoke("keys.init", timeout=600)
    assert done.returncode == 0, describe(done)
    keys = signing.KeyFiles.of(settings_of(checkout))
    assert oct(keys.private.stat().st_mode & 0o777) == "0o600"
    assert oct(keys.passphrase.stat().st_mode & 0o777) == "0o600"
    assert "BEGIN ENCRYPTED" in keys.private.read_text() and "BEGIN PUBLIC KEY" in keys.public.read_text()
    passphrase = keys.passphrase.read_text().strip()
    assert passphrase not in done.stdout + done.stderr
    assert last_line(done.stdout) == signing.fingerprint(keys.public.read_text())
    ignored = subprocess.run(["git", "-C", str(checkout.root), "check-ignore", "--quiet", str(keys.private)])
    assert ignored.returncode == 0  # the private key is never committed; signing/cosign.pub is
    assert subprocess.run(["git", "-C", str(checkout.root), "check-ignore", "--quiet", str(keys.public)]).returncode

    again = checkout.invoke("keys.init")
    assert again.returncode == 1
    assert_one_line(again.stderr, "a signing key exists already", "docs/releases-trust.md")


# --------------------------------------------------------------------------------------------------- sign
def test_release_signs_the_pushed_digest_in_the_registry_and_records_the_signer(checkout, times):
    git(checkout.root, "add", "signing/cosign.pub")
    git(checkout.root, "commit", "--quiet", "--message", "the public key")
    done = checkout.invoke("release", "--stage", "stage", timeout=BUILD_TIMEOUT)
    assert done.returncode == 0, describe(done)
    settings = settings_of(checkout)
    (record,) = ReleaseLog.of(settings).all()
    assert record.signer == signing.public_key_fingerprint(settings)
    assert f"signed {record.reference.split('/')[-1]} with {record.signer}" in done.stderr

    # cosign's layout: the tag sha256-<hex>.sig, a simple-signing layer with the signature in an annotation.
    signature, _ = manifest(checkout, f"{record.repository}:{record.digest.replace(':', '-')}.sig")
    (layer,) = signature["layers"]
    assert layer["mediaType"] == "application/vnd.dev.cosign.simplesigning.v1+json"
    assert layer["annotations"]["dev.cosignproject.cosign/signature"]

    found, seconds = timed(lambda: signing.verify(settings, RUN, record.reference))
    assert found.ok, found
    times["verify_signed_s"] = round(seconds, 2)

    # The provenance: signed, at sha256-<hex>.provenance, about this digest and what went into it.
    assert record.provenance.startswith(f"{record.repository}@sha256:")
    (verdict, problem), seconds = timed(lambda: provenance.check(settings, RUN, record.reference))
    times["verify_provenance_s"] = round(seconds, 2)  # fetched, checked against the image's own zip label
    assert verdict.ok and problem is None, (verdict, problem)
    verdict, statement = provenance.fetch(settings, RUN, record.reference)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    dependencies = {
        d.get("name") or d["uri"]: d for d in statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    }
    assert dependencies["git+file:."]["digest"]["gitCommit"] == record.commit
    assert dependencies["git+file:."]["annotations"]["dirty"] is False
    lock = checkout.root / "requirements" / "runtime.txt"
    assert dependencies["requirements/runtime.txt"]["digest"]["sha256"] == hashlib.sha256(lock.read_bytes()).hexdigest()
    assert dependencies["sbom"]["digest"]["sha256"] == labels(checkout.image("stage"))["io.lifecycle.sbom.sha256"]
    assert dependencies["base-image:python"]["uri"] == record.base_image
    assert statement["predicate"]["runDetails"]["builder"]["version"]["docker-engine"]

    listed = checkout.invoke("releases", "--verify")
    assert listed.returncode == 0, describe(listed)
    assert "signature: ok" in listed.stdout and "provenance: ok" in listed.stdout and "UNSIGNED" not in listed.stdout


def test_signing_time_added_to_a_release(checkout, times):
    """What sign() costs after a push: the released image signed again, as release does it (the same layers)."""
    settings = settings_of(checkout)
    reference = push_by_hand(checkout, f"{checkout.proj_name}:stage", "timing")
    record = ReleaseLog.of(settings).latest("stage")
    signer, seconds = timed(lambda: signing.sign(settings, RUN, reference, f"{record.repository}:timing"))
    assert signer == record.signer and signing.verify(settings, RUN, reference).ok
    times["sign_s"] = round(seconds, 2)
    # Another image, signed with the project's key but with no provenance beside it: a deploy refuses it.
    other = push_by_hand(checkout, signing.tool_image(settings, RUN), "signed-no-provenance")
    assert signing.sign(settings, RUN, other, f"{record.repository}:signed-no-provenance") == record.signer
    with pytest.raises(UserError) as refused:
        provenance.require(settings, RUN, other)
    assert "has no provenance" in str(refused.value) and "\n" not in str(refused.value)


# --------------------------------------------------------------------------------------------------- refusals
def test_an_image_pushed_by_hand_is_refused(checkout, times):
    """Someone re-tags another image as the release's tag and pushes it: its digest carries no signature."""
    reference = push_by_hand(checkout, "lifecycle/debian:trixie", HAND_PUSHED)
    message, seconds = timed(lambda: refusal(checkout, reference))
    assert "is not signed" in message and "ALLOW_UNSIGNED=true" in message
    times["verify_refused_s"] = round(seconds, 2)

    # The transition setting lets it through, loudly; the record of it fails `releases --verify`.
    assert signing.require_signed(settings_of(checkout, ALLOW_UNSIGNED="true"), RUN, reference).outcome == "unsigned"
    latest = ReleaseLog.of(settings_of(checkout)).latest("stage")
    ReleaseLog.of(settings_of(checkout)).append(Release(**{**latest.__dict__, "reference": reference, "signer": ""}))
    listed = checkout.invoke("releases", "--verify")
    assert listed.returncode == 1 and "signature: unsigned" in listed.stdout, describe(listed)
    assert_one_line(listed.stderr, "1 of 2 release(s) failed verification")


def test_a_tampered_manifest_is_refused(checkout):
    """The signed manifest with one byte of metadata changed is another digest: no signature covers it."""
    record = ReleaseLog.of(settings_of(checkout)).all()[0]
    body, media_type = manifest(checkout, record.reference)
    body["annotations"] = {"tampered": "yes"}
    reference = put_manifest(checkout, "tampered", body, media_type)
    assert reference != record.reference
    assert "is not signed" in refusal(checkout, reference)


def test_a_signature_by_another_key_is_refused(checkout, tmp_path):
    """Signed with a second key pair (made by skopeo, as keys.init does): refused, even with ALLOW_UNSIGNED."""
    other = tmp_path / "other"
    other.mkdir()
    passphrase = other / "passphrase"
    signing.ensure_passphrase(passphrase)
    image = signing.tool_image(settings_of(checkout), RUN)
    RUN(signing.generate_key_argv(image, other, passphrase, signing.caller()), capture=True)
    reference = push_by_hand(checkout, "lifecycle/debian:trixie", HAND_PUSHED)
    tag = f"{checkout.registry}/{checkout.proj_name}:{HAND_PUSHED}"
    done = RUN(signing.sign_argv(image, reference, tag, other / "cosign.private", passphrase, signing.caller()),
               warn=True, capture=True)  # fmt: skip
    assert done.ok, done.stderr
    assert signing.verify(settings_of(checkout), RUN, reference).outcome == "other-key"
    for allow in ("false", "true"):
        message = refusal(checkout, reference, ALLOW_UNSIGNED=allow)
        assert "is signed, but not by" in message and signing.public_key_fingerprint(settings_of(checkout)) in message


def test_a_signature_copied_to_another_repository_is_refused(checkout):
    """The signed image and its signature copied as they are to another name: the signature names the first."""
    record = ReleaseLog.of(settings_of(checkout)).all()[0]
    image = signing.tool_image(settings_of(checkout), RUN)
    other = f"{checkout.registry}/{checkout.proj_name}-copy"
    signature_tag = f"{record.digest.replace(':', '-')}.sig"
    for source, target in ((record.reference, f"{other}:stage"), (f"{record.repository}:{signature_tag}",
                                                                  f"{other}:{signature_tag}")):  # fmt: skip
        argv = signing.run_argv(image, "--insecure-policy", "copy", "--quiet", "--preserve-digests",
                                "--src-tls-verify=false", "--dest-tls-verify=false",
                                f"docker://{source}", f"docker://{target}", user=signing.caller())  # fmt: skip
        RUN(argv, capture=True)
    copied = f"{other}@{record.digest}"
    assert signing.verify(settings_of(checkout), RUN, copied).outcome == "other-repository"
    assert "another repository" in refusal(checkout, copied)


def test_a_provenance_whose_zip_hash_differs_is_refused(checkout, times):
    """A statement signed with the project's key but naming another code zip, put beside the release: refused."""
    settings = settings_of(checkout)
    record = ReleaseLog.of(settings).all()[0]
    other_zip = hashlib.sha256(b"another zip").hexdigest()
    content = provenance.statement(
        record.reference, stage="stage", commit=record.commit, dirty=False, zip_sha256=other_zip, sbom_sha256="",
        locks={}, base_images={}, engine="test", created=record.created,
    )  # fmt: skip
    attached, seconds = timed(lambda: provenance.attach(settings, RUN, content, record.reference))
    assert attached
    times["provenance_attach_s"] = round(seconds, 2)
    with pytest.raises(UserError) as refused:
        provenance.require(settings, RUN, record.reference)
    message = str(refused.value)
    assert "does not match" in message and f"its code zip is {other_zip[:12]}" in message, message
    listed = checkout.invoke("releases", "--verify")
    assert listed.returncode == 1 and "provenance: its code zip is" in listed.stdout, describe(listed)


# --------------------------------------------------------------------------------------------------- the gate
def test_the_vulnerability_gate_refuses_what_it_cannot_check_and_allow_ships_with_the_reason_recorded(checkout):
    """Issue 28: a Debian security mirror that cannot be read refuses the release in one line, nothing pushed; with
    --allow "reason" and the real mirror the release ships, recording the reason and what the gate found."""
    log = ReleaseLog.of(settings_of(checkout))
    before = log.all()
    unreadable = "http://127.0.0.1:9/debian-security"  # nothing listens on the discard port: apt cannot read it
    refused = checkout.invoke("release", "--stage", "stage", timeout=BUILD_TIMEOUT,
                              env={"RELEASE_ALLOW": "", "DEBIAN_SECURITY_MIRROR": unreadable})  # fmt: skip
    assert refused.returncode == 1, describe(refused)
    line = assert_one_line(refused.stderr, "release gate:", f"the mirror {unreadable} could not be read", "--allow")
    assert line.endswith("nothing pushed")
    assert log.all() == before and " push " not in refused.stderr

    reason = "base image refresh is issue 99"
    shipped = checkout.invoke("release", "--stage", "stage", "--allow", reason, timeout=BUILD_TIMEOUT)
    assert shipped.returncode == 0, describe(shipped)
    record = log.latest("stage")
    assert record.reference == last_line(shipped.stdout) and record.gate.startswith(f"allowed ({reason})")
    assert "could not be read" not in record.gate, "the real security mirror is read: " + record.gate
    assert f"release gate: {record.gate}" in shipped.stderr
