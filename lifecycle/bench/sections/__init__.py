"""The sections of the benchmark, in the order they run (the one registry: add a new section here)."""

from __future__ import annotations

from lifecycle.bench.context import Section
from lifecycle.bench.sections import (
    adopt,
    backup,
    builds,
    cluster,
    code_zip,
    deploy,
    images,
    pipuv,
    proxy,
    qa,
    release,
    serve,
    up,
)

SECTIONS: tuple[Section, ...] = (
    code_zip.SECTION,
    builds.COLD,
    builds.REBUILD,
    images.SECTION,
    qa.SECTION,
    up.SECTION,
    serve.SECTION,
    proxy.SECTION,
    release.SECTION,
    deploy.SECTION,
    backup.SECTION,
    pipuv.SECTION,
    cluster.SECTION,
    adopt.SECTION,  # last: it reads what the cold, rebuild, images and up sections measured
)
TARGETS = {name: limit for section in SECTIONS for name, limit in section.targets.items()}
