"""SBOMs: each image's CycloneDX SBOM (its virtualenv and Debian packages), built by the Dockerfile's
sbom-* stages (docker/sbom.py), copied to `reports/sbom-<stage>.json` by every build, summarised by
`invoke sbom`. stage and prod carry theirs at `IMAGE_PATH`, its sha256 in the `io.lifecycle.sbom.sha256` label.
Which image holds each stage's SBOM, and which stages ship theirs: the stage table (`lifecycle.stages`).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from lifecycle.commands import docker
from lifecycle.context import Context
from lifecycle.errors import UserError
from lifecycle.probes import image_id
from lifecycle.stages import Stage

BUILT_PATH = "/sbom.cdx.json"  # in an sbom-* image
IMAGE_PATH = "/usr/share/doc/lifecycle/sbom.cdx.json"  # in stage and prod
RECORDS = Path(".lifecycle")  # the last SBOM each stage's build copied out: sbom-STAGE.id
KEY_PACKAGES = ("django", "mysqlclient", "gunicorn", "whitenoise", "debugpy", "pytest", "libmariadb3")


def report_path(root: Path, stage: object) -> Path:
    """reports/sbom-STAGE.json; stage is a Stage or its name."""
    return root / "reports" / f"sbom-{stage}.json"


@dataclass(frozen=True)
class Record:
    """Which SBOM image a stage's report was copied from, and the report's sha256 (the label's value)."""

    image_id: str = ""
    sha256: str = "unknown"

    @staticmethod
    def path(root: Path, stage: object) -> Path:
        return root / RECORDS / f"sbom-{stage}.id"

    @classmethod
    def read(cls, root: Path, stage: object) -> Record:
        path = cls.path(root, stage)
        fields = path.read_text(encoding="utf-8").split() if path.is_file() else []
        return cls(*fields) if len(fields) == 2 else cls()

    def write(self, root: Path, stage: object) -> None:
        path = self.path(root, stage)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{self.image_id} {self.sha256}\n", encoding="utf-8")


def ecosystem(component: dict) -> str:
    """pypi, deb, ... from the component's package URL."""
    purl = component.get("purl", "")
    return purl[4:].split("/", 1)[0] if purl.startswith("pkg:") else "other"


def versions(bom: dict) -> dict[str, str]:
    """Lower-case component name -> version."""
    return {c["name"].lower(): c.get("version", "") for c in bom.get("components", [])}


def load(root: Path, stage: str) -> dict:
    path = report_path(root, stage)
    if not path.is_file():
        raise UserError(f"no SBOM for {stage} yet ({path.relative_to(root)}); run invoke build --stage {stage}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise UserError(f"{path.name} is not JSON ({error}); rebuild it: invoke build --stage {stage}") from None


def summary(bom: dict, stage: str) -> list[str]:
    """A few lines: format, counts per ecosystem, and the versions of the packages that matter here."""
    counts = Counter(ecosystem(c) for c in bom.get("components", []))
    found = versions(bom)
    lines = [
        f"{stage}: CycloneDX {bom.get('specVersion', '?')}, {sum(counts.values())} components "
        f"({', '.join(f'{n} {kind}' for kind, n in sorted(counts.items()))})"
    ]
    lines += [f"  {name} {found[name]}" for name in KEY_PACKAGES if name in found]
    return lines


def refresh(ctx: Context, stage: Stage, env: dict[str, str], recorded: Record) -> Record:
    """The SBOM of the stage's freshly built SBOM image, copied to reports/ unless it is the recorded one."""
    image = ctx.settings.sbom_image(stage)
    built = image_id(ctx.run, image) or ""
    report = report_path(ctx.settings.root, stage)
    if built == recorded.image_id and report.is_file():
        return recorded
    document = ctx.run(docker.cat_in_image_argv(image, BUILT_PATH), env=env, capture=True).stdout
    if ctx.dry:
        return recorded
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(document, encoding="utf-8")
    current = Record(built, hashlib.sha256(document.encode()).hexdigest())
    current.write(ctx.settings.root, stage)
    ctx.say(f"SBOM: {report.relative_to(ctx.settings.root)}")
    return current
