"""Provenance: an in-toto statement (SLSA provenance v1 predicate) of what went into a release, signed beside it.

skopeo (lifecycle/signing.py) signs images, not attestations, and cosign's `.att` format needs a DSSE signature
that skopeo cannot make. So the statement travels as a small OCI artifact (artifactType application/vnd.in-toto+json,
the statement its one layer), written here as an OCI layout and pushed by skopeo with the same sigstore signature as
the image, to the tag `sha256-<image digest hex>.provenance` of the image's repository: found from the image's digest
alone (as cosign finds `.sig`), and trusted only when signed by SIGNING_PUBLIC_KEY. Checking it is skopeo's copy of
that tag under the signing policy into a folder, then reading the statement: its subject must be the deployed digest
and its code zip the one the image itself names (its io.lifecycle.code-zip.sha256 label, read by `skopeo inspect
--config`, which checks the config against the digest).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Mapping
from pathlib import Path

from lifecycle import signing
from lifecycle.context import say
from lifecycle.errors import UserError
from lifecycle.runner import Runner
from lifecycle.settings import Settings

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://lifecycle.invalid/release/v1"  # this suite's `invoke release` (docs/releases-trust.md)
ARTIFACT_TYPE = "application/vnd.in-toto+json"
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
LAYOUT_TAG = "provenance"
LOCKS = "requirements/*.txt"
ZIP_LABEL = "io.lifecycle.code-zip.sha256"  # lifecycle.release.ZIP_LABEL (release imports this module)


def tag_of(reference: str) -> str:
    """`repo:sha256-<hex>.provenance` for `repo@sha256:<hex>`."""
    repository, digest = reference.split("@", 1)
    return f"{repository}:{digest.replace(':', '-')}.provenance"


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def lock_hashes(root: Path) -> dict[str, str]:
    return {str(path.relative_to(root)): sha256_file(path) for path in sorted(root.glob(LOCKS))}


def statement(
    reference: str, *, stage: str, commit: str, dirty: bool, zip_sha256: str, sbom_sha256: str,
    locks: Mapping[str, str], base_images: Mapping[str, str], engine: str, created: str,
) -> dict:  # fmt: skip
    """The in-toto statement: subject the pushed digest; predicate SLSA provenance v1."""
    repository, digest = reference.split("@", 1)
    algorithm, value = digest.split(":", 1)
    dependencies = [
        {"uri": "git+file:.", "digest": {"gitCommit": commit}, "annotations": {"dirty": dirty}},
        {"name": "code-zip", "digest": {"sha256": zip_sha256}},
        {"name": "sbom", "digest": {"sha256": sbom_sha256}},
        *[{"name": name, "digest": {"sha256": value_}} for name, value_ in sorted(locks.items())],
        *[{"name": f"base-image:{name}", "uri": ref} for name, ref in sorted(base_images.items())],
    ]
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": repository, "digest": {algorithm: value}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {"stage": stage},
                "resolvedDependencies": dependencies,
            },
            "runDetails": {
                "builder": {"id": "invoke release", "version": {"docker-engine": engine}},
                "metadata": {"startedOn": created},
            },
        },
    }


def write_layout(folder: Path, content: bytes) -> str:
    """An OCI image layout in folder holding one artifact (the statement); returns its manifest digest."""
    blobs = folder / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def blob(data: bytes, media_type: str) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": blob(b"{}", EMPTY_CONFIG),
        "layers": [blob(content, ARTIFACT_TYPE)],
    }
    described = blob(json.dumps(manifest, sort_keys=True).encode(), OCI_MANIFEST)
    described["annotations"] = {"org.opencontainers.image.ref.name": LAYOUT_TAG}
    (folder / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [described]}), encoding="utf-8")
    (folder / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}', encoding="utf-8")
    return described["digest"]


def push_argv(image: str, layout: Path, target: str, private_key: Path, passphrase_file: Path, user: str,
              auth_file: Path | None = None) -> list[str]:  # fmt: skip
    """Push the layout's artifact to target (digest preserved) and sign it, in one skopeo copy."""
    mounts = {
        layout: "/run/lifecycle/layout",
        private_key: signing.PRIVATE_KEY_IN,
        passphrase_file: signing.PASSPHRASE_IN,
        **signing.auth_mounts(auth_file),
    }
    return signing.run_argv(
        image, "--insecure-policy", "copy", "--quiet", "--preserve-digests", *signing.tls_flags(target, "dest"),
        "--sign-by-sigstore-private-key", str(signing.PRIVATE_KEY_IN),
        "--sign-passphrase-file", str(signing.PASSPHRASE_IN),
        f"oci:/run/lifecycle/layout:{LAYOUT_TAG}", f"docker://{target}", mounts=mounts, user=user,
    )  # fmt: skip


def fetch_argv(image: str, tag: str, public_key: Path, policy_file: Path, out: Path, user: str,
               auth_file: Path | None = None) -> list[str]:  # fmt: skip
    """Copy the provenance artifact under the signing policy into out (the one writable mount)."""
    mounts = {public_key: signing.PUBLIC_KEY_IN, policy_file: signing.POLICY_IN, **signing.auth_mounts(auth_file)}
    argv = signing.run_argv(
        image, "--policy", str(signing.POLICY_IN), "copy", "--quiet", *signing.tls_flags(tag, "src"),
        f"docker://{tag}", "dir:/out/provenance", mounts=mounts, user=user,
    )  # fmt: skip
    at = argv.index(image)
    return [*argv[:at], "--volume", f"{out}:/out", *argv[at:]]


def attach(settings: Settings, run: Runner, content: dict, reference: str) -> str:
    """Push and sign the statement beside the image; its reference (repo@sha256:...), "" without a private key."""
    keys = signing.KeyFiles.of(settings)
    if not keys.private.is_file():
        return ""
    image = signing.tool_image(settings, run)
    target = tag_of(reference)
    with tempfile.TemporaryDirectory(prefix="lifecycle-provenance-") as folder:
        digest = write_layout(Path(folder), json.dumps(content, sort_keys=True, indent=1).encode())
        done = run(push_argv(image, Path(folder), target, keys.private, keys.passphrase, signing.caller(),
                             signing.auth_file()), warn=True, capture=True)  # fmt: skip
    if not done.ok:
        raise UserError(f"pushing the provenance {target} failed: {signing.verdict(1, done.stderr).detail}")
    return f"{reference.split('@', 1)[0]}@{digest}"


def fetch(settings: Settings, run: Runner, reference: str) -> tuple[signing.Verdict, dict | None]:
    """The provenance of reference, when signed by SIGNING_PUBLIC_KEY: (verdict, statement or None)."""
    keys = signing.KeyFiles.of(settings)
    image = signing.tool_image(settings, run)
    tag = tag_of(reference)
    with tempfile.TemporaryDirectory(prefix="lifecycle-provenance-") as folder:
        policy_file = Path(folder) / "policy.json"
        policy_file.write_text(json.dumps(signing.policy(tag.rsplit(":", 1)[0])), encoding="utf-8")
        out = Path(folder) / "out"
        out.mkdir()
        done = run(fetch_argv(image, tag, keys.public, policy_file, out, signing.caller(), signing.auth_file()),
                   warn=True, capture=True)  # fmt: skip
        found = signing.verdict(done.return_code, done.stderr)
        if not found.ok:
            return found, None
        manifest = json.loads((out / "provenance" / "manifest.json").read_text(encoding="utf-8"))
        layer = manifest["layers"][0]["digest"].split(":", 1)[1]
        return found, json.loads((out / "provenance" / layer).read_text(encoding="utf-8"))


def inspect_config_argv(image: str, reference: str, user: str, auth_file: Path | None = None) -> list[str]:
    """The image's config (labels included), by digest: skopeo checks it against the manifest it addresses."""
    tls = ["--tls-verify=false"] if signing.is_local_registry(reference) else []
    return signing.run_argv(image, "inspect", "--config", *tls, f"docker://{reference}",
                            mounts=signing.auth_mounts(auth_file), user=user)  # fmt: skip


def image_zip(settings: Settings, run: Runner, reference: str) -> str:
    """The code zip sha256 the image's own label names ("" when it has none or cannot be read)."""
    done = run(inspect_config_argv(signing.tool_image(settings, run), reference, signing.caller(),
                                   signing.auth_file()), warn=True, capture=True)  # fmt: skip
    if not done.ok:
        return ""
    labels = (json.loads(done.stdout).get("config") or {}).get("Labels") or {}
    return labels.get(ZIP_LABEL, "")


def check(settings: Settings, run: Runner, reference: str) -> tuple[signing.Verdict, str | None]:
    """(the provenance's signature verdict, why it does not describe the image or None); the second is only
    looked at when the first is ok."""
    found, content = fetch(settings, run, reference)
    if content is None:
        return found, None
    return found, mismatch(content, reference, image_zip(settings, run, reference))


def mismatch(content: Mapping, reference: str, zip_sha256: str) -> str | None:
    """Why the statement is not this release's; None when it is."""
    digest = reference.split("@", 1)[1]
    algorithm, value = digest.split(":", 1)
    subjects = [subject.get("digest", {}).get(algorithm) for subject in content.get("subject", [])]
    if value not in subjects:
        return f"its subject is {', '.join(str(s)[:12] for s in subjects) or 'nothing'}, not {value[:12]}"
    dependencies = content.get("predicate", {}).get("buildDefinition", {}).get("resolvedDependencies", [])
    zips = [d.get("digest", {}).get("sha256") for d in dependencies if d.get("name") == "code-zip"]
    if zips != [zip_sha256]:
        return f"its code zip is {', '.join(str(z)[:12] for z in zips) or 'missing'}, the release's {zip_sha256[:12]}"
    return None


def require(settings: Settings, run: Runner, reference: str) -> None:
    """Raise (one line, nothing changed) unless a provenance signed by this project's key describes reference and
    the code zip its label names; with ALLOW_UNSIGNED=true a missing (unsigned) one passes with a warning."""
    found, problem = check(settings, run, reference)
    short = reference.split("/")[-1]
    if not found.ok:
        if found.outcome in ("missing", "unsigned") and signing.allow_unsigned(settings):
            say(f"WARNING: {short} has no signed provenance (ALLOW_UNSIGNED=true)")
            return
        what = {"missing": "has no provenance", "unsigned": "has an unsigned provenance"}.get(found.outcome)
        raise UserError(
            f"{short} {what or 'has a provenance that fails verification: ' + found.detail}; "
            "release it with invoke release; nothing changed"
        )
    if problem:
        raise UserError(f"the provenance of {short} does not match it: {problem}; nothing changed")
