"""lifecycle.tls, lifecycle.openssl and lifecycle.browser without an engine: argv tables, which certificate is
used, the local CA made once and kept (real openssl: it is on every machine the suite supports)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from lifecycle import browser, openssl, tls
from lifecycle.errors import UserError
from lifecycle.runner import SubprocessRunner
from lifecycle.settings import load_settings

P = Path("/t")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param(
            openssl.new_ca(P / "ca.key", P / "ca.crt", "/CN=x", 10),
            ["openssl", "req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-sha256", "-days", "10", "-keyout", "/t/ca.key", "-out", "/t/ca.crt", "-subj", "/CN=x",
             "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-addext", "subjectKeyIdentifier=hash"],
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
