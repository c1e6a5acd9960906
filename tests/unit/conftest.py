"""Fixtures of the unit tier (helpers live in :mod:`tests.support`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.city_files import templates_folder


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A templates folder holding a copy of the repo's ride_duration template and an empty cities folder."""
    return templates_folder(tmp_path)
