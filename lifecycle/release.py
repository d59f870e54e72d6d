"""Releases: an image pushed to a registry and addressed by its digest, and the record of every release.

`invoke release --stage S` builds S (cached) and takes the built image's id; tags that id (never a name)
`REGISTRY/PROJ_NAME:S-<first 12 of the zip sha256>` and `REGISTRY/PROJ_NAME:S`, pushes each and checks that the
manifest the registry now holds has that image as its config (another checkout of PROJ_NAME may move the same local
name between the tag and the push: then it pushes again), and appends a `Release` to `.lifecycle/releases.jsonl`,
one JSON object a line. What deploys read is `ReleaseLog.latest(stage).reference`: `repo@sha256:...`, which no
later push moves. The tags in the registry go to whoever pushed last (docs/releases.md).
After the push, `sign_release` signs that digest in the registry (lifecycle/signing.py), pushes a signed provenance
statement beside it (lifecycle/provenance.py) and records the signer and the provenance.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from lifecycle import codezip, private, probes, provenance, registry, signing, vulns
from lifecycle.commands import docker
from lifecycle.context import Context, say
from lifecycle.errors import UserError
from lifecycle.local import Local
from lifecycle.probes import registry_host_port, registry_reachable
from lifecycle.runner import Runner
from lifecycle.settings import Settings
from lifecycle.stages import PROD, STAGE, Stage

RELEASE_STAGES = (STAGE, PROD)
RELEASES_FILE = Path(".lifecycle") / "releases.jsonl"
ZIP_LABEL = "io.lifecycle.code-zip.sha256"
SBOM_LABEL = "io.lifecycle.sbom.sha256"
DIGEST = re.compile(r"\bdigest: (sha256:[0-9a-f]{64})\b")
PUSH_ATTEMPTS = 3  # pushes of one tag when another checkout keeps moving the local name in between


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
    gate: str = ""  # the vulnerability gate: "clean", or "allowed (reason): what it found" (lifecycle/vulns.py)

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

    def line(self, earlier: Sequence[str] = ()) -> str:
        """One row of `invoke releases`; `earlier`: when the same image was released before (oldest first)."""
        flag = " (dirty)" if self.dirty else ""
        again = f" (released {len(earlier) + 1} times, first at {earlier[0]})" if earlier else ""
        signed = f"signed {self.signer[:19]}" if self.signer else "UNSIGNED"
        return f"{self.created}  {self.stage:<5}  {self.reference}  commit {self.commit[:12]}{flag}  {signed}{again}"


def listing(releases: Sequence[Release]) -> list[str]:
    """`invoke releases`: one row per stage and image, at its newest release (so rows stay in time order and a
    stage's last row is what a deploy takes); a repeat release of the same digest is folded into that row."""
    times: dict[tuple[str, str], list[str]] = {}
    newest: dict[tuple[str, str], Release] = {}
    for found in releases:
        key = (found.stage, found.reference)
        times.setdefault(key, []).append(found.created)
        newest.pop(key, None)  # re-inserted last: dicts keep insertion order
        newest[key] = found
    return [found.line(times[key][:-1]) for key, found in newest.items()]


@dataclass(frozen=True)
class ReleaseLog:
    """`.lifecycle/releases.jsonl`: appended to, never rewritten; oldest first."""

    path: Path

    @classmethod
    def of(cls, settings: Settings) -> ReleaseLog:
        return cls(settings.root / RELEASES_FILE)

    def append(self, release: Release) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with private.open_private_append(self.path) as log:
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


# What a released image is made of besides the code zip's paths (PROJECT_DIR/CODE): the files docker/Dockerfile
# copies from the context for stage and prod, the project table that configures the build, the dependency locks.
# Only a change there (modified, staged, deleted or untracked, not ignored) makes a release dirty: an untracked
# note, a test or a doc elsewhere cannot reach the image, and is only named as a note.
BUILD_INPUTS = ("docker", "requirements", "bash_files", "pyproject.toml", "lifecycle_site", "lifecycle/unpack_zip.py")
NAMED_AT_MOST = 5


def release_inputs(project_dir: str, code: Sequence[str], locks: Sequence[str]) -> tuple[str, ...]:
    """The checkout's paths a stage or prod image is built from: the code zip's, then the build's."""
    zipped = [PurePosixPath(project_dir, entry).as_posix() for entry in code]
    return tuple(dict.fromkeys([*zipped, *locks, *BUILD_INPUTS]))


def uncommitted(root: Path) -> list[str] | None:
    """Every path under `root` with uncommitted changes, untracked ones one by one, relative to `root` (which may
    be a folder of a larger repository); None when git cannot tell."""
    try:
        done = subprocess.run(
            ["git", "-c", "color.status=false", "-c", "status.relativePaths=true", "-C", str(root), "status",
             "--short", "--untracked-files=all", "--", "."],
            capture_output=True, text=True, check=False, timeout=60,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"},
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return changed_paths(done.stdout) if done.returncode == 0 else None


def changed_paths(porcelain: str) -> list[str]:
    """The paths of `git status --porcelain` lines (a rename: its new path), sorted."""
    paths = []
    for line in porcelain.splitlines():
        if len(line) > 3:
            path = line[3:].split(" -> ")[-1]
            paths.append(path[1:-1] if path.startswith('"') and path.endswith('"') else path)
    return sorted(paths)


def split_changes(changed: Sequence[str], inputs: Sequence[str]) -> tuple[list[str], list[str]]:
    """(the changed paths inside the release's inputs, the others)."""
    inside = [path for path in changed if any(path == i or path.startswith(f"{i.rstrip('/')}/") for i in inputs)]
    return inside, [path for path in changed if path not in inside]


def named(paths: Sequence[str]) -> str:
    """The first few paths, then how many more: one line whatever the count."""
    more = len(paths) - NAMED_AT_MOST
    return ", ".join(paths[:NAMED_AT_MOST]) + (f" and {more} more" if more > 0 else "")


def outside_note(others: Sequence[str]) -> str | None:
    """The note naming uncommitted files that do not make the release dirty; None when there are none."""
    if not others:
        return None
    return f"note: not released, outside what the image is built from (uncommitted): {named(others)}"


def changed_inputs(settings: Settings) -> tuple[list[str] | None, list[str]]:
    """(the uncommitted paths the release is built from, None when git cannot tell; the other uncommitted paths)."""
    changed = uncommitted(settings.root)
    if changed is None:
        return None, []
    inputs = release_inputs(settings["PROJECT_DIR"], settings.code_include, settings.typed("REQUIREMENTS"))
    return split_changes(changed, inputs)


def dirty_refusal(commit: str | None, changed: list[str] | None) -> str | None:
    """Why a tree must not be released without --allow-dirty, naming the files; None when it may."""
    if commit is None:
        return "this checkout has no git commit to record; commit it, or pass --allow-dirty"
    if changed is None:
        return "git cannot tell whether the release's files changed; fix the checkout, or pass --allow-dirty"
    if changed:
        names = named(changed)
        return f"uncommitted changes in what the release is built from: {names}; commit or stash them, or --allow-dirty"
    return None


def on_loopback(address: str) -> bool:
    """A registry on this machine's loopback (127.0.0.0/8, localhost): served over plain HTTP, as the engine allows."""
    host = registry_host_port(address)[0]
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


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


def config_digest(manifest_json: str) -> str:
    """The image id (config digest) a registry manifest describes; '' when the answer is not an image manifest."""
    try:
        manifest = json.loads(manifest_json or "{}")
    except json.JSONDecodeError:
        return ""
    config = manifest.get("config") if isinstance(manifest, dict) else None
    return str(config.get("digest", "")) if isinstance(config, dict) else ""


def push_exactly(run: Runner, settings: Settings, image_id: str, target: str) -> str:
    """Tag the image id as target, push it, and return the pushed digest once the registry's manifest under it names
    that image id as its config; pushes again (at most PUSH_ATTEMPTS times) when another checkout moved the local
    name between this tag and this push, so what is pushed is always the image this run built."""
    repository = target.rsplit(":", 1)[0]
    for _ in range(PUSH_ATTEMPTS):
        run(docker.tag_argv(image_id, target))
        done = run(docker.push_argv(target), warn=True, capture=True)
        if not done.ok:
            raise UserError(push_error(settings, target, done.stderr or done.stdout))
        digest = pushed_digest(done.stdout)
        argv = docker.manifest_inspect_argv(f"{repository}@{digest}", plain_http=on_loopback(settings.registry))
        manifest = run(argv, warn=True, capture=True)
        pushed_id = config_digest(manifest.stdout) if manifest.ok else ""
        if not pushed_id:
            raise UserError(f"registry {settings.registry} does not show the manifest of {target}@{digest}; push again")
        if pushed_id == image_id:
            pushed, present = pushed_layers(done.stdout)
            say(f"pushed {target}: {pushed} layer(s) uploaded, {present} already in the registry")
            return digest
        moved = f"{target} named another image ({pushed_id[:19]}) when it was pushed: another checkout moved it"
        say(f"{moved}; pushing again")
    raise UserError(
        f"another checkout kept moving {target} while this one pushed it; release again once its release is done"
    )


def inspect_json(run: Runner, image: str) -> Mapping:
    done = run(docker.image_inspect_argv(image), warn=True, capture=True)
    if not done.ok:
        raise UserError(f"image {image} is not present; build it (invoke build)")
    return json.loads(done.stdout)


def base_image_reference(run: Runner, image: str) -> str:
    """The base image by digest (repo@sha256:...) when it came from a registry, else its local image id."""
    facts = inspect_json(run, image)
    return (facts.get("RepoDigests") or [facts["Id"]])[0]


def now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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


def release(ctx: Context, stage: Stage, *, allow_dirty: bool = False, allow: str | None = None) -> Release | None:
    """Build (cached), pass the vulnerability gate, tag, push, record; returns the release (None in a dry run).

    allow: a reason to ship past the gate's findings (None: RELEASE_ALLOW)."""
    suite = Local(ctx)
    settings, run = suite.settings, suite.run
    check_release_stage(stage)
    commit, _ = codezip.git_state(settings.root, include=())
    changed, others = changed_inputs(settings)
    dirty = None if changed is None else bool(changed)
    refusal = dirty_refusal(commit, changed)
    if refusal and not allow_dirty:
        raise UserError(refusal)
    note = outside_note(others)
    if note:
        say(note)
    if not suite.dry and not registry_reachable(settings.registry):
        raise UserError(unreachable_message(settings))
    suite.build(stage)
    if suite.dry:
        say(f"dry run: would tag and push {', '.join(release_tags(settings, stage, '<zip-sha256>'))}")
        return None
    facts = inspect_json(run, settings.image(stage))  # this checkout's own name: only this checkout moves it
    built = facts["Id"]  # from here on, the image is addressed by its id alone
    zip_sha256 = (facts.get("Config", {}).get("Labels") or {}).get(ZIP_LABEL, "")
    if not re.fullmatch(r"[0-9a-f]{64}", zip_sha256):
        raise UserError(f"{settings.image(stage)} has no code zip label; rebuild it: invoke build --stage {stage}")
    gate = vulns.check(ctx, built)
    reason = settings.typed("RELEASE_ALLOW") if allow is None else allow
    refusal, gate_record = vulns.verdict(gate, settings.image(stage), reason)
    if refusal:
        raise UserError(refusal)
    say(f"release gate: {gate_record}")
    versioned, moving = release_tags(settings, stage, zip_sha256)
    digest = push_exactly(run, settings, built, versioned)
    push_exactly(run, settings, built, moving)
    result = Release(
        reference=f"{settings.release_repository}@{digest}",
        stage=stage.name,
        tag=versioned,
        zip_sha256=zip_sha256,
        commit=commit or "unknown",
        dirty=bool(dirty) if dirty is not None else True,
        created=now_utc(),
        base_image=base_image_reference(run, settings.base_image),
        gate=gate_record,
    )
    result = sign_release(settings, run, result, facts.get("Config", {}).get("Labels") or {})
    ReleaseLog.of(settings).append(result)
    return result
