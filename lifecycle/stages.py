"""What a stage is: the one table of the Dockerfile's stages and what each one means to the suite.

A front end (tasks.py, noxfile.py) turns the user's string into a `Stage` once, with `Stage.parse`;
everything after that (command builders, `Local`, release and deploy tasks) takes the `Stage` and never
checks the name again.
"""

from __future__ import annotations

from dataclasses import dataclass

from lifecycle.errors import UserError


@dataclass(frozen=True)
class Stage:
    name: str  # what the user types: `--stage prod`
    target: str  # the Dockerfile stage it builds (`--target`)
    service: str  # the compose service, and the profile that enables it with db
    tag: str  # the image tag suffix: PROJ_NAME:TAG
    zipped: bool  # the image embeds the code zip, so building it re-zips first
    needs_secret_key: bool  # refuses to start without DJANGO_SECRET_KEY
    serves_http: bool  # a server that `invoke up` keeps running on APP_PORT
    runs_through_qa: bool  # runs pytest and exits: `invoke qa`, never `invoke up`
    sbom: str  # the compose service, Dockerfile stage and tag of the image holding its SBOM
    carries_sbom: bool  # ships its SBOM, with the sha256 as a label (known before the build: stack.Local.build)
    has_debugger: bool  # debugpy is installed: `invoke up --debug`
    behind_https_proxy: bool  # its profile runs the TLS proxy in front of it, on HTTPS_PORT

    @property
    def profile(self) -> str:
        return self.service

    @property
    def test_databases(self) -> bool:
        """The db volume it first creates lets the app user make `test_*` databases: the stages tests run in
        (test-qa, and dev, whose shell runs pytest); never stage or prod (docker/db-init)."""
        return self.runs_through_qa or self.has_debugger

    @classmethod
    def parse(cls, name: str) -> Stage:
        """The stage called `name`, or the one-line error that lists the valid names."""
        for stage in STAGES:
            if stage.name == name:
                return stage
        raise UserError(f"unknown stage {name!r}; use one of: {', '.join(NAMES)}")

    def __str__(self) -> str:
        return self.name


# fmt: off
STAGES = (
    #     name       target     service    tag        zipped secret http   qa     sbom            ships  debug  https
    Stage("dev",     "dev",     "dev",     "dev",     False, False, True,  False, "sbom-dev",     False, True,  False),
    Stage("test-qa", "test-qa", "test-qa", "test-qa", True,  False, False, True,  "sbom-test-qa", False, False, False),
    Stage("stage",   "stage",   "stage",   "stage",   True,  True,  True,  False, "sbom-runtime", True,  False, False),
    Stage("prod",    "prod",    "prod",    "prod",    True,  True,  True,  False, "sbom-runtime", True,  False, True),
)
# fmt: on
NAMES = tuple(stage.name for stage in STAGES)
DEV, TEST_QA, STAGE, PROD = STAGES
