"""Building one stage's image: the code zip, the build inputs staged in .lifecycle/build/, the build key that
skips a build whose inputs have not changed, and the SBOM image beside it (reports/sbom-STAGE.json).

`Builder` is the build half of `Local` (lifecycle/local.py), which inherits it; `invoke qa` builds its own test-qa
image through it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from lifecycle import buildkey, codezip, container_env, layout, projectlock, sbom
from lifecycle.buildinputs import CERTS_DIR, git_metadata, sync_certs
from lifecycle.commands import compose
from lifecycle.context import UsesContext
from lifecycle.errors import CommandFailed, UserError
from lifecycle.lazy import lazy_module
from lifecycle.probes import ids_and_label, image_available, image_id
from lifecycle.stages import TEST_QA, Stage

offline = lazy_module("lifecycle.offline")  # only when a base image is missing

# What docker/check_libs.py prints, at image build, for a compiled module whose library the image lacks.
MISSING_LIBRARY = re.compile(r"missing shared library: (.+?)\s*$", re.MULTILINE)


def build_failure(argv: Sequence[str], return_code: int, output: str) -> UserError | CommandFailed:
    """A failed build as one line when it is one the suite knows (a missing shared library: the .so, the
    distribution, the setting to add its package to), else the failed command (its output, above, says why)."""
    missing = list(dict.fromkeys(MISSING_LIBRARY.findall(output)))
    if missing:
        more = f" (and {len(missing) - 1} more above)" if len(missing) > 1 else ""
        return UserError(f"{missing[0]}{more}; nothing was started")
    return CommandFailed(argv, return_code)


class Builder(UsesContext):
    """Zip and build the stages of one checkout, sequenced over a `Context`."""

    # ------------------------------------------------------------------------------------------ zip
    def zip(self) -> codezip.ZipResult | None:
        root, path = self.settings.root, self.settings.zip_path
        code, include = self.settings.code_root, self.settings.code_include
        data = [root / self.settings.typed("BACKUP_DIR")]  # the suite's data: never in the zip, even through a link
        if self.dry:
            stale = codezip.is_stale(code, path, include, skip=data)
            self.say(f"dry run: {path.relative_to(root)} {'would be rewritten' if stale else 'is current'}")
            return None
        result = codezip.pack_zip(code, path, include, skip=data)
        self.say(codezip.summary(result, root))
        return result

    # ---------------------------------------------------------------------------------------- build
    def ensure_base_image(self) -> str:
        """The base image's id, pulling it when it is not present; one line when it cannot be had."""
        image = self.settings.base_image
        found = image_id(self.run, image)
        if found is None and image_available(self.run, image):
            found = image_id(self.run, image)
        if found is None:
            fix = offline.base_image_fix(self.settings)
            raise UserError(f"base image {image} is neither present nor pullable; {fix}")
        return found

    def inspect_builds(self, *tags: str) -> tuple[str, list[tuple[str, str | None] | None]]:
        """The base image's id (pulled when missing) and, for each tag, its (image id, build key), or None when
        it is not there: one docker call when all are present, as on every rebuild."""
        found = ids_and_label(self.run, [self.settings.base_image, *tags], buildkey.LABEL)
        if found:
            return found[0][0], found[1:]
        built = [(ids_and_label(self.run, [tag], buildkey.LABEL) or [None])[0] for tag in tags]
        return self.ensure_base_image(), built

    def build_env(self, stage: Stage) -> dict[str, str]:
        env = {**self.settings.env, **git_metadata(self.run, self.settings.root)}
        if stage.zipped:
            result = self.zip()
            env["ZIP_SHA256"] = result.sha256 if result else "dry-run"
        return env

    def stage_image(self, stage: Stage) -> str:
        """The image reference compose gives the stage's build (`invoke qa` names its own test-qa image)."""
        return (stage is TEST_QA and self.settings.env.get("TEST_QA_IMAGE")) or self.settings.image(stage)

    def build(self, stage: Stage, *, no_cache: bool = False) -> None:
        """Build the stage together with its SBOM image, and copy the SBOM to reports/sbom-STAGE.json; or
        nothing when the image's build key says it is built from these inputs and its SBOM is in reports/.

        The SBOM image is built only when its own key changed (dependencies, not code) or its SBOM is not the one
        in reports/. stage and prod carry the SBOM's sha256 as a label, which must be known before their build:
        the build takes the last one recorded, and only when the SBOM image changed is the stage built again
        with the new value (a label-only rebuild from cache). A code-only rebuild stays one docker call before
        one cached build of the stage alone.
        """
        container_env.check(self.settings.env)
        if not self.dry:
            staged = layout.stage_suite_code(self.settings.root)
            if staged:
                self.say(f"the suite's code for the images: {len(staged)} file(s) copied into {layout.SUITE_CODE_DIR}")
            certs = sync_certs(self.settings.extra_ca_certs(), self.settings.root / CERTS_DIR)
            if certs:
                self.say(f"extra CA certificates: {', '.join(certs)}")
        self.stage_build_inputs()
        tag = self.stage_image(stage)
        base_id, (built, built_sbom) = self.inspect_builds(tag, self.settings.sbom_image(stage))
        env = self.build_env(stage)
        recorded = sbom.Record.read(self.settings.root, stage)
        env["SBOM_SHA256"] = recorded.sha256
        key, sbom_key = self.build_key(stage.target, env, base_id), self.build_key(stage.sbom, env, base_id)
        sbom_current = (
            not no_cache
            and sbom.report_path(self.settings.root, stage).is_file()
            and built_sbom == (recorded.image_id, sbom_key)
        )
        if sbom_current and not self.dry and built is not None and built[1] == key:
            self.say(f"{tag} is up to date: built from these inputs (build key {key[:12]}); nothing to build")
            return
        argv = compose.build_argv(self.settings, stage, no_cache=no_cache, with_sbom=not sbom_current)
        result = self.run(argv, env={**env, "BUILD_KEY": key, "SBOM_BUILD_KEY": sbom_key}, warn=True)
        if not result.ok:
            raise build_failure(argv, result.return_code, result.stdout + result.stderr)
        if sbom_current:
            return
        current = sbom.refresh(self.ctx, stage, env, recorded)
        if current.sha256 != recorded.sha256 and stage.carries_sbom and not self.dry:
            env["SBOM_SHA256"] = current.sha256
            self.run(
                compose.build_argv(self.settings, stage),
                env={**env, "BUILD_KEY": self.build_key(stage.target, env, base_id), "SBOM_BUILD_KEY": sbom_key},
            )

    def stage_build_inputs(self) -> None:
        """What the Dockerfile reads from .lifecycle/build/: the project's hash-locked dependencies (REQUIREMENTS,
        REQUIREMENTS_TEST: copied when already locked, else compiled, cached by their inputs' digest) and its tests
        outside the code (TESTS). Before the build key, which covers both."""
        if not self.dry:
            projectlock.stage_tests(self.settings.root, self.settings.code_root, self.settings.typed("TESTS"))
        projectlock.stage_locks(self.ctx)

    def build_key(self, target: str, env: dict[str, str], base_id: str) -> str:
        return buildkey.build_key(self.settings.root, target, env, base_id, extra=[self.settings.project_name])
