"""Write one CycloneDX JSON SBOM of the image it runs in: the Python packages of /opt/venv (cyclonedx-py)
and the Debian packages (dpkg-query), merged. Runs in the Dockerfile's sbom-* stages, with the Python
of /opt/sbom (cyclonedx-bom's own virtualenv, never part of what it describes).

Usage: sbom.py IMAGE_KIND OUTPUT
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

VENV_PYTHON = "/opt/venv/bin/python"
CYCLONEDX = "/opt/sbom/bin/cyclonedx-py"
DPKG_FORMAT = "${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\n"


def python_bom() -> dict:
    """cyclonedx-py's SBOM of the virtualenv; reproducible: no serial number, no timestamp."""
    done = subprocess.run(
        [CYCLONEDX, "environment", "--output-reproducible", "--of", "JSON", "--output-file", "-", VENV_PYTHON],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def distro() -> str:
    fields = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
    return fields.get("ID", "debian").strip('"')


def deb_components() -> list[dict]:
    """One component per installed Debian package, with its package URL."""
    listing = subprocess.run(["dpkg-query", "-W", "-f", DPKG_FORMAT], capture_output=True, text=True, check=True)
    vendor, components = distro(), []
    for line in listing.stdout.splitlines():
        status, name, version, arch = line.split("\t")
        if not status.startswith("ii"):
            continue
        purl = f"pkg:deb/{vendor}/{name}@{version}?arch={arch}"
        components.append(
            {
                "type": "library",
                "bom-ref": purl,
                "name": name,
                "version": version,
                "purl": purl,
                "properties": [{"name": "lifecycle:package-manager", "value": "dpkg"}],
            }
        )
    return components


def main(kind: str, output: str) -> None:
    bom = python_bom()
    bom["components"] = sorted(
        [*bom.get("components", []), *deb_components()], key=lambda c: (c.get("purl", ""), c["name"])
    )
    bom.setdefault("metadata", {}).setdefault("properties", []).append({"name": "lifecycle:image", "value": kind})
    Path(output).write_text(json.dumps(bom, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"sbom {kind}: {len(bom['components'])} components -> {output}", file=sys.stderr)


if __name__ == "__main__":
    main(*sys.argv[1:3])
