"""The vulnerability gate before `invoke release`: known vulnerabilities in what the image is about to ship.

Two checks, after the build and before anything is pushed:
- Debian: inside the built image (a throw-away root container, no capabilities), `docker/security-updates.sh` reads
  the security suite of the image's own Debian release from DEBIAN_SECURITY_MIRROR and lists every installed package
  with a pending security update.
- Python: pip-audit of the runtime locks (REQUIREMENTS) against PyPI's vulnerability data, where that data is
  reachable and pip-audit is installed (`nox -s audit` installs it).

A finding refuses the release in one line, nothing pushed; so does a check that could not run: a gate that did not
look has not passed. `--allow "reason"` (or RELEASE_ALLOW) ships anyway, and the release log records the reason with
what the gate found (`gate` in .lifecycle/releases.jsonl). docs/releases-trust.md, "Known vulnerabilities".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from lifecycle import deps
from lifecycle.commands.audit import SCRIPT, pip_audit_argv, security_updates_argv
from lifecycle.context import Context

PIP_AUDIT = Path(".nox") / "audit" / "bin" / "pip-audit"  # in the checkout, once `nox -s audit` ran
PENDING = re.compile(r"([a-z0-9][a-z0-9+.-]+) (\S+) (\S+)")  # a Debian package name, installed, candidate
SHOWN = 5  # findings named in the one line; the release log keeps them all


@dataclass(frozen=True)
class Gate:
    """What the checks found (`package installed -> fixed`, one each) and the checks that could not run (why)."""

    findings: tuple[str, ...] = ()
    unchecked: tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        return not self.findings and not self.unchecked

    def summary(self) -> str:
        """One line for the release log and the refusal: what was found, what was not checked."""
        parts = []
        count = len(self.findings)
        if count:
            named = ", ".join(self.findings[:SHOWN]) + (f", {count - SHOWN} more" if count > SHOWN else "")
            parts.append(f"{count} known vulnerabilit{'y' if count == 1 else 'ies'} ({named})")
        parts += [f"not checked: {reason}" for reason in self.unchecked]
        return "; ".join(parts) or "clean"


def parse_debian(stdout: str) -> tuple[str, ...]:
    """`package installed candidate` lines -> `package installed -> candidate (Debian security)`."""
    lines = (PENDING.fullmatch(line.strip()) for line in stdout.splitlines())
    return tuple(f"{m[1]} {m[2]} -> {m[3]} (Debian security)" for m in lines if m)


def last_words(text: str) -> str:
    """The last non-blank line of a tool's output, for a one-line reason."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def debian_check(ctx: Context, image: str) -> Gate:
    mirror = ctx.settings.typed("DEBIAN_SECURITY_MIRROR")
    script = (ctx.settings.root / SCRIPT).read_text(encoding="utf-8")
    done = ctx.run(security_updates_argv(image, mirror, script), warn=True, capture=True)
    if not done.ok:
        why = last_words(done.stderr or done.stdout)
        return Gate(unchecked=(f"Debian security updates (the mirror {mirror} could not be read: {why})",))
    return Gate(findings=parse_debian(done.stdout))


def parse_pip_audit(stdout: str) -> tuple[str, ...]:
    """pip-audit's JSON -> `package version -> fixed (ID)`, one per advisory."""
    report = json.loads(stdout or "{}")
    dependencies = report.get("dependencies", []) if isinstance(report, dict) else report
    found = []
    for dependency in dependencies:
        for vuln in dependency.get("vulns", []):
            fixed = ", ".join(vuln.get("fix_versions", [])) or "no fix yet"
            found.append(f"{dependency['name']} {dependency['version']} -> {fixed} ({vuln['id']})")
    return tuple(found)


def python_check(ctx: Context) -> Gate:
    settings, run = ctx.settings, ctx.run
    try:
        probe = deps.audit_probe_url(settings.root)
    except (OSError, KeyError):  # a project without the suite's audit lock (an adopted one) has no pip-audit to run
        return Gate(unchecked=("Python advisories (pip-audit is not installed; run nox -s audit once)",))
    reason = deps.unreachable(probe, timeout=5)
    if reason:
        return Gate(unchecked=(f"Python advisories (PyPI's vulnerability data at {probe}: {reason})",))
    pip_audit = settings.root / PIP_AUDIT
    if not pip_audit.is_file():
        return Gate(unchecked=("Python advisories (pip-audit is not installed; run nox -s audit once)",))
    findings: list[str] = []
    for lock in settings.typed("REQUIREMENTS"):
        done = run(pip_audit_argv(pip_audit, str(settings.root / lock)), warn=True, capture=True)
        try:
            findings += parse_pip_audit(done.stdout)
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            return Gate(unchecked=(f"Python advisories (pip-audit of {lock}: {last_words(done.stderr)})",))
        if not done.ok and not findings:
            return Gate(unchecked=(f"Python advisories (pip-audit of {lock}: {last_words(done.stderr)})",))
    return Gate(findings=tuple(findings))


def combine(*gates: Gate) -> Gate:
    return Gate(
        findings=tuple(f for gate in gates for f in gate.findings),
        unchecked=tuple(u for gate in gates for u in gate.unchecked),
    )


def check(ctx: Context, image: str) -> Gate:
    """Both checks of the image about to be released."""
    return combine(debian_check(ctx, image), python_check(ctx))


def verdict(gate: Gate, image: str, allow: str) -> tuple[str | None, str]:
    """(the refusal line or None, what the release log records). A clean gate passes; anything else needs a reason."""
    if gate.clean:
        return None, "clean"
    if allow.strip():
        return None, f"allowed ({allow.strip()}): {gate.summary()}"
    refusal = (
        f"release gate: {image}: {gate.summary()}; rebuild on updated packages, or ship anyway and say why: "
        f'invoke release --allow "reason"; nothing pushed'
    )
    return refusal, ""
