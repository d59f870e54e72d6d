"""Trusting a release (issue 28): what signing and the provenance add to `invoke release`, and what verifying both adds
to `invoke deploy`, against the bench's own local registry, with a throw-away key pair of the run's own.

The prod image is pushed once by digest; then, `--runs` times each: the digest signed as `release` signs it
(`signing.sign`), the provenance statement pushed and signed (`provenance.attach`), and the deploy's two checks
(`signing.verify`, `provenance.check`). The key pair lives in a temporary folder removed at the end: the checkout's
own keys are never read or written.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.context import Bench, Section, timed
from bench.evaluate import Results, Row, fmt, judged, load_hint, median
from lifecycle import provenance, registry, signing
from lifecycle.commands import docker
from lifecycle.release import pushed_digest
from lifecycle.settings import Settings
from lifecycle.stages import PROD

TRUST_TARGETS = {"release_added_s": 2.0, "deploy_added_s": 1.0}
TAG = "bench-trust"


def keys_settings(settings: Settings, folder: Path) -> Settings:
    """settings with a key pair in folder (made here), never the checkout's."""
    return settings.override(
        SIGNING_PRIVATE_KEY=str(folder / "cosign.private"),
        SIGNING_PUBLIC_KEY=str(folder / "cosign.pub"),
        SIGNING_PASSPHRASE_FILE=str(folder / "passphrase"),
    )


def measure(bench: Bench) -> dict[str, Any]:
    bench.ensure_image(PROD)
    image = bench.settings.image(PROD)
    folder = Path(tempfile.mkdtemp(prefix="lifecycle-bench-keys-"))
    bench.undo.append(lambda: shutil.rmtree(folder, ignore_errors=True))
    with bench.own_project("trust", ports=("REGISTRY_PORT",)) as own:  # a registry of its own: never release's
        target = f"{own.release_repository}:{TAG}"
        bench.undo.append(lambda: bench.run(registry.down_argv(own, volumes=True), env=own.env, warn=True))
        bench.undo.append(lambda: bench.run(docker.image_rm_argv(target), warn=True, capture=True))
        settings = keys_settings(own, folder)
        signing.init_keys(settings, bench.run)
        registry.start(own, bench.run)
        bench.run(docker.tag_argv(image, target))
        pushed = bench.run(docker.push_argv(target), capture=True)
        reference = f"{own.release_repository}@{pushed_digest(pushed.stdout)}"
        return timed_steps(bench, settings, reference, target)


def timed_steps(bench: Bench, settings: Settings, reference: str, target: str) -> dict[str, list[float]]:
    """Each step `bench.runs` times: sign, attach the provenance, verify both as a deploy does."""
    content = provenance.statement(
        reference, stage=PROD.name, commit="bench", dirty=True, zip_sha256="0" * 64, sbom_sha256="", locks={},
        base_images={}, engine="bench", created="2026-01-01T00:00:00Z",
    )  # fmt: skip
    samples: dict[str, list[float]] = {"sign": [], "provenance": [], "verify_signature": [], "verify_provenance": []}
    for _ in range(bench.runs):
        seconds, signer = timed(lambda: signing.sign(settings, bench.run, reference, target))
        samples["sign"].append(seconds)
        seconds, attached = timed(lambda: provenance.attach(settings, bench.run, content, reference))
        samples["provenance"].append(seconds)
        seconds, verdict = timed(lambda: signing.verify(settings, bench.run, reference))
        samples["verify_signature"].append(seconds)
        seconds, (found, _) = timed(lambda: provenance.check(settings, bench.run, reference))
        samples["verify_provenance"].append(seconds)
        if not (signer and attached and verdict.ok and found.ok):
            raise RuntimeError(f"trust: {reference} did not sign and verify ({verdict.outcome}, {found.outcome})")
    return samples


def added(samples: Mapping[str, Any], *parts: str) -> float | None:
    """The median of each step, added up: what one release (or deploy) pays for them."""
    medians = [median(samples.get(part, [])) for part in parts]
    return None if None in medians else sum(medians)


def rows(samples: Mapping[str, Any], results: Results) -> list[Row]:
    hint = load_hint(results)
    return [
        Row("sign", "signing the pushed digest (skopeo, cosign format)", fmt(median(samples.get("sign", [])), "s", 2)),
        Row("provenance", "pushing and signing the provenance", fmt(median(samples.get("provenance", [])), "s", 2)),
        judged("release_added", "added to invoke release by signing + provenance",
               added(samples, "sign", "provenance"), TRUST_TARGETS["release_added_s"], digits=2,
               why=hint or "skopeo's container start dominates each step"),
        judged("deploy_added", "added to invoke deploy by verifying signature + provenance",
               added(samples, "verify_signature", "verify_provenance"), TRUST_TARGETS["deploy_added_s"], digits=2,
               why=hint or "skopeo's container start dominates each step"),
    ]  # fmt: skip


SECTION = Section("trust", "release signing and provenance, deploy verification", measure, rows, TRUST_TARGETS)
