"""lifecycle.provenance without an engine: the statement, the OCI layout it travels in, the skopeo argv, and which
statements a deploy refuses."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from lifecycle import provenance

HEX = "a" * 64
REFERENCE = f"127.0.0.1:5000/shop@sha256:{HEX}"
ZIP = "b" * 64
SKOPEO = "lifecycle/skopeo:1.18"


def make_statement(reference: str = REFERENCE, zip_sha256: str = ZIP) -> dict:
    return provenance.statement(
        reference, stage="prod", commit="c0ffee", dirty=True, zip_sha256=zip_sha256, sbom_sha256="d" * 64,
        locks={"requirements/runtime.txt": "e" * 64}, base_images={"python": "python@sha256:" + "f" * 64},
        engine="26.1.5", created="2026-12-04T00:00:00Z",
    )  # fmt: skip


def test_tag_is_found_from_the_digest_alone():
    assert provenance.tag_of(REFERENCE) == f"127.0.0.1:5000/shop:sha256-{HEX}.provenance"


def test_statement_is_in_toto_with_a_slsa_provenance_predicate():
    content = make_statement()
    assert content["_type"] == "https://in-toto.io/Statement/v1"
    assert content["subject"] == [{"name": "127.0.0.1:5000/shop", "digest": {"sha256": HEX}}]
    assert content["predicateType"] == "https://slsa.dev/provenance/v1"
    assert content["predicate"]["buildDefinition"]["resolvedDependencies"] == [
        {"uri": "git+file:.", "digest": {"gitCommit": "c0ffee"}, "annotations": {"dirty": True}},
        {"name": "code-zip", "digest": {"sha256": ZIP}},
        {"name": "sbom", "digest": {"sha256": "d" * 64}},
        {"name": "requirements/runtime.txt", "digest": {"sha256": "e" * 64}},
        {"name": "base-image:python", "uri": "python@sha256:" + "f" * 64},
    ]
    assert content["predicate"]["runDetails"]["builder"]["version"] == {"docker-engine": "26.1.5"}


def test_lock_hashes_are_every_lock_file(tmp_path):
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements" / "runtime.txt").write_bytes(b"django==5\n")
    (tmp_path / "requirements" / "runtime.in").write_bytes(b"django\n")
    assert provenance.lock_hashes(tmp_path) == {"requirements/runtime.txt": hashlib.sha256(b"django==5\n").hexdigest()}


def test_layout_is_an_oci_layout_whose_manifest_digest_is_returned(tmp_path):
    content = b'{"_type": "x"}'
    digest = provenance.write_layout(tmp_path, content)
    index = json.loads((tmp_path / "index.json").read_text())
    (entry,) = index["manifests"]
    assert entry["digest"] == digest and entry["annotations"] == {"org.opencontainers.image.ref.name": "provenance"}
    manifest_bytes = (tmp_path / "blobs" / "sha256" / digest.split(":")[1]).read_bytes()
    assert hashlib.sha256(manifest_bytes).hexdigest() == digest.split(":")[1] and entry["size"] == len(manifest_bytes)
    manifest = json.loads(manifest_bytes)
    assert manifest["artifactType"] == "application/vnd.in-toto+json"
    assert manifest["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    (layer,) = manifest["layers"]
    assert (tmp_path / "blobs" / "sha256" / layer["digest"].split(":")[1]).read_bytes() == content
    assert json.loads((tmp_path / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}


def test_push_argv_pushes_the_layout_and_signs_it_in_one_copy():
    tag = provenance.tag_of(REFERENCE)
    argv = provenance.push_argv(SKOPEO, Path("/t/layout"), tag, Path("/k/cosign.private"), Path("/k/pass"), "0:0")
    assert argv == [
        "docker", "run", "--rm", "--network", "host", "--user", "0:0",
        "--volume", "/t/layout:/run/lifecycle/layout:ro",
        "--volume", "/k/cosign.private:/run/lifecycle/cosign.private:ro",
        "--volume", "/k/pass:/run/lifecycle/passphrase:ro",
        SKOPEO, "--insecure-policy", "copy", "--quiet", "--preserve-digests", "--dest-tls-verify=false",
        "--sign-by-sigstore-private-key", "/run/lifecycle/cosign.private",
        "--sign-passphrase-file", "/run/lifecycle/passphrase",
        "oci:/run/lifecycle/layout:provenance", f"docker://{tag}",
    ]  # fmt: skip


def test_fetch_argv_copies_under_the_policy_into_the_one_writable_folder():
    tag = provenance.tag_of(REFERENCE)
    argv = provenance.fetch_argv(SKOPEO, tag, Path("/c/cosign.pub"), Path("/t/policy.json"), Path("/t/out"), "0:0")
    assert argv == [
        "docker", "run", "--rm", "--network", "host", "--user", "0:0",
        "--volume", "/c/cosign.pub:/run/lifecycle/cosign.pub:ro",
        "--volume", "/t/policy.json:/run/lifecycle/policy.json:ro", "--volume", "/t/out:/out",
        SKOPEO, "--policy", "/run/lifecycle/policy.json", "copy", "--quiet", "--src-tls-verify=false",
        f"docker://{tag}", "dir:/out/provenance",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        pytest.param(make_statement(), None, id="this-release"),
        pytest.param(make_statement(reference=f"127.0.0.1:5000/shop@sha256:{'c' * 64}"),
                     "its subject is cccccccccccc, not aaaaaaaaaaaa", id="another-digest"),
        pytest.param(make_statement(zip_sha256="9" * 64),
                     "its code zip is 999999999999, the release's bbbbbbbbbbbb", id="another-zip"),
        pytest.param({"subject": []}, "its subject is nothing, not aaaaaaaaaaaa", id="no-subject"),
    ],
)  # fmt: skip
def test_mismatch(content, problem):
    assert provenance.mismatch(content, REFERENCE, ZIP) == problem


@pytest.mark.parametrize(
    ("reference", "tls"),
    [pytest.param(REFERENCE, ["--tls-verify=false"], id="local"),
     pytest.param(f"registry.example.com/shop@sha256:{HEX}", [], id="remote")],
)  # fmt: skip
def test_inspect_config_argv_reads_the_images_labels_by_digest(reference, tls):
    assert provenance.inspect_config_argv(SKOPEO, reference, "0:0") == [
        "docker", "run", "--rm", "--network", "host", "--user", "0:0",
        SKOPEO, "inspect", "--config", *tls, f"docker://{reference}",
    ]  # fmt: skip
