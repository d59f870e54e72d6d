"""lifecycle.vulns without an engine: the gate's commands, what it reads from them, and its verdict."""

from __future__ import annotations

import json

import pytest

from lifecycle import vulns
from lifecycle.commands import audit
from lifecycle.context import Context
from lifecycle.runner import Result
from lifecycle.vulns import Gate
from tests.helpers import CHECKOUT
from tests.helpers.recording import RecordingRunner

APT_LINES = "libzstd1 1.5.7+dfsg-1 1.5.7+dfsg-1+deb13u1\npasswd 1:4.17.4-2 1:4.17.4-2+deb13u1\n"


def test_the_debian_check_runs_the_script_in_the_image_as_root_without_capabilities():
    script = (CHECKOUT / audit.SCRIPT).read_text(encoding="utf-8")
    argv = audit.security_updates_argv("shop:stage", "http://deb.debian.org/debian-security", script)
    assert argv == [
        "docker", "run", "--rm", "--user", "0", "--cap-drop", "ALL", "--security-opt", "no-new-privileges:true",
        "--entrypoint", "sh", "shop:stage", "-c", script, "security-updates", "http://deb.debian.org/debian-security",
    ]  # fmt: skip
    assert "--error-on=any update" in script, "a mirror that cannot be read must fail the check, not pass it"


@pytest.mark.parametrize(
    ("stdout", "found"),
    [
        pytest.param("", (), id="nothing-pending"),
        pytest.param(
            APT_LINES,
            (
                "libzstd1 1.5.7+dfsg-1 -> 1.5.7+dfsg-1+deb13u1 (Debian security)",
                "passwd 1:4.17.4-2 -> 1:4.17.4-2+deb13u1 (Debian security)",
            ),
            id="two-pending",
        ),
        pytest.param("W: something odd\n", (), id="other-lines-ignored"),
    ],
)
def test_pending_debian_updates_are_read_from_the_scripts_lines(stdout, found):
    assert vulns.parse_debian(stdout) == found


def with_script(settings):
    """The project's copy of the security-updates script, which the check reads from the project (docker/)."""
    (settings.root / audit.SCRIPT).parent.mkdir(parents=True, exist_ok=True)
    (settings.root / audit.SCRIPT).write_text((CHECKOUT / audit.SCRIPT).read_text(encoding="utf-8"), encoding="utf-8")
    return settings


def test_an_unreadable_security_mirror_is_not_checked_rather_than_clean(make_settings):
    settings = with_script(make_settings(DEBIAN_SECURITY_MIRROR="http://127.0.0.1:9/debian-security"))
    run = RecordingRunner(default=Result(100, "", "E: Some index files failed to download.\n"))
    gate = vulns.debian_check(Context(settings, run), "sha256:abc")
    assert gate.findings == () and not gate.clean
    assert gate.unchecked == (
        "Debian security updates (the mirror http://127.0.0.1:9/debian-security could not be read: "
        "E: Some index files failed to download.)",
    )
    assert run.calls[0][-1] == "http://127.0.0.1:9/debian-security" and run.calls[0][11] == "sha256:abc"


def test_pending_debian_updates_are_findings(make_settings):
    settings = with_script(make_settings())
    gate = vulns.debian_check(Context(settings, RecordingRunner(default=Result(0, APT_LINES))), "sha256:abc")
    assert len(gate.findings) == 2 and gate.unchecked == ()


def test_python_advisories_unreachable_are_said_plainly(make_settings, monkeypatch):
    monkeypatch.setattr(vulns.deps, "audit_probe_url", lambda root: "https://pypi.org/pypi/pip-audit/2.9.0/json")
    monkeypatch.setattr(vulns.deps, "unreachable", lambda url, timeout: "HTTP Error 404: Not Found")
    run = RecordingRunner()
    gate = vulns.python_check(Context(make_settings(), run))
    assert gate.unchecked == (
        "Python advisories (PyPI's vulnerability data at https://pypi.org/pypi/pip-audit/2.9.0/json: "
        "HTTP Error 404: Not Found)",
    )
    assert run.calls == [], "nothing runs against data that cannot be reached"


def test_python_advisories_without_pip_audit_say_how_to_install_it(make_settings, monkeypatch, tmp_path):
    monkeypatch.setattr(vulns.deps, "audit_probe_url", lambda root: "https://pypi.org/x")
    monkeypatch.setattr(vulns.deps, "unreachable", lambda url, timeout: None)
    gate = vulns.python_check(Context(make_settings(), RecordingRunner()))
    assert gate.unchecked == ("Python advisories (pip-audit is not installed; run nox -s audit once)",)


def pip_audit_json(*vulnerable: tuple[str, str, str, list[str]]) -> str:
    deps = [{"name": "certifi", "version": "2026.1.1", "vulns": []}]
    deps += [{"name": n, "version": v, "vulns": [{"id": i, "fix_versions": f}]} for n, v, i, f in vulnerable]
    return json.dumps({"dependencies": deps, "fixes": []})


def test_python_advisories_are_findings_per_lock(make_settings, monkeypatch, tmp_path):
    monkeypatch.setattr(vulns.deps, "audit_probe_url", lambda root: "https://pypi.org/x")
    monkeypatch.setattr(vulns.deps, "unreachable", lambda url, timeout: None)
    pip_audit = tmp_path / vulns.PIP_AUDIT
    pip_audit.parent.mkdir(parents=True)
    pip_audit.touch()
    found = pip_audit_json(("django", "5.2.0", "PYSEC-2026-1", ["5.2.1"]), ("sqlparse", "0.5.0", "GHSA-x", []))
    run = RecordingRunner(default=Result(1, found))
    gate = vulns.python_check(Context(make_settings(REQUIREMENTS="requirements/runtime.txt"), run))
    assert gate.findings == ("django 5.2.0 -> 5.2.1 (PYSEC-2026-1)", "sqlparse 0.5.0 -> no fix yet (GHSA-x)")
    assert run.calls == [
        [str(pip_audit), "--strict", "--progress-spinner", "off", "--disable-pip", "--require-hashes",
         "--format", "json", "-r", str(tmp_path / "requirements/runtime.txt")],
    ]  # fmt: skip


def test_pip_audit_failing_without_a_report_is_not_checked(make_settings, monkeypatch, tmp_path):
    monkeypatch.setattr(vulns.deps, "audit_probe_url", lambda root: "https://pypi.org/x")
    monkeypatch.setattr(vulns.deps, "unreachable", lambda url, timeout: None)
    (tmp_path / vulns.PIP_AUDIT).parent.mkdir(parents=True)
    (tmp_path / vulns.PIP_AUDIT).touch()
    run = RecordingRunner(default=Result(1, "", "ERROR: could not audit shop (no such version)\n"))
    gate = vulns.python_check(Context(make_settings(), run))
    assert gate.unchecked == (
        "Python advisories (pip-audit of requirements/runtime.txt: ERROR: could not audit shop (no such version))",
    )


FINDING = "passwd 1:4.17.4-2 -> 1:4.17.4-2+deb13u1 (Debian security)"
UNCHECKED = "Python advisories (no data)"


@pytest.mark.parametrize(
    ("gate", "allow", "refused", "record"),
    [
        pytest.param(Gate(), "", False, "clean", id="clean-passes"),
        pytest.param(Gate(), "ignored", False, "clean", id="clean-needs-no-reason"),
        pytest.param(Gate(findings=(FINDING,)), "", True, "", id="a-finding-refuses"),
        pytest.param(Gate(unchecked=(UNCHECKED,)), "", True, "", id="not-checked-refuses"),
        pytest.param(Gate(unchecked=(UNCHECKED,)), "   ", True, "", id="a-blank-reason-is-no-reason"),
        pytest.param(
            Gate(findings=(FINDING,), unchecked=(UNCHECKED,)),
            "base image update due Monday",
            False,
            f"allowed (base image update due Monday): 1 known vulnerability ({FINDING}); not checked: {UNCHECKED}",
            id="allowed-records-reason-and-findings",
        ),
    ],
)
def test_verdict(gate, allow, refused, record):
    refusal, recorded = vulns.verdict(gate, "shop:stage", allow)
    assert bool(refusal) == refused and recorded == record
    if refused:
        assert refusal.startswith("release gate: shop:stage: ")
        assert refusal.endswith('ship anyway and say why: invoke release --allow "reason"; nothing pushed')
        assert "\n" not in refusal


def test_many_findings_name_the_first_few_and_count_the_rest():
    gate = Gate(findings=tuple(f"p{n} 1 -> 2 (Debian security)" for n in range(8)))
    assert gate.summary() == (
        "8 known vulnerabilities (p0 1 -> 2 (Debian security), p1 1 -> 2 (Debian security), "
        "p2 1 -> 2 (Debian security), p3 1 -> 2 (Debian security), p4 1 -> 2 (Debian security), 3 more)"
    )


def test_a_project_without_the_audit_lock_is_not_checked_rather_than_failing(make_settings):
    """An adopted project has no requirements/audit.txt: the Python check says it did not run, in one line."""
    gate = vulns.python_check(Context(make_settings(), RecordingRunner()))
    assert gate.findings == () and gate.unchecked == (
        "Python advisories (pip-audit is not installed; run nox -s audit once)",
    )
