"""Signed releases: a sigstore (cosign-compatible) signature of each pushed digest, and its check before a deploy.

The work is done by a standard tool, Debian's skopeo (>= 1.10), run from a small image made from Debian packages
(`<OFFLINE_PREFIX>/skopeo:<version>`, lifecycle/offline.py; made on first use). Nothing here reads or writes a
signature itself:

- `invoke keys.init`: `skopeo generate-sigstore-key` writes an ECDSA P-256 key pair in cosign's format; the
  private key (encrypted with the passphrase of SIGNING_PASSPHRASE_FILE, a random one generated into that file
  when it does not exist) goes to SIGNING_PRIVATE_KEY (0600, under .lifecycle/: out of git, of the build context
  and of the code zip), the public key to SIGNING_PUBLIC_KEY (committed: signing/cosign.pub).
- `invoke release`, after the push: `skopeo copy --preserve-digests --sign-by-sigstore-private-key` from the
  pushed digest to its own versioned tag. The blobs are already there, so only the signature is new: with
  `use-sigstore-attachments` (set in the image's registries.d) skopeo stores it in the registry as the tag
  `sha256-<digest>.sig`, where `cosign verify --key signing/cosign.pub` finds it too.
- `invoke deploy`, before anything touches the swarm: `skopeo copy` of the digest under a policy that accepts only
  an image signed by SIGNING_PUBLIC_KEY for this repository (`sigstoreSigned`, `matchRepository`). skopeo checks
  the policy before anything else: a verdict costs a manifest and a signature fetch, no layer (see COPY_TO).

The passphrase is only ever in its file, mounted read-only into the container; never on a command line, never
printed. Every path on the host is mounted read-only; the container runs as the caller's uid (the key is 0600).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lifecycle import offline
from lifecycle.context import say
from lifecycle.errors import UserError
from lifecycle.runner import Runner
from lifecycle.settings import Settings

TOOL = "skopeo"  # the offline step that makes the image (lifecycle/offline.py)
IN_CONTAINER = Path("/run/lifecycle")
PRIVATE_KEY_IN = IN_CONTAINER / "cosign.private"
PUBLIC_KEY_IN = IN_CONTAINER / "cosign.pub"
PASSPHRASE_IN = IN_CONTAINER / "passphrase"
POLICY_IN = IN_CONTAINER / "policy.json"
AUTH_IN = Path("/tmp/.docker/config.json")  # HOME=/tmp in the image: skopeo reads docker's logins from there
# Where verify_argv copies to: an OCI layout (in a tmpfs), which cannot hold signatures. skopeo checks the policy
# before it reads anything else of the image (containers/image copy/single.go: "keep this policy check BEFORE reading
# any other information about the image"); an accepted image has signatures, so the copy then stops at once with
# ACCEPTED instead of fetching every layer. A skopeo that could store them would copy and exit 0: accepted too.
COPY_TO = "oci:/out/image:verified"
ACCEPTED = "can not copy signatures to oci:"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")
_PEM = re.compile(r"-----BEGIN PUBLIC KEY-----(.*?)-----END PUBLIC KEY-----", re.S)


# ------------------------------------------------------------------------------------------- settings
def setting_path(settings: Settings, name: str) -> Path:
    """A path setting: `~` expanded, a relative path taken from the checkout."""
    path = settings.typed(name).expanduser()
    return path if path.is_absolute() else settings.root / path


def allow_unsigned(settings: Settings) -> bool:
    return settings.typed("ALLOW_UNSIGNED")


def fingerprint(public_key_pem: str) -> str:
    """`SHA256:<hex>` of the key's DER SubjectPublicKeyInfo (what `openssl pkey -pubin -outform DER | sha256sum`
    prints for the same file)."""
    found = _PEM.search(public_key_pem)
    if not found:
        raise UserError("the signing public key is not a PEM public key; run: invoke keys.init")
    return "SHA256:" + hashlib.sha256(base64.b64decode("".join(found.group(1).split()))).hexdigest()


def public_key_fingerprint(settings: Settings) -> str:
    path = setting_path(settings, "SIGNING_PUBLIC_KEY")
    if not path.is_file():
        raise UserError(f"no signing public key at {path} (SIGNING_PUBLIC_KEY); run: invoke keys.init")
    return fingerprint(path.read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------------- argv builders
def is_local_registry(reference: str) -> bool:
    """127.0.0.1/localhost registries speak plain HTTP (docker's own exception); every other one is TLS-verified."""
    host = reference.split("/", 1)[0]
    return any(host == name or host.startswith(f"{name}:") for name in LOCAL_HOSTS)


def run_argv(
    image: str,
    *args: str,
    mounts: Mapping[Path | str, Path | str] | None = None,
    user: str,
    network: str = "host",
    tmpfs: str | None = None,
) -> list[str]:
    """`docker run` of the skopeo image: each mount read-only, as `user`, on the host's network (the local
    registry listens on the host's 127.0.0.1) or none."""
    volumes = [arg for host, inside in (mounts or {}).items() for arg in ("--volume", f"{host}:{inside}:ro")]
    scratch = ["--tmpfs", tmpfs] if tmpfs else []
    return ["docker", "run", "--rm", "--network", network, "--user", user, *volumes, *scratch, image, *args]


def generate_key_argv(image: str, out_dir: Path, passphrase_file: Path, user: str) -> list[str]:
    """`skopeo generate-sigstore-key` into out_dir (writable: the one mount that is not read-only)."""
    return [
        "docker", "run", "--rm", "--network", "none", "--user", user,
        "--volume", f"{out_dir}:/out", "--volume", f"{passphrase_file}:{PASSPHRASE_IN}:ro",
        image, "generate-sigstore-key", "--output-prefix", "/out/cosign", "--passphrase-file", str(PASSPHRASE_IN),
    ]  # fmt: skip


def tls_flags(reference: str, *directions: str) -> list[str]:
    return [f"--{direction}-tls-verify=false" for direction in directions] * is_local_registry(reference)


def auth_mounts(auth_file: Path | None) -> dict[Path, Path]:
    return {auth_file: AUTH_IN} if auth_file else {}


def sign_argv(
    image: str, reference: str, tag: str, private_key: Path, passphrase_file: Path, user: str,
    auth_file: Path | None = None,
) -> list[str]:  # fmt: skip
    """Sign `reference` (repo@sha256:...) by copying it onto its own tag, digests preserved: only the signature is
    written (`sha256-<hex>.sig`, beside the image). The source is the digest just pushed, so no policy applies."""
    mounts = {private_key: PRIVATE_KEY_IN, passphrase_file: PASSPHRASE_IN, **auth_mounts(auth_file)}
    return run_argv(
        image, "--insecure-policy", "copy", "--quiet", "--preserve-digests", *tls_flags(reference, "src", "dest"),
        "--sign-by-sigstore-private-key", str(PRIVATE_KEY_IN), "--sign-passphrase-file", str(PASSPHRASE_IN),
        f"docker://{reference}", f"docker://{tag}", mounts=mounts, user=user,
    )  # fmt: skip


def verify_argv(
    image: str, reference: str, public_key: Path, policy_file: Path, user: str, auth_file: Path | None = None
) -> list[str]:
    """Copy `reference` under the policy (nothing but a valid signature by public_key is accepted); skopeo decides
    before it copies a layer (COPY_TO), in a tmpfs that goes with the container."""
    mounts = {public_key: PUBLIC_KEY_IN, policy_file: POLICY_IN, **auth_mounts(auth_file)}
    return run_argv(
        image, "--policy", str(POLICY_IN), "copy", "--quiet", *tls_flags(reference, "src"),
        f"docker://{reference}", COPY_TO, mounts=mounts, user=user, tmpfs="/out",
    )  # fmt: skip


def policy(repository: str) -> dict:
    """containers-policy.json(5): reject everything but `repository` signed by the key at PUBLIC_KEY_IN, with the
    signature's identity in that same repository (an image signed for another repository is refused)."""
    requirement = {
        "type": "sigstoreSigned",
        "keyPath": str(PUBLIC_KEY_IN),
        "signedIdentity": {"type": "matchRepository"},
    }
    return {"default": [{"type": "reject"}], "transports": {"docker": {repository: [requirement]}}}


# ------------------------------------------------------------------------------------------- outcomes
@dataclass(frozen=True)
class Verdict:
    """What the verification found: `signed`, `unsigned`, `other-key`, `other-repository`, `missing` or `error`."""

    outcome: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == "signed"


REFUSALS = (
    ("unsigned", ("no signature exists", "a signature was required")),
    ("other-key", ("cryptographic signature verification failed", "invalid signature", "signature not valid")),
    ("other-repository", ("is not accepted", "does not match")),
    ("missing", ("manifest unknown", "not found", "name unknown")),
)


def verdict(return_code: int, stderr: str) -> Verdict:
    said = stderr.lower()
    if return_code == 0 or (ACCEPTED in said and "source image rejected" not in said):
        return Verdict("signed")
    last = next((line.strip() for line in reversed(stderr.strip().splitlines()) if line.strip()), "no message")
    last = re.sub(r'^time="[^"]*" level=\w+ msg="(.*)"$', r"\1", last)
    for outcome, phrases in REFUSALS:
        if any(phrase in said for phrase in phrases):
            return Verdict(outcome, last)
    return Verdict("error", last)


def refusal(reference: str, found: Verdict, key: Path, fingerprint_: str) -> str:
    """One line: why reference is not deployed, and what to do."""
    short = reference.split("/")[-1]
    return {
        "unsigned": f"{short} is not signed (no sigstore signature beside it in the registry); sign it with "
        "invoke release, or set ALLOW_UNSIGNED=true for a transition; nothing changed",
        "other-key": f"{short} is signed, but not by {key} ({fingerprint_}); release it with this project's key, "
        "or commit the key that signed it; nothing changed",
        "other-repository": f"{short} carries a signature made for another repository ({found.detail}); "
        "release it here with invoke release; nothing changed",
        "missing": f"the registry no longer has {short}; run: invoke release --stage prod (nothing changed)",
    }.get(found.outcome, f"cannot verify the signature of {short}: {found.detail}; nothing changed")


# ------------------------------------------------------------------------------------------- actions
def caller() -> str:
    return f"{os.getuid()}:{os.getgid()}"


def auth_file() -> Path | None:
    """docker's logins (~/.docker/config.json, or DOCKER_CONFIG's), for a registry that wants one."""
    folder = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    found = folder / "config.json"
    return found if found.is_file() else None


def tool_image(settings: Settings, run: Runner) -> str:
    """The skopeo image, made from Debian packages when missing (or built from other inputs)."""
    offline.ensure_offline_images(settings, run, wanted=(TOOL,))
    return offline.offline_tags(settings).of(TOOL)


@dataclass(frozen=True)
class KeyFiles:
    private: Path
    public: Path
    passphrase: Path

    @classmethod
    def of(cls, settings: Settings) -> KeyFiles:
        return cls(
            setting_path(settings, "SIGNING_PRIVATE_KEY"),
            setting_path(settings, "SIGNING_PUBLIC_KEY"),
            setting_path(settings, "SIGNING_PASSPHRASE_FILE"),
        )


def ensure_passphrase(path: Path) -> bool:
    """A random passphrase in path (0600) unless it exists; True when made. Never printed."""
    if path.exists():
        if not path.is_file() or not path.read_text(encoding="utf-8").strip():
            raise UserError(f"{path} (SIGNING_PASSPHRASE_FILE) is not a file with a passphrase; fix or remove it")
        return False
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(secrets.token_urlsafe(32) + "\n")
    return True


def init_keys(settings: Settings, run: Runner, *, dry: bool = False) -> str:
    """Make the key pair; refuse (one line) when a private key exists. Returns the public key's fingerprint."""
    keys = KeyFiles.of(settings)
    if keys.private.exists():
        raise UserError(
            f"a signing key exists already: {keys.private}; to rotate it, see docs/releases-trust.md#rotating-the-key"
        )
    image = tool_image(settings, run)
    if dry:
        run(generate_key_argv(image, keys.private.parent, keys.passphrase, caller()))
        say(f"dry run: would write {keys.private} (0600) and {keys.public}")
        return ""
    made = ensure_passphrase(keys.passphrase)
    keys.private.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with tempfile.TemporaryDirectory(prefix=".keys-", dir=keys.private.parent) as folder:
        out = Path(folder)
        run(generate_key_argv(image, out, keys.passphrase, caller()), capture=True)
        (out / "cosign.private").chmod(0o600)
        keys.public.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(out / "cosign.pub", keys.public)  # signing/ may be on another file system than .lifecycle/
        (out / "cosign.private").replace(keys.private)  # last: its presence means the pair is complete
    found = public_key_fingerprint(settings)
    if made:
        say(f"passphrase generated into {keys.passphrase} (0600); keep a copy where your CI reads secrets")
    say(f"private key {keys.private} (0600, never committed); public key {keys.public}: commit it")
    return found


def sign(settings: Settings, run: Runner, reference: str, tag: str) -> str:
    """Sign the pushed digest `reference` in the registry; return the signer's fingerprint, "" when this checkout has
    no private key (then the release is unsigned, said in one line)."""
    keys = KeyFiles.of(settings)
    if not keys.private.is_file():
        say(
            f"not signed: no signing key at {keys.private} (run: invoke keys.init); "
            "invoke deploy refuses it unless ALLOW_UNSIGNED=true"
        )
        return ""
    if not keys.passphrase.is_file():
        raise UserError(f"no passphrase file {keys.passphrase} (SIGNING_PASSPHRASE_FILE) for {keys.private}")
    found = public_key_fingerprint(settings)
    image = tool_image(settings, run)
    done = run(sign_argv(image, reference, tag, keys.private, keys.passphrase, caller(), auth_file()),
               warn=True, capture=True)  # fmt: skip
    if not done.ok:
        detail = verdict(done.return_code, done.stderr).detail
        raise UserError(f"signing {reference} failed: {detail}; the image is pushed but unsigned")
    say(f"signed {reference.split('/')[-1]} with {found}")
    return found


def verify(settings: Settings, run: Runner, reference: str) -> Verdict:
    """Check reference's signature against SIGNING_PUBLIC_KEY with skopeo; the verdict, never an exception for a
    refusal (missing public key aside)."""
    keys = KeyFiles.of(settings)
    public_key_fingerprint(settings)
    image = tool_image(settings, run)
    with tempfile.TemporaryDirectory(prefix="lifecycle-policy-") as folder:
        policy_file = Path(folder) / "policy.json"
        policy_file.write_text(json.dumps(policy(reference.split("@", 1)[0]), indent=2), encoding="utf-8")
        policy_file.chmod(0o644)
        Path(folder).chmod(0o755)
        done = run(verify_argv(image, reference, keys.public, policy_file, caller(), auth_file()),
                   warn=True, capture=True)  # fmt: skip
    return verdict(done.return_code, done.stderr)


def require_signed(settings: Settings, run: Runner, reference: str, *, dry: bool = False) -> Verdict:
    """Raise (one line, nothing changed) unless reference is signed by this project's key; with ALLOW_UNSIGNED=true
    an unsigned image passes, with a warning every time. A signature by another key never passes."""
    transition = allow_unsigned(settings)
    if dry:
        say(f"dry run: would verify the signature of {reference} against {KeyFiles.of(settings).public}")
        return Verdict("unchecked")
    if transition:
        say("WARNING: ALLOW_UNSIGNED=true: an unsigned image is deployed too; unset it once every release is signed")
        if not KeyFiles.of(settings).public.is_file():
            say("WARNING: no signing public key (invoke keys.init): no signature is checked")
            return Verdict("unchecked")
    found = verify(settings, run, reference)
    if found.ok:
        return found
    if found.outcome == "unsigned" and transition:
        say(f"WARNING: deploying {reference.split('/')[-1]} UNSIGNED (ALLOW_UNSIGNED=true)")
        return found
    keys = KeyFiles.of(settings)
    raise UserError(refusal(reference, found, keys.public, public_key_fingerprint(settings)))
