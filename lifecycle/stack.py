"""The lifecycle operations both front ends run: zip, build, up, down, qa, clean.

A `Suite` holds the resolved settings, a `Runner` and the dry-run flag. Decisions are plain functions;
commands come from `lifecycle.compose`; this module only sequences them.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lifecycle import codezip, offline, tls
from lifecycle import compose as cmd
from lifecycle.doctor import image_available, image_present, port_is_free
from lifecycle.errors import UserError
from lifecycle.runner import Runner
from lifecycle.settings import STAGES, Settings
from lifecycle.tls import wait_for_https

CERTS_DIR = Path("docker") / "certs"
ZIPPED_STAGES = ("test-qa", "stage", "prod")  # the stages whose image carries the code zip
SECRET_STAGES = ("stage", "prod")  # the stages that refuse to start without DJANGO_SECRET_KEY
PROXIED_STAGE = "prod"  # the stage whose profile runs the HTTPS proxy in front of it
QA_REPORT_FILES = ("junit.xml", "coverage.xml", ".coverage", "compose-ps.txt", "compose-logs.txt")


def needs_zip(stage: str) -> bool:
    return cmd.check_stage(stage) in ZIPPED_STAGES


def git_metadata(run: Runner, root: Path) -> dict[str, str]:
    """OCI label values from git; `unknown` outside a checkout. `created` is the commit time, so an
    unchanged tree rebuilds to the same labels (and the cache holds)."""
    queries = {
        "VCS_REF": ["rev-parse", "HEAD"],
        "CREATED": ["log", "-1", "--format=%cI"],
        "VERSION": ["describe", "--tags", "--always", "--dirty"],
        "SOURCE_URL": ["remote", "get-url", "origin"],
    }
    values = {}
    for name, query in queries.items():
        result = run(["git", "-C", str(root), *query], warn=True, capture=True)
        values[name] = result.stdout.strip() if result.ok and result.stdout.strip() else "unknown"
    return values


def sync_certs(source: str, target: Path) -> list[str]:
    """Mirror source/*.crt into the build context's certs folder; return the file names."""
    wanted = {}
    if source:
        folder = Path(source).expanduser()
        if not folder.is_dir():
            raise UserError(f"EXTRA_CA_DIR={source} is not a folder; point it at a folder of *.crt files or unset it")
        wanted = {path.name: path.read_bytes() for path in sorted(folder.glob("*.crt"))}
        if not wanted:
            raise UserError(f"EXTRA_CA_DIR={source} holds no *.crt files; add the proxy's CA certificates or unset it")
    target.mkdir(parents=True, exist_ok=True)
    for stale in target.glob("*.crt"):
        if stale.name not in wanted:
            stale.unlink()
    for name, data in wanted.items():
        path = target / name
        if not path.is_file() or path.read_bytes() != data:
            path.write_bytes(data)
    return sorted(wanted)


def confirm_volume_deletion(
    project: str, yes: bool, ask: Callable[[str], str] | None, what: str = "the database"
) -> None:
    """Deleting a volume (the database's unless `what` says otherwise) needs --yes, or the project name typed at a
    terminal."""
    if yes:
        return
    if ask is None:
        raise UserError(f"--volumes deletes {what} of {project}; add --yes to confirm (nothing was changed)")
    answer = ask(f"This deletes {what} of {project} (its volume). Type the project name to confirm: ")
    if answer.strip() != project:
        raise UserError("not confirmed; nothing was deleted")


def terminal_prompt() -> Callable[[str], str] | None:
    return input if sys.stdin.isatty() else None


def ensure_secret_key(settings: Settings, stage: str) -> None:
    if stage in SECRET_STAGES and not settings.env.get("DJANGO_SECRET_KEY"):
        raise UserError(
            f"{stage} needs DJANGO_SECRET_KEY; set it in .env (scripts/bootstrap writes one when there is no .env)"
        )


@dataclass
class Suite:
    settings: Settings
    run: Runner
    dry: bool = False

    def say(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    # ------------------------------------------------------------------------------------------ zip
    def zip(self) -> codezip.ZipResult | None:
        root, path = self.settings.root, self.settings.zip_path
        if self.dry:
            stale = codezip.is_stale(root, path)
            self.say(f"dry run: {path.relative_to(root)} {'would be rewritten' if stale else 'is current'}")
            return None
        result = codezip.pack_zip(root, path)
        self.say(codezip.summary(result, root))
        return result

    # ---------------------------------------------------------------------------------------- build
    def ensure_base_image(self) -> None:
        image = self.settings.base_image
        if not image_available(self.run, image):
            raise UserError(
                f"base image {image} is neither present nor pullable; check BASE_IMAGE/PY_VERSION/PY_BASE "
                "(the offline images have Python 3.13) or run scripts/bootstrap"
            )

    def build_env(self, stage: str) -> dict[str, str]:
        env = {**self.settings.env, **git_metadata(self.run, self.settings.root)}
        if needs_zip(stage):
            result = self.zip()
            env["ZIP_SHA256"] = result.sha256 if result else "dry-run"
        return env

    def build(self, stage: str, *, no_cache: bool = False) -> None:
        cmd.check_stage(stage)
        if not self.dry:
            certs = sync_certs(self.settings["EXTRA_CA_DIR"], self.settings.root / CERTS_DIR)
            if certs:
                self.say(f"extra CA certificates: {', '.join(certs)}")
        self.ensure_base_image()
        self.run(cmd.build(self.settings, stage, no_cache=no_cache), env=self.build_env(stage))

    # ------------------------------------------------------------------------------------ up / down
    def url(self, stage: str = "dev") -> str:
        if stage == PROXIED_STAGE:
            return f"https://127.0.0.1:{self.settings['HTTPS_PORT']}/"
        return f"http://127.0.0.1:{self.settings['APP_PORT']}/"

    def ensure_port_free(self, stage: str, setting: str = "APP_PORT", service: str | None = None) -> None:
        """A taken port fails early with the fix, unless it is this stage's own running container."""
        port = int(self.settings[setting])
        if self.dry or port_is_free(port):
            return
        ours = self.run(
            cmd.compose(self.settings, "ps", "--quiet", service or stage, stage=stage),
            env=self.settings.env,
            warn=True,
            capture=True,
        ).stdout.strip()
        if not ours:
            raise UserError(
                f"127.0.0.1:{port} ({setting}) is already in use; stop what listens there "
                f"(invoke down, if it is another stage of this checkout) or set {setting} in .env"
            )

    def proxy_settings(self) -> Settings:
        """The settings plus what the proxy service needs: its image (official when present or pullable, else
        offline) and the certificate's absolute paths (the local one made when missing)."""
        if self.dry:
            return self.settings
        files = tls.ensure_certificate(self.settings, self.run)
        image = offline.available_or_offline(self.settings, self.run, "proxy", self.settings["PROXY_IMAGE"])
        return self.settings.override(PROXY_IMAGE=image, TLS_CERT_FILE=str(files.cert), TLS_KEY_FILE=str(files.key))

    def up(self, stage: str, *, build: bool = True, wait_timeout: int = 180) -> str:
        if cmd.check_stage(stage) == "test-qa":
            raise UserError("test-qa runs the tests and exits, it is not a service to keep up; use invoke qa")
        ensure_secret_key(self.settings, stage)
        self.ensure_port_free(stage)
        settings = self.settings
        if stage == PROXIED_STAGE:
            self.ensure_port_free(stage, "HTTPS_PORT", "proxy")
            settings = self.proxy_settings()
        if build:
            self.build(stage)
        result = self.run(cmd.up(settings, stage, wait_timeout=wait_timeout), env=settings.env, warn=True)
        if not result.ok:
            self.run(cmd.logs(settings, tail="40"), env=settings.env, warn=True)
            raise UserError(
                f"{stage} did not come up healthy (deadline {wait_timeout}s); see the logs above (invoke logs)"
            )
        if stage == PROXIED_STAGE and not self.dry:
            wait_for_https(int(settings["HTTPS_PORT"]))
        self.say(f"{stage} is up and healthy: {self.url(stage)}")
        if stage == PROXIED_STAGE:
            self.say(f"plain HTTP for probes: http://127.0.0.1:{settings['APP_PORT']}/health; trust: invoke tls.trust")
        return self.url(stage)

    def down(
        self,
        *,
        volumes: bool = False,
        yes: bool = False,
        project: str | None = None,
        ask: Callable[[str], str] | None = None,
    ) -> None:
        if volumes:
            confirm_volume_deletion(project or self.settings.project_name, yes, ask)
        self.run(cmd.down(self.settings, volumes=volumes, project=project), env=self.settings.env)

    # ------------------------------------------------------------------------------------------- qa
    def qa(self, pytest_args: Sequence[str] = (), reports: Path | None = None) -> int:
        """Build test-qa, run pytest in it against a throwaway database, copy the reports out, tear down.

        Runs under its own compose project (`<project>-qa`), so its database volume is never the one
        `invoke up` uses, and deleting it at the end loses nothing; and with its own image tag
        (`<project>:test-qa`), so two checkouts' runs never swap images between build and run.
        """
        settings = self.settings.override(TEST_QA_IMAGE=f"{self.settings.project_name}:test-qa")
        env = settings.env
        reports = reports or settings.root / "reports"
        project = f"{settings.project_name}-qa"
        container = f"{project}-pytest"
        Suite(settings, self.run, self.dry).build("test-qa")
        if not self.dry:  # a report left from an earlier run must not pass for this run's
            for name in QA_REPORT_FILES:
                (reports / name).unlink(missing_ok=True)
        status = 1
        try:
            self.run(cmd.compose(settings, "up", "--detach", "--wait", "db", stage="test-qa", project=project), env=env)
            status = self.run(
                cmd.run(settings, "test-qa", pytest_args, name=container, remove=False, project=project),
                env=env,
                warn=True,
            ).return_code
            if not self.dry:
                reports.mkdir(parents=True, exist_ok=True)
            self.run(cmd.docker("cp", f"{container}:/reports/.", str(reports)), env=env, warn=True)
            if status:
                self.dump_state(project, reports)
        finally:
            self.run(cmd.docker("rm", "--force", "--volumes", container), env=env, warn=True, capture=True)
            self.run(cmd.down(settings, volumes=True, project=project), env=env, warn=True)
        self.say(f"qa: pytest exited {status}; reports in {reports}")
        return status

    def dump_state(self, project: str, reports: Path) -> None:
        """After a failure, keep what explains it: compose ps and the logs, next to the test reports."""
        for name, argv in (
            ("compose-ps.txt", cmd.ps(self.settings, project=project)),
            ("compose-logs.txt", cmd.logs(self.settings, tail="all", project=project)),
        ):
            output = self.run(argv, env=self.settings.env, warn=True, capture=True).stdout
            if not self.dry:
                (reports / name).write_text(output, encoding="utf-8")

    # ---------------------------------------------------------------------------------------- clean
    def clean(self, *, volumes: bool = False, yes: bool = False, ask: Callable[[str], str] | None = None) -> None:
        """Remove what the suite made for this checkout: containers, networks, stage images, zip, reports."""
        self.down(volumes=volumes, yes=yes, ask=ask)
        images = [self.settings.image(stage) for stage in STAGES] + [f"{self.settings.project_name}:test-qa"]
        present = [image for image in images if image_present(self.run, image)]
        if present:
            self.run(cmd.docker("image", "rm", *present), env=self.settings.env)
        paths = [
            self.settings.zip_path,
            codezip.manifest_path_for(self.settings.zip_path),
            self.settings.root / "reports",
            *(self.settings.root / CERTS_DIR).glob("*.crt"),
        ]
        for path in paths:
            if path.exists():
                self.say(f"remove {path.relative_to(self.settings.root)}")
                if self.dry:
                    continue
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()
