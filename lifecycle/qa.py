"""`invoke qa` / `nox -s qa`: the site's tests in the test-qa image against a throwaway database, under a compose
project of their own, the reports copied out to reports/ (and compose ps and logs beside them on a failure).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lifecycle import testmon
from lifecycle.build import Builder
from lifecycle.commands import compose, docker
from lifecycle.context import UsesContext
from lifecycle.stages import TEST_QA

QA_REPORT_FILES = ("junit.xml", "coverage.xml", ".coverage", "compose-ps.txt", "compose-logs.txt")


class QaRun(UsesContext):
    """The qa half of `Local` (lifecycle/local.py), which inherits it."""

    def qa(self, pytest_args: Sequence[str] = (), reports: Path | None = None, *, changed: bool = False) -> int:
        """Build test-qa, run pytest in it against a throwaway database, copy the reports out, tear down.

        changed: only the tests affected by what changed since the last --changed run (lifecycle/testmon.py).

        Runs under its own compose project (`<project>-qa`), so its database volume is never the one
        `invoke up` uses, and deleting it at the end loses nothing; with this checkout's image (`<project>:test-qa`,
        built under the checkout's project), so two checkouts' runs never swap images between build and run.
        """
        settings = self.settings.override(TEST_QA_IMAGE=self.qa_image(), DB_TEST_DATABASES="yes")
        env = settings.env
        reports = reports or settings.root / "reports"
        project = f"{settings.project_name}-qa"
        container = f"{project}-pytest"
        Builder(self.ctx.with_settings(settings)).build(TEST_QA)
        if not self.dry:  # a report left from an earlier run must not pass for this run's
            for name in QA_REPORT_FILES:
                (reports / name).unlink(missing_ok=True)
        status = 1
        try:
            self.run(compose.start_db_argv(settings, stage=TEST_QA, project=project), env=env)
            changes, volumes = testmon.run_options(settings) if changed else ([], [])
            status = self.run(
                compose.run_argv(
                    settings,
                    TEST_QA,
                    pytest_args,
                    name=container,
                    remove=False,
                    project=project,
                    env=changes,
                    volumes=volumes,
                ),
                env=env,
                warn=True,
            ).return_code
            if not self.dry:
                reports.mkdir(parents=True, exist_ok=True)
            self.run(docker.copy_out_argv(container, "/reports/.", str(reports)), env=env, warn=True)
            if status:
                self.dump_state(project, reports)
        finally:
            self.run(docker.container_rm_argv(container, volumes=True), env=env, warn=True, capture=True)
            self.run(compose.down_argv(settings, volumes=True, project=project), env=env, warn=True)
        if self.dry:
            self.say(f"dry run: would run pytest in test-qa and copy its reports to {reports}")
            return 0
        self.say(f"qa: pytest exited {status}; reports in {reports}")
        return status

    def qa_image(self) -> str:
        return self.settings.image(TEST_QA)

    def dump_state(self, project: str, reports: Path) -> None:
        """After a failure, keep what explains it: compose ps and the logs, next to the test reports."""
        for name, argv in (
            ("compose-ps.txt", compose.ps_argv(self.settings, project=project)),
            ("compose-logs.txt", compose.logs_argv(self.settings, tail="all", project=project)),
        ):
            output = self.run(argv, env=self.settings.env, warn=True, capture=True).stdout
            if not self.dry:
                (reports / name).write_text(output, encoding="utf-8")
