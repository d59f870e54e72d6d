"""Fixtures for the host-side unit tests (no engine): settings for a tmp checkout. The recording runner is
tests.helpers.recording.RecordingRunner."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecycle.settings import Settings, load_settings


@pytest.fixture
def make_settings(tmp_path: Path):
    """`make_settings(**environ)`: Settings for a tmp checkout, with only the given environment."""

    def make(root: Path | None = None, **environ: str) -> Settings:
        return load_settings(root=root or tmp_path, environ=environ)

    return make
