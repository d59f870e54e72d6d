"""Releases: an image pushed to a registry and addressed by its digest, and the record of every release.

`invoke release --stage S` builds S (cached), tags it `REGISTRY/PROJ_NAME:S-<first 12 of the zip sha256>` and
`REGISTRY/PROJ_NAME:S`, pushes both and appends a `Release` to `.lifecycle/releases.jsonl`, one JSON object a
line. What deploys read is `ReleaseLog.latest(stage).reference`: `repo@sha256:...`, which no later push moves.
After the push, `sign_release` signs that digest in the registry (lifecycle/signing.py), pushes a signed provenance
statement beside it (lifecycle/provenance.py) and records the signer and the provenance.
"""

from __future__ import annotations

import json
import re
import socket
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from lifecycle import codezip, probes, provenance, registry, signing
from lifecycle import compose as cmd
from lifecycle.errors import UserError
from lifecycle.runner import Runner
from lifecycle.settings import Settings
from lifecycle.stages import PROD, STAGE, Stage

RELEASE_STAGES = (STAGE, PROD)
RELEASES_FILE = Path(".lifecycle") / "releases.jsonl"
ZIP_LABEL = "io.lifecycle.code-zip.sha256"
SBOM_LABEL = "io.lifecycle.sbom.sha256"
DIGEST = re.compile(r"\bdigest: (sha256:[0-9a-f]{64})\b")
CONNECT_TIMEOUT_S = 5


@dataclass(frozen=True)
class Release:
    """One pushed image. `reference` is `repository@sha256:<digest>`: pull or deploy exactly that."""

    reference: str
    stage: str
    tag: str  # repository:stage-<zip12>, the human-readable name of the same image
    zip_sha256: str
    commit: str
    dirty: bool
    created: str  # UTC, ISO 8601
    base_image: str  # the base image's digest reference (or its image id when it came from no registry)
    signer: str = ""  # SHA256:<hex> of the public key whose private key signed the digest; "" when unsigned
    provenance: str = ""  # repo@sha256:<hex> of the signed in-toto statement, tag sha256-<image hex>.provenance

    @property
    def repository(self) -> str:
        return self.reference.split("@", 1)[0]

    @property
    def digest(self) -> str:
        return self.reference.split("@", 1)[1]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, line: str) -> Release:
        return cls(**json.loads(line))

    def line(self) -> str:
        """One row of `invoke releases`."""
        flag = " (dirty)" if self.dirty else ""
        signed = f"signed {self.signer[:19]}" if self.signer else "UNSIGNED"
        return f"{self.created}  {self.stage:<5}  {self.reference}  commit {self.commit[:12]}{flag}  {signed}"


@dataclass(frozen=True)
class ReleaseLog:
    """`.lifecycle/releases.jsonl`: appended to, never rewritten; oldest first."""

    path: Path

    @classmethod
    def of(cls, settings: Settings) -> ReleaseLog:
        return cls(settings.root / RELEASES_FILE)

    def append(self, release: Release) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as log:
            log.write(release.to_json() + "\n")

    def all(self) -> list[Release]:
        if not self.path.is_file():
            return []
        releases = []
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                releases.append(Release.from_json(line))
            except (ValueError, TypeError) as error:
                raise UserError(
                    f"{RELEASES_FILE} line {number} is not a release record ({error}); fix or remove that line"
                ) from None
        return releases

    def latest(self, stage: Stage | str) -> Release | None:
        """The newest release of a stage (a `Stage` or its name), None when there is none."""
        return next((r for r in reversed(self.all()) if r.stage == str(stage)), None)


def check_release_stage(stage: Stage) -> Stage:
    if stage not in RELEASE_STAGES:
        names = " and ".join(str(s) for s in RELEASE_STAGES)
        raise UserError(f"only {names} are released, not {stage.name!r}; use --stage stage or prod")
    return stage


def release_tags(settings: Settings, stage: Stage, zip_sha256: str) -> tuple[str, str]:
    """(the immutable-by-convention tag S-<zip12>, the moving tag S)."""
    repository = settings.release_repository
    return f"{repository}:{stage.tag}-{zip_sha256[:12]}", f"{repository}:{stage.tag}"


def dirty_refusal(commit: str | None, dirty: bool | None) -> str | None:
    """Why a tree must not be released without --allow-dirty; None when it may."""
    if commit is None:
        return "this checkout has no git commit to record; commit it, or pass --allow-dirty"
    if dirty is not False:
        return "the working tree has uncommitted changes; commit or stash them, or pass --allow-dirty"
    return None


def registry_host_port(address: str) -> tuple[str, int]:
    host = address.split("/", 1)[0]
    name, _, port = host.partition(":")
    return name, int(port) if port else 443


def reachable(address: str) -> bool:
    try:
        with socket.create_connection(registry_host_port(address), timeout=CONNECT_TIMEOUT_S):
            return True
    except OSError:
        return False


def unreachable_message(settings: Settings) -> str:
    address = settings.registry
    fix = "start it: invoke registry.up" if registry.is_local(settings) else "check REGISTRY and the network"
    return f"registry {address} is not reachable; {fix}"


def push_error(settings: Settings, image: str, stderr: str) -> str:
    """docker push's failure as one line that says what to do."""
    said = stderr.lower()
    host = settings.registry.split("/", 1)[0]
    if any(word in said for word in ("unauthorized", "authentication required", "no basic auth")):
        return f"registry {host} requires authentication for {image}; run: docker login {host}"
    if "denied" in said:
        return f"registry {host} denies pushing {image}; docker login {host} as a user who may push there"
    if any(word in said for word in ("name invalid", "name unknown", "invalid reference", "repository name must")):
        return (
            f"registry {host} rejects the name {image}; create that repository there, "
            "or set REGISTRY or PROJ_NAME to a name it accepts"
        )
    if any(word in said for word in ("connection refused", "no such host", "i/o timeout", "dial tcp", "no route")):
        return unreachable_message(settings)
    last = next((line for line in reversed(stderr.strip().splitlines()) if line.strip()), "no message")
    return f"pushing {image} failed: {last.strip()}"


def pushed_digest(output: str) -> str:
    found = DIGEST.findall(output)
    if not found:
        raise UserError("docker push printed no digest; push again, or check the registry's logs")
    return found[-1]


def pushed_layers(output: str) -> tuple[int, int]:
    """(layers pushed, layers the registry already had), from docker push's progress lines."""
    return output.count(": Pushed"), output.count("Layer already exists") + output.count("Mounted from")


def inspect_json(run: Runner, image: str) -> Mapping:
    done = run(cmd.image_inspect_argv(image), warn=True, capture=True)
    if not done.ok:
        raise UserError(f"image {image} is not present; build it (invoke build)")
    return json.loads(done.stdout)


def base_image_reference(run: Runner, image: str) -> str:
    """The base image by digest (repo@sha256:...) when it came from a registry, else its local image id."""
    facts = inspect_json(run, image)
    return (facts.get("RepoDigests") or [facts["Id"]])[0]


def now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def sign_release(settings: Settings, run: Runner, pushed: Release, labels: Mapping[str, str]) -> Release:
    """The step after the push: sign the pushed digest beside it in the registry, then push its signed provenance;
    the release with its signer and provenance (neither without a private key: said in one line)."""
    signer = signing.sign(settings, run, pushed.reference, pushed.tag)
    if not signer:
        return pushed
    content = provenance.statement(
        pushed.reference, stage=pushed.stage, commit=pushed.commit, dirty=pushed.dirty, zip_sha256=pushed.zip_sha256,
        sbom_sha256=labels.get(SBOM_LABEL, ""), locks=provenance.lock_hashes(settings.root),
        base_images={"python": pushed.base_image}, engine=probes.engine_version(run) or "unknown",
        created=pushed.created,
    )  # fmt: skip
    attached = provenance.attach(settings, run, content, pushed.reference)
    say(f"provenance {attached.split('/')[-1]} signed beside it")
    return replace(pushed, signer=signer, provenance=attached)


def release(suite, stage: Stage, *, allow_dirty: bool = False) -> Release | None:
    """Build (cached), tag, push, record; returns the release (None in a dry run)."""
    settings, run = suite.settings, suite.run
    check_release_stage(stage)
    commit, dirty = codezip.git_state(settings.root, include=())
    refusal = dirty_refusal(commit, dirty)
    if refusal and not allow_dirty:
        raise UserError(refusal)
    if not suite.dry and not reachable(settings.registry):
        raise UserError(unreachable_message(settings))
    suite.build(stage)
    if suite.dry:
        say(f"dry run: would tag and push {', '.join(release_tags(settings, stage, '<zip-sha256>'))}")
        return None
    facts = inspect_json(run, settings.image(stage))
    zip_sha256 = (facts.get("Config", {}).get("Labels") or {}).get(ZIP_LABEL, "")
    if not re.fullmatch(r"[0-9a-f]{64}", zip_sha256):
        raise UserError(f"{settings.image(stage)} has no code zip label; rebuild it: invoke build --stage {stage}")
    versioned, moving = release_tags(settings, stage, zip_sha256)
    digest = ""
    for image in (versioned, moving):
        run(cmd.tag_argv(settings.image(stage), image))
        done = run(cmd.push_argv(image), warn=True, capture=True)
        if not done.ok:
            raise UserError(push_error(settings, image, done.stderr or done.stdout))
        digest = pushed_digest(done.stdout)
        pushed, present = pushed_layers(done.stdout)
        say(f"pushed {image}: {pushed} layer(s) uploaded, {present} already in the registry")
    result = Release(
        reference=f"{settings.release_repository}@{digest}",
        stage=stage.name,
        tag=versioned,
        zip_sha256=zip_sha256,
        commit=commit or "unknown",
        dirty=bool(dirty) if dirty is not None else True,
        created=now_utc(),
        base_image=base_image_reference(run, settings.base_image),
    )
    result = sign_release(settings, run, result, facts.get("Config", {}).get("Labels") or {})
    ReleaseLog.of(settings).append(result)
    return result
