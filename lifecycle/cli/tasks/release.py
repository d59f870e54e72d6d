"""Shipping an image: release and releases, the local registry (registry.*) and the signing keys (keys.*)."""

from __future__ import annotations

from invoke import Collection, Exit, task

from lifecycle.cli.tasks.common import context, local, user_errors
from lifecycle.confirm import confirm_project, terminal_prompt
from lifecycle.lazy import lazy_module
from lifecycle.stages import Stage

# Loaded on first use: a task imports only what it runs (`invoke build` none of these).
provenance = lazy_module("lifecycle.provenance")
signing = lazy_module("lifecycle.signing")
local_registry = lazy_module("lifecycle.registry")
releasing = lazy_module("lifecycle.release")


@task(name="up")
@user_errors
def registry_up(c):
    """Run the local registry on 127.0.0.1:REGISTRY_PORT (registry:2, or the offline image when not pullable)."""
    s = local(c)
    address = local_registry.start(s.settings, s.run, dry=s.dry)
    print(f"local registry: http://{address}/ (releases: invoke release --stage stage|prod)")


@task(
    name="down",
    help={
        "volumes": "Also delete the registry's volume, i.e. every pushed image (asks to confirm). Default: off.",
        "yes": "Confirm --volumes without asking. Default: off.",
    },
)
@user_errors
def registry_down(c, volumes=False, yes=False):
    """Stop the local registry; its images stay on their volume unless --volumes."""
    s = local(c)
    if volumes:
        confirm_project(
            local_registry.project(s.settings), "--volumes deletes every pushed image", yes, terminal_prompt()
        )
    s.run(local_registry.down_argv(s.settings, volumes=volumes), env=s.settings.env)


@task(
    help={
        "stage": "stage or prod. Default: stage.",
        "allow_dirty": "Release even with uncommitted changes (recorded as dirty). Default: off.",
        "allow": "A reason to ship past the vulnerability gate's findings, recorded with the release. Default: "
        "RELEASE_ALLOW (empty: a finding, or a check that could not run, refuses).",
    }
)
@user_errors
def release(c, stage="stage", allow_dirty=False, allow=None):
    """Build a stage (cached), push that image to REGISTRY as PROJ_NAME:STAGE-<zip12> and :STAGE, print its digest."""
    done = releasing.release(local(c).ctx, Stage.parse(stage), allow_dirty=allow_dirty, allow=allow)
    if done:
        print(done.reference)


@task(
    help={
        "stage": "Only this stage's releases (stage or prod). Default: all.",
        "verify": "Check each one's signature and provenance in the registry against SIGNING_PUBLIC_KEY. Default: off.",
    }
)
@user_errors
def releases(c, stage=None, verify=False):
    """List the releases recorded in .lifecycle/releases.jsonl by digest, oldest first, one line per image; --verify
    checks each image's signature and provenance in the registry."""
    s = local(c) if verify else None
    log = releasing.ReleaseLog.of(s.settings if s else context(c).settings)
    found = [r for r in log.all() if stage in (None, r.stage)]
    for line in releasing.listing(found):
        print(line)
    failed = 0
    for reference in dict.fromkeys(r.reference for r in found) if s else ():
        verdict = signing.verify(s.settings, s.run, reference)
        print(
            f"{reference}\n  signature: {'ok' if verdict.ok else verdict.outcome} {verdict.detail}".rstrip(), flush=True
        )
        signed, problem = provenance.check(s.settings, s.run, reference)
        problem = problem if signed.ok else f"{signed.outcome} {signed.detail}".rstrip()
        print(f"  provenance: {problem or 'ok'}", flush=True)
        failed += not verdict.ok or bool(problem)
    if not found:
        print(f"no releases recorded in {releasing.RELEASES_FILE} yet; make one: invoke release --stage stage")
    if failed:
        raise Exit(f"error: {failed} of {len(found)} release(s) failed verification", code=1)


@task(name="init")
@user_errors
def keys_init(c):
    """Make the release signing key pair (skopeo): private key 0600 under .lifecycle/, public key to commit."""
    s = local(c)
    fingerprint = signing.init_keys(s.settings, s.run, dry=s.dry)
    if fingerprint:
        print(fingerprint)


registry_tasks = Collection("registry", registry_up, registry_down)
keys_tasks = Collection("keys", keys_init)
