"""The certificate the HTTPS proxy serves: the user's (TLS_CERT_FILE/TLS_KEY_FILE) or a local one.

The local one is made by bootstrap (and by `invoke up --stage prod` when missing) with the `openssl` CLI into
`.lifecycle/tls/` (ignored by git, outside every build context's copied files, mounted read-only into the proxy):
a CA of this checkout (`ca.crt`, the file to trust) and a server certificate it signs for localhost, 127.0.0.1
and ::1. Renewed when it would expire within 30 days; the CA is kept, so trusting it once is enough, until it
expires itself (CA_DAYS) or predates its name constraints: a CA that could sign for any site is made again once.
The CA may sign for localhost, 127.0.0.0/8 and ::1 only (openssl.PERMITTED); its key never enters a container
(the dev service, which bind-mounts the checkout, sees an empty .lifecycle/).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from lifecycle.commands import openssl
from lifecycle.context import wait_until
from lifecycle.errors import UserError
from lifecycle.probes import https_health_answers
from lifecycle.runner import Runner
from lifecycle.settings import Settings

TLS_DIR = Path(".lifecycle") / "tls"
CA_DAYS = 825  # a little over two years: renewed (and trusted again) when it is due
SERVER_DAYS = 397  # browsers refuse longer-lived server certificates
RENEW_BEFORE_S = 30 * 24 * 3600
SERVER_NAMES = ("DNS:localhost", "IP:127.0.0.1", "IP:::1")
SERVER_EXTENSIONS = (
    "basicConstraints=critical,CA:FALSE\n"
    "keyUsage=critical,digitalSignature\n"
    "extendedKeyUsage=serverAuth\n"
    "subjectKeyIdentifier=hash\n"
    "authorityKeyIdentifier=keyid\n"
    f"subjectAltName={','.join(SERVER_NAMES)}\n"
)


@dataclass(frozen=True)
class CertFiles:
    """What the proxy mounts (cert, key) and, for the local CA, what a client trusts (ca; None for the user's)."""

    cert: Path
    key: Path
    ca: Path | None

    @property
    def local(self) -> bool:
        return self.ca is not None


def local_files(root: Path) -> CertFiles:
    folder = root / TLS_DIR
    return CertFiles(cert=folder / "server.crt", key=folder / "server.key", ca=folder / "ca.crt")


def cert_files(settings: Settings) -> CertFiles:
    """TLS_CERT_FILE/TLS_KEY_FILE (both or neither; relative to the checkout), else the local ones."""
    cert, key = settings["TLS_CERT_FILE"], settings["TLS_KEY_FILE"]
    if bool(cert) != bool(key):
        raise UserError("set both TLS_CERT_FILE and TLS_KEY_FILE, or neither (then the local certificate is used)")
    if not cert:
        return local_files(settings.root)
    files = CertFiles(cert=(settings.root / cert).resolve(), key=(settings.root / key).resolve(), ca=None)
    for name, path in (("TLS_CERT_FILE", files.cert), ("TLS_KEY_FILE", files.key)):
        if not path.is_file():
            raise UserError(f"{name}={path} is not a file; point it at a PEM file, or unset both TLS_* settings")
    return files


def needs_new_ca(files: CertFiles, run: Runner) -> bool:
    """Missing, due within 30 days, or without name constraints (made before they were added: it can sign for any
    site, so it is replaced once)."""
    if not (files.ca.is_file() and files.ca.with_suffix(".key").is_file()):
        return True
    if not run(openssl.check_valid_for(files.ca, RENEW_BEFORE_S), warn=True, capture=True).ok:
        return True
    shown = run(openssl.text(files.ca), warn=True, capture=True)
    return not (shown.ok and "Name Constraints: critical" in shown.stdout and "Permitted:" in shown.stdout)


def server_cert_usable(files: CertFiles, run: Runner) -> bool:
    """Present, signed by the local CA and valid for 30 more days."""
    if not (files.cert.is_file() and files.key.is_file()):
        return False
    return all(
        run(argv, warn=True, capture=True).ok
        for argv in (openssl.verify(files.ca, files.cert), openssl.check_valid_for(files.cert, RENEW_BEFORE_S))
    )


def ca_subject(root: Path) -> str:
    """Names the checkout, so two checkouts' CAs are told apart where they are trusted."""
    checkout = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:8]
    return f"/O=lifecycle local CA/CN=lifecycle {socket.gethostname()[:30]} {checkout}"


def ensure_local_certificate(root: Path, run: Runner) -> list[str]:
    """Make what is missing or due of the local CA and server certificate; returns what was made."""
    files = local_files(root)
    made = []
    if shutil.which("openssl") is None:
        raise UserError(
            "openssl is not installed; install it (apt-get install openssl) or set TLS_CERT_FILE/TLS_KEY_FILE"
        )
    folder = files.cert.parent
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    old_umask = os.umask(0o077)  # keys are written 0600
    try:
        if needs_new_ca(files, run):
            run(openssl.new_ca(files.ca.with_suffix(".key"), files.ca, ca_subject(root), CA_DAYS), capture=True)
            made.append(str(files.ca.relative_to(root)))
        if made or not server_cert_usable(files, run):
            request, extensions = folder / "server.csr", folder / "server.ext"
            extensions.write_text(SERVER_EXTENSIONS, encoding="utf-8")
            run(openssl.new_request(files.key, request, "/CN=localhost"), capture=True)
            serial = "0x" + secrets.token_hex(16)
            ca_key = files.ca.with_suffix(".key")
            run(openssl.sign(request, files.ca, ca_key, files.cert, extensions, serial, SERVER_DAYS), capture=True)
            request.unlink(missing_ok=True)
            extensions.unlink(missing_ok=True)
            made.append(str(files.cert.relative_to(root)))
        for public in (files.ca, files.cert):
            if public.is_file():
                public.chmod(0o644)  # certificates are public; the folder (0700) and the keys (0600) are not
    finally:
        os.umask(old_umask)
    return made


def ensure_certificate(settings: Settings, run: Runner) -> CertFiles:
    files = cert_files(settings)
    if files.local:
        ensure_local_certificate(settings.root, run)
    return files


def trust_instructions(settings: Settings) -> list[str]:
    """How to trust the certificate the proxy serves: curl, Python, browsers, the system store."""
    files = cert_files(settings)
    url = f"https://127.0.0.1:{settings['HTTPS_PORT']}/"
    if not files.local:
        return [f"the proxy serves TLS_CERT_FILE={files.cert}; clients trust it through the CA that issued it", url]
    return [
        f"The proxy serves a certificate signed by this checkout's CA: {files.ca}",
        "Trusting it means: whatever trusts it believes any certificate its key signs. It can sign only for",
        "localhost, 127.0.0.0/8 and ::1 (name constraints; clients refuse it for any other site), expires after",
        f"{CA_DAYS} days, and its key ({files.ca.with_suffix('.key')}, 0600) never enters a container. Trust it",
        "for your own user (curl, Python, the browser's store) rather than system-wide where you can, and remove it",
        "when you no longer use this checkout. A renewed CA (bootstrap says so) must be trusted again.",
        f"curl:     curl --cacert {files.ca} {url}",
        f"Python:   ssl.create_default_context(cafile='{files.ca}') (requests: verify='{files.ca}')",
        "Chromium/Firefox on Linux (NSS, needs libnss3-tools):",
        f'          certutil -d sql:$HOME/.pki/nssdb -A -t "C,," -n "{ca_subject(settings.root).rsplit("=", 1)[1]}" '
        f"-i {files.ca}",
        "Debian/Ubuntu system store (as root):",
        f"          cp {files.ca} /usr/local/share/ca-certificates/lifecycle-local-ca.crt && update-ca-certificates",
        f"macOS:    sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain {files.ca}",
    ]


def wait_for_https(port: int, deadline_s: float = 60, path: str = "/health") -> None:
    """Until the proxy answers HEALTH_PATH over TLS (certificate not checked: this is readiness, not trust)."""
    message = (
        f"the HTTPS proxy did not answer on 127.0.0.1:{port} within {deadline_s:.0f}s; see invoke logs --service proxy"
    )
    wait_until(lambda: https_health_answers(port, path=path), deadline_s, 0.5, message)
