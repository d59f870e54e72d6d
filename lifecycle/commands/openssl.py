"""The one place that builds `openssl` command lines (the local CA and the proxy's certificate).

Every function returns an argument list; `lifecycle.tls` runs them through a `Runner`.
"""

from __future__ import annotations

from pathlib import Path

EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


# What the local CA may sign for, and nothing else: a client that trusts it believes it for these names only.
PERMITTED = ("DNS:localhost", "IP:127.0.0.0/255.0.0.0", "IP:::1/ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
NAME_CONSTRAINTS = "nameConstraints=critical," + ",".join(f"permitted;{name}" for name in PERMITTED)


def new_ca(key: Path, cert: Path, subject: str, days: int) -> list[str]:
    """A self-signed CA that may sign server certificates only (pathlen 0), for PERMITTED names only."""
    return [
        "openssl", "req", "-x509", "-new", *EC_KEY, "-sha256", "-days", str(days),
        "-keyout", str(key), "-out", str(cert), "-subj", subject,
        "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-addext", "subjectKeyIdentifier=hash",
        "-addext", NAME_CONSTRAINTS,
    ]  # fmt: skip


def text(cert: Path) -> list[str]:
    """The certificate as text (its extensions: whether the CA has name constraints)."""
    return ["openssl", "x509", "-noout", "-text", "-in", str(cert)]


def new_request(key: Path, request: Path, subject: str) -> list[str]:
    return ["openssl", "req", "-new", *EC_KEY, "-keyout", str(key), "-out", str(request), "-subj", subject]


def sign(request: Path, ca_cert: Path, ca_key: Path, cert: Path, extensions: Path, serial: str, days: int) -> list[str]:
    return [
        "openssl", "x509", "-req", "-in", str(request), "-CA", str(ca_cert), "-CAkey", str(ca_key),
        "-set_serial", serial, "-sha256", "-days", str(days), "-extfile", str(extensions), "-out", str(cert),
    ]  # fmt: skip


def check_valid_for(cert: Path, seconds: int) -> list[str]:
    """Exits 0 when the certificate is still valid `seconds` from now."""
    return ["openssl", "x509", "-checkend", str(seconds), "-noout", "-in", str(cert)]


def verify(ca_cert: Path, cert: Path) -> list[str]:
    return ["openssl", "verify", "-CAfile", str(ca_cert), str(cert)]


def end_date(cert: Path) -> list[str]:
    """Probe: `notAfter=...` of a certificate (invoke status)."""
    return ["openssl", "x509", "-enddate", "-noout", "-in", str(cert)]
