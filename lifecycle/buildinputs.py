"""What a build takes from outside the Dockerfile: OCI label values from git, and the extra CA certificates
(Settings.extra_ca_certs) mirrored into the build context's certs folder.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lifecycle import staging
from lifecycle.runner import Runner

CERTS_DIR = Path("docker") / "certs"

# scp-like git addresses: [user@]host:path, with no scheme (user@ is not secret: `git@`, but never `user:token@`).
SCP_LIKE = re.compile(r"(?:(?P<user>[^@/:]+)@)?(?P<host>[^@/:]+):(?P<path>(?!//).*)")


def public_url(url: str) -> str:
    """`url` without what must not travel with an image or a record: user, password or token, query and fragment.

    `https://gitlab-ci-token:TOKEN@host/group/repo.git?x#y` -> `https://host/group/repo.git`; an scp-like `git@host:
    group/repo.git` stays as it is (the `git` user is no secret); a local path stays as it is. What cannot be read
    as any of these and holds an `@` becomes `unknown`: better no source label than a leaked token."""
    url = url.strip()
    if url.startswith(("/", "./", "../", "~")):  # a local path: nothing to strip, whatever characters it has
        return url
    if "://" in url:
        scheme, _, rest = url.partition("://")
        authority, slash, path = rest.partition("/")
        host = authority.rpartition("@")[2]
        path = re.split(r"[?#]", path, maxsplit=1)[0]
        return f"{scheme}://{host}{slash}{path}" if host or scheme == "file" else "unknown"
    scp = SCP_LIKE.fullmatch(url)
    if scp and "@" not in scp["path"]:
        return url
    return "unknown" if "@" in url else url


def git_metadata(run: Runner, root: Path) -> dict[str, str]:
    """OCI label values from git; `unknown` outside a checkout. `created` is the commit time, so an
    unchanged tree rebuilds to the same labels (and the cache holds). Three git calls, which every build makes: at
    once, not one after the other (the code-only rebuild waits for them)."""

    def ask(query: Sequence[str]) -> str:
        result = run(["git", "-C", str(root), *query], warn=True, capture=True)
        return result.stdout.strip() if result.ok else ""

    queries = (("log", "-1", "--format=%H %cI"), ("describe", "--tags", "--always", "--dirty"),
               ("config", "--get", "remote.origin.url"))  # fmt: skip
    with ThreadPoolExecutor(len(queries)) as pool:
        head, version, url = pool.map(ask, queries)
    commit, _, created = head.partition(" ")
    values = {"VCS_REF": commit, "CREATED": created, "VERSION": version, "SOURCE_URL": public_url(url)}
    return {name: value or "unknown" for name, value in values.items()}


def sync_certs(certificates: Sequence[Path], target: Path) -> list[str]:
    """Mirror the certificates (Settings.extra_ca_certs) into the build context's certs folder; return their names."""
    wanted = {path.name: path.read_bytes() for path in certificates}
    target.mkdir(parents=True, exist_ok=True)
    staging.mirror(wanted, target, "*.crt")
    return sorted(wanted)
