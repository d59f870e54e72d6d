"""The one place that builds the release gate's command lines (lifecycle/vulns.py): the Debian security-updates
script run inside the built image, and pip-audit of a runtime lock. Nothing here runs anything."""

from __future__ import annotations

from pathlib import Path

from lifecycle.commands.docker import docker_argv

SCRIPT = Path("docker") / "security-updates.sh"  # in the project (the suite's checkout, or an adopted one's docker/)


def security_updates_argv(image: str, mirror: str, script: str) -> list[str]:
    """`docker run` of the security-updates script inside the image: root (apt reads its lists) but no capabilities,
    the image's entrypoint skipped, removed afterwards; `script` is SCRIPT's text."""
    return docker_argv(
        "run", "--rm", "--user", "0", "--cap-drop", "ALL", "--security-opt", "no-new-privileges:true",
        "--entrypoint", "sh", image, "-c", script, "security-updates", mirror,
    )  # fmt: skip


def pip_audit_argv(pip_audit: Path, lock: str) -> list[str]:
    return [str(pip_audit), "--strict", "--progress-spinner", "off", "--disable-pip", "--require-hashes",
            "--format", "json", "-r", lock]  # fmt: skip
