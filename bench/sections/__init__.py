"""The sections of the benchmark, in the order they run (the one registry: add a new section here)."""

from __future__ import annotations

from bench.context import Section
from bench.sections import (
    adopt,
    backup,
    builds,
    cluster,
    code_zip,
    deploy,
    devloop,
    images,
    observe,
    pipuv,
    proxy,
    qa,
    release,
    serve,
    trust,
    up,
)

SECTIONS: tuple[Section, ...] = (
    code_zip.SECTION,
    builds.COLD,
    builds.REBUILD,
    images.SECTION,
    qa.SECTION,
    devloop.SECTION,
    up.SECTION,
    serve.SECTION,
    proxy.SECTION,
    observe.SECTION,
    release.SECTION,
    trust.SECTION,
    deploy.SECTION,
    backup.SECTION,
    pipuv.SECTION,
    cluster.SECTION,
    adopt.SECTION,  # last: it reads what the cold, rebuild, images and up sections measured
)
TARGETS = {name: limit for section in SECTIONS for name, limit in section.targets.items()}
