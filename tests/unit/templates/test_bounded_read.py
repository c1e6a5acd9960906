"""airflow_ml/templates/bounded_read.py: only regular files are opened for good, and never read past their bound.

The loads that use it (city files, suites) are tested in test_yaml_lines.py and test_suite_files.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from airflow_ml.templates.bounded_read import UnreadableFile, read_bounded


# A FIFO's open for reading would wait for a writer forever: the signal method ends the test if the guard goes.
@pytest.mark.timeout(20, method="signal")
def test_a_fifo_is_refused_at_once_naming_the_file_and_the_fix(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "porto.yaml")

    with pytest.raises(UnreadableFile, match=r"porto.yaml is a FIFO, not a regular file.*replace it"):
        read_bounded(tmp_path / "porto.yaml")


@pytest.mark.timeout(20, method="signal")
def test_a_link_to_dev_zero_is_refused_without_reading_it(tmp_path: Path) -> None:
    (tmp_path / "porto.yaml").symlink_to("/dev/zero")

    with pytest.raises(UnreadableFile, match=r"porto.yaml is a device or socket"):
        read_bounded(tmp_path / "porto.yaml")


def test_a_folder_named_like_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "porto.yaml").mkdir()

    with pytest.raises(UnreadableFile, match=r"porto.yaml is a directory"):
        read_bounded(tmp_path / "porto.yaml")


def test_a_file_is_read_whole_up_to_its_bound_and_refused_one_byte_past_it(tmp_path: Path) -> None:
    path = tmp_path / "city.yaml"
    path.write_bytes(b"x" * 100)

    assert read_bounded(path, max_bytes=100) == b"x" * 100
    with pytest.raises(UnreadableFile, match=r"city.yaml holds more than 99 bytes"):
        read_bounded(path, max_bytes=99)


def test_a_missing_file_raises_as_a_plain_read_does(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_bounded(tmp_path / "absent.yaml")
