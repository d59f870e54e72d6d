"""lifecycle.tls, lifecycle.commands.openssl and lifecycle.browser without an engine: argv tables, which certificate is
used, the local CA made once and kept (real openssl: it is on every machine the suite supports)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from lifecycle import browser, tls
from lifecycle.commands import openssl
from lifecycle.errors import UserError
from lifecycle.runner import SubprocessRunner
from lifecycle.settings import load_settings
from tests.helpers import CHECKOUT

P = Path("/t")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param(
            openssl.new_ca(P / "ca.key", P / "ca.crt", "/CN=x", 10),
            ["openssl", "req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-sha256", "-days", "10", "-keyout", "/t/ca.key", "-out", "/t/ca.crt", "-subj", "/CN=x",
             "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-addext", "subjectKeyIdentifier=hash",
             "-addext", "nameConstraints=critical,permitted;DNS:localhost,permitted;IP:127.0.0.0/255.0.0.0,"
             "permitted;IP:::1/ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"],
            id="ca",
        ),
        pytest.param(
            openssl.sign(P / "s.csr", P / "ca.crt", P / "ca.key", P / "s.crt", P / "s.ext", "0x01", 397),
            ["openssl", "x509", "-req", "-in", "/t/s.csr", "-CA", "/t/ca.crt", "-CAkey", "/t/ca.key", "-set_serial",
             "0x01", "-sha256", "-days", "397", "-extfile", "/t/s.ext", "-out", "/t/s.crt"],
            id="sign",
        ),
        pytest.param(
            openssl.check_valid_for(P / "s.crt", 60),
            ["openssl", "x509", "-checkend", "60", "-noout", "-in", "/t/s.crt"], id="checkend",
        ),
        pytest.param(browser.new_nss_db(P), ["certutil", "-N", "--empty-password", "-d", "sql:/t"], id="nss-db"),
        pytest.param(
            browser.trust_ca(P, P / "ca.crt", "n"),
            ["certutil", "-A", "-d", "sql:/t", "-t", "C,,", "-n", "n", "-i", "/t/ca.crt"], id="nss-trust",
        ),
    ],
)  # fmt: skip
def test_argv(argv, expected):
    assert argv == expected


def test_local_certificate_is_made_once_verifies_and_keeps_keys_private(tmp_path):
    made = tls.ensure_local_certificate(tmp_path, SubprocessRunner(echo=False))
    assert made == [".lifecycle/tls/ca.crt", ".lifecycle/tls/server.crt"]
    files = tls.local_files(tmp_path)
    assert tls.ensure_local_certificate(tmp_path, SubprocessRunner(echo=False)) == []
    assert (tmp_path / tls.TLS_DIR).stat().st_mode & 0o777 == 0o700
    assert (
        files.key.stat().st_mode & 0o777 == 0o600
        and (tmp_path / tls.TLS_DIR / "ca.key").stat().st_mode & 0o777 == 0o600
    )
    text = subprocess.run(
        ["openssl", "x509", "-in", str(files.cert), "-noout", "-text"], capture_output=True, text=True
    ).stdout
    assert "DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1" in text
    assert "TLS Web Server Authentication" in text


def test_a_certificate_from_another_ca_is_replaced_but_the_ca_is_kept(tmp_path):
    tls.ensure_local_certificate(tmp_path, SubprocessRunner(echo=False))
    files = tls.local_files(tmp_path)
    ca_before = files.ca.read_bytes()
    other = tmp_path / "other"
    tls.ensure_local_certificate(other, SubprocessRunner(echo=False))
    shutil.copyfile(tls.local_files(other).cert, files.cert)  # signed by another CA: must be remade
    assert tls.ensure_local_certificate(tmp_path, SubprocessRunner(echo=False)) == [".lifecycle/tls/server.crt"]
    assert files.ca.read_bytes() == ca_before


def sign_for(tmp_path: Path, name: str, alt_names: str) -> Path:
    """A server certificate for `alt_names` signed with the local CA's key, as anyone who had the key could make."""
    files = tls.local_files(tmp_path)
    key, request, ext, cert = (tmp_path / f"{name}.{suffix}" for suffix in ("key", "csr", "ext", "crt"))
    ext.write_text(f"basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName={alt_names}\n")
    run = SubprocessRunner(echo=False)
    run(openssl.new_request(key, request, f"/CN={name}"), capture=True)
    run(openssl.sign(request, files.ca, files.ca.with_suffix(".key"), cert, ext, "0x02", 30), capture=True)
    return cert


@pytest.mark.parametrize(
    ("name", "alt_names", "trusted"),
    [
        pytest.param("localhost", "DNS:localhost,IP:127.0.0.1,IP:::1", True, id="localhost, 127.0.0.1, ::1"),
        pytest.param("app.localhost", "DNS:app.localhost,IP:127.9.9.9", True, id="a name under localhost, 127/8"),
        pytest.param("example.com", "DNS:example.com", False, id="another site"),
        pytest.param("localhost.evil", "DNS:localhost.evil", False, id="a name that only starts with localhost"),
        pytest.param("bank", "DNS:localhost,DNS:bank.example", False, id="one foreign name among local ones"),
        pytest.param("ip", "IP:10.0.0.1", False, id="another address"),
        pytest.param("ipv6", "IP:::2", False, id="another IPv6 address"),
    ],
)
def test_the_ca_signs_only_for_local_names(tmp_path, name, alt_names, trusted):
    """Issue 23 #5: a certificate the CA's key signs for any other site fails verification (openssl verify)."""
    tls.ensure_local_certificate(tmp_path, SubprocessRunner(echo=False))
    cert = sign_for(tmp_path, name, alt_names)
    done = subprocess.run(["openssl", "verify", "-CAfile", str(tls.local_files(tmp_path).ca), str(cert)],
                          capture_output=True, text=True)  # fmt: skip
    assert (done.returncode == 0) is trusted, done.stdout + done.stderr
    if not trusted:
        assert "permitted subtree violation" in done.stdout + done.stderr


def test_an_unconstrained_ca_is_made_again_once(tmp_path):
    """A CA from before the constraints (the old argv, 10 years) is replaced, with a new server certificate."""
    files = tls.local_files(tmp_path)
    files.ca.parent.mkdir(parents=True)
    old = openssl.new_ca(files.ca.with_suffix(".key"), files.ca, "/CN=old", 3650)
    del old[-2:]  # without -addext nameConstraints=...
    SubprocessRunner(echo=False)(old, capture=True)
    before = files.ca.read_bytes()
    made = tls.ensure_local_certificate(tmp_path, SubprocessRunner(echo=False))
    assert made == [".lifecycle/tls/ca.crt", ".lifecycle/tls/server.crt"]
    assert files.ca.read_bytes() != before
    assert tls.ensure_local_certificate(tmp_path, SubprocessRunner(echo=False)) == [], "once"


def test_trust_instructions_say_what_trusting_the_ca_means(tmp_path):
    text = "\n".join(tls.trust_instructions(load_settings(root=tmp_path, environ={})))
    for words in ("Trusting it means", "localhost, 127.0.0.0/8 and ::1", "never enters a container", "825 days"):
        assert words in text


def test_the_dev_container_sees_an_empty_lifecycle_folder():
    """The dev service bind-mounts the checkout: its .lifecycle/ (CA key, secret files) is masked by a tmpfs."""
    dev = yaml.safe_load((CHECKOUT / "docker" / "compose.yaml").read_text())["services"]["dev"]
    mounts = {(m["type"], m["target"]) if isinstance(m, dict) else ("bind", m.split(":")[1]) for m in dev["volumes"]}
    assert ("bind", "/app") in mounts and ("tmpfs", "/app/.lifecycle") in mounts


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        pytest.param({"TLS_CERT_FILE": "c.pem"}, "set both TLS_CERT_FILE and TLS_KEY_FILE, or neither", id="only-cert"),
        pytest.param(
            {"TLS_CERT_FILE": "c.pem", "TLS_KEY_FILE": "k.pem"}, "TLS_CERT_FILE=.* is not a file", id="missing"
        ),
    ],
)
def test_bad_tls_settings_are_one_line(tmp_path, environ, message):
    with pytest.raises(UserError, match=message):
        tls.cert_files(load_settings(root=tmp_path, environ=environ))


def test_user_certificate_is_used_as_given_relative_to_the_checkout(tmp_path):
    (tmp_path / "c.pem").write_text("cert")
    (tmp_path / "k.pem").write_text("key")
    files = tls.cert_files(load_settings(root=tmp_path, environ={"TLS_CERT_FILE": "c.pem", "TLS_KEY_FILE": "k.pem"}))
    assert files == tls.CertFiles(cert=tmp_path / "c.pem", key=tmp_path / "k.pem", ca=None)
    assert not files.local


def test_trust_instructions_give_the_curl_cacert_line(tmp_path):
    lines = tls.trust_instructions(load_settings(root=tmp_path, environ={"HTTPS_PORT": "8444"}))
    ca = tmp_path / ".lifecycle" / "tls" / "ca.crt"
    assert f"curl --cacert {ca} https://127.0.0.1:8444/" in "\n".join(lines)


@pytest.mark.parametrize(
    ("present", "missing"),
    [
        pytest.param({"chromium", "chromedriver", "certutil"}, [], id="all-there-nothing"),
        pytest.param({"chromium"}, ["chromium-driver", "libnss3-tools"], id="driver-and-certutil"),
        pytest.param(set(), ["chromium", "chromium-driver", "libnss3-tools"], id="none"),
    ],
)
def test_missing_browser_packages(present, missing):
    assert browser.missing_packages(lambda program: program if program in present else None) == missing
