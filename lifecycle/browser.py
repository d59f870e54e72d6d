"""Headless Chromium for the browser tests: Debian's `chromium` and `chromium-driver`, and `certutil` (to trust
the local CA in a throwaway NSS database), installed by the session that needs them when they are missing.

Also the one place that builds `certutil` command lines and Chromium's flags.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from lifecycle.bootstrap import apt_install
from lifecycle.errors import UserError
from lifecycle.runner import Runner

# program -> the Debian package that brings it
PROGRAMS = {"chromium": "chromium", "chromedriver": "chromium-driver", "certutil": "libnss3-tools"}
# Headless, no sandbox (root in CI), and nothing that talks to the network on its own: test traffic stays on loopback.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
)


def missing_packages(which=shutil.which) -> list[str]:
    return [package for program, package in PROGRAMS.items() if which(program) is None]


def ensure_chromium(run: Runner) -> None:
    """Install what is missing (root with apt only); idempotent: nothing runs when all three are there."""
    missing = missing_packages()
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise UserError(
            f"the browser tests need {', '.join(missing)}; install them (apt-get install {' '.join(missing)})"
        )
    apt_install(run, *missing)


def new_nss_db(folder: Path) -> list[str]:
    return ["certutil", "-N", "--empty-password", "-d", f"sql:{folder}"]


def trust_ca(folder: Path, ca: Path, nickname: str) -> list[str]:
    """Trust ca for TLS servers ("C,,") in the NSS database Chromium reads from $HOME/.pki/nssdb."""
    return ["certutil", "-A", "-d", f"sql:{folder}", "-t", "C,,", "-n", nickname, "-i", str(ca)]
