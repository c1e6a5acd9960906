"""A local source and its symbolic links (airflow_ml.data.partitions): inside the data root, or refused.

Real links in tmp_path, on demo data: a ``date=`` folder or a partition file that links out of the data root
is refused with a message naming the link, its target and the fix (it used to say "remove the empty
folder", or skip the file without a word).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from airflow_ml.data.demo import write_demo_data
from airflow_ml.data.partitions import list_partitions
from airflow_ml.data.snapshot import resolve_source, take_snapshot
from airflow_ml.exceptions import DataError, SourceOutsideDataRoot


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lake")
    write_demo_data(root, cities=["lisbon"], batch="later", scale=0.05)
    return root


@pytest.fixture
def world(lake: Path, tmp_path: Path) -> dict[str, Path]:
    """A data root with lisbon's partitions, and a folder outside it holding one more day."""
    data_root = tmp_path / "data"
    source = data_root / "raw" / "trips" / "lisbon"
    shutil.copytree(lake / "raw" / "trips" / "lisbon", source)
    outside = tmp_path / "elsewhere"
    last = sorted(source.glob("date=*"))[-1]
    shutil.move(last, outside / last.name)
    return {"data_root": data_root, "source": source, "outside": outside, "day": outside / last.name}


def test_a_partition_folder_linking_out_of_the_data_root_is_refused_naming_link_and_target(
    world: dict[str, Path],
) -> None:
    link = world["source"] / world["day"].name
    link.symlink_to(world["day"], target_is_directory=True)

    with pytest.raises(DataError) as info:
        list_partitions(str(world["source"]), data_root=str(world["data_root"]))

    message = str(info.value)
    assert f"{str(link)!r} is a symbolic link to {str(world['day'].resolve())!r}" in message
    assert f"which leaves the data root {str(world['data_root'])!r}" in message
    assert "copy the files into the partition instead of linking them" in message
    assert "remove the empty folder" not in message


def test_a_partition_file_linking_out_of_the_data_root_is_refused(world: dict[str, Path]) -> None:
    # Today the linked file is skipped without a word: the day's rows would silently go missing.
    folder = world["source"] / world["day"].name
    folder.mkdir()
    file = next(world["day"].glob("*.parquet"))
    (folder / file.name).symlink_to(file)

    with pytest.raises(DataError, match=r"part-later\.parquet' is a symbolic link to .* which leaves the data root"):
        take_snapshot(
            str(world["source"]),
            str(world["data_root"] / "snapshots"),
            template="ride_duration",
            city="lisbon",
            run_id="r",
            data_root=str(world["data_root"]),
        )
    assert not (world["data_root"] / "snapshots").exists()


def test_links_inside_the_data_root_are_followed(world: dict[str, Path]) -> None:
    shared = world["data_root"] / "shared" / world["day"].name
    shutil.copytree(world["day"], shared)
    (world["source"] / world["day"].name).symlink_to(shared, target_is_directory=True)
    expected = sum(len(pd.read_parquet(p)) for p in [*world["source"].glob("date=*/*.parquet")])

    manifest = take_snapshot(
        str(world["source"]),
        str(world["data_root"] / "snapshots"),
        template="ride_duration",
        city="lisbon",
        run_id="r",
        data_root=str(world["data_root"]),
    )

    assert manifest.partitions[-1] == world["day"].name.removeprefix("date=")
    assert manifest.row_count == expected
    assert len(manifest.partitions) == 14


def test_without_a_data_root_links_may_not_leave_the_source(world: dict[str, Path]) -> None:
    shared = world["data_root"] / "shared" / world["day"].name
    shutil.copytree(world["day"], shared)
    (world["source"] / world["day"].name).symlink_to(shared, target_is_directory=True)

    with pytest.raises(DataError, match=r"which leaves the source '.*lisbon'"):
        list_partitions(str(world["source"]))


def test_a_dangling_link_says_its_target_does_not_exist(world: dict[str, Path]) -> None:
    link = world["source"] / "date=2030-01-01"
    link.symlink_to(world["data_root"] / "gone", target_is_directory=True)

    with pytest.raises(DataError, match=r"date=2030-01-01' is a symbolic link to '.*gone', which does not exist"):
        list_partitions(str(world["source"]), data_root=str(world["data_root"]))


# --- The source folder itself must lie under the data root (review M2) -------------------------------------------


def _take(source: Path | str | list[str], data_root: Path) -> object:
    return take_snapshot(
        source if isinstance(source, list) else str(source),
        str(data_root / "snapshots"),
        template="ride_duration",
        city="lisbon",
        run_id="r",
        data_root=str(data_root),
    )


def test_a_source_folder_that_links_out_of_the_data_root_is_refused_naming_link_and_target(
    world: dict[str, Path], tmp_path: Path
) -> None:
    # Today the linked folder is read without a word: its files come from elsewhere on the machine.
    elsewhere = tmp_path / "elsewhere" / "lisbon"
    shutil.move(world["source"], elsewhere)
    world["source"].symlink_to(elsewhere, target_is_directory=True)

    with pytest.raises(SourceOutsideDataRoot) as info:
        _take(world["source"], world["data_root"])

    message = str(info.value)
    assert f"{str(world['source'])!r} is a symbolic link to {str(elsewhere.resolve())!r}" in message
    assert f"which leaves the data root {str(world['data_root'])!r}" in message
    assert "write dataset.source from {data_root} down" in message
    assert not (world["data_root"] / "snapshots").exists()


def test_a_folder_above_the_source_that_links_out_is_named(world: dict[str, Path], tmp_path: Path) -> None:
    trips = world["data_root"] / "raw" / "trips"
    shutil.move(trips, tmp_path / "other-trips")
    trips.symlink_to(tmp_path / "other-trips", target_is_directory=True)

    with pytest.raises(SourceOutsideDataRoot, match=f"{str(trips)!r} is a symbolic link to .*other-trips'"):
        _take(world["source"], world["data_root"])


def test_a_source_elsewhere_on_the_disk_is_refused(world: dict[str, Path], tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere" / "lisbon"
    shutil.copytree(world["source"], elsewhere)

    with pytest.raises(SourceOutsideDataRoot) as info:
        _take(elsewhere, world["data_root"])

    assert f"data source {str(elsewhere)!r} is not under the data root {str(world['data_root'])!r}" in str(info.value)
    assert "set AIRFLOW_ML_DATA_ROOT to a folder that holds it" in str(info.value)


def test_a_parents_member_outside_the_data_root_is_refused_not_skipped(world: dict[str, Path], tmp_path: Path) -> None:
    # A member without data is skipped so that its parent still trains; one outside the data root is no such member.
    elsewhere = tmp_path / "elsewhere" / "porto"
    shutil.copytree(world["source"], elsewhere)

    with pytest.raises(SourceOutsideDataRoot, match="is not under the data root"):
        _take([str(world["source"]), str(elsewhere)], world["data_root"])


def test_a_source_under_a_linked_data_root_is_read(world: dict[str, Path], tmp_path: Path) -> None:
    # The data root itself may be a link (a mount point, say): what counts is where the source really is.
    alias = tmp_path / "data-alias"
    alias.symlink_to(world["data_root"], target_is_directory=True)

    manifest = _take(alias / "raw" / "trips" / "lisbon", alias)

    assert manifest.row_count > 0  # type: ignore[attr-defined]


@pytest.mark.parametrize("pattern", ["{data_root}/../outside/{city}", "{data_root}/raw/../../etc/{city}"])
def test_a_dotdot_in_the_source_pattern_is_refused_at_run_time(pattern: str) -> None:
    with pytest.raises(SourceOutsideDataRoot) as info:
        resolve_source(pattern, data_root="/srv/data", city="lisbon")

    message = str(info.value)
    assert f"dataset.source {pattern!r} has a '..' segment" in message
    assert "the data root '/srv/data'" in message
    assert "write the source from {data_root} down without '..'" in message


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_a_digest_is_fed_each_files_name_size_and_bytes_and_the_rows_read_are_the_same(
    tmp_path: Path, fmt: str
) -> None:
    import hashlib

    from airflow_ml.data.partitions import read_files

    folder = tmp_path / "date=2026-01-05"
    folder.mkdir()
    frames = [pd.DataFrame({"x": [1, 2], "s": ["a", "b"]}), pd.DataFrame({"x": [3], "s": ["é"]})]
    paths = []
    for number, frame in enumerate(frames):
        path = folder / f"part-{number}.{fmt}"
        frame.to_parquet(path, index=False) if fmt == "parquet" else frame.to_csv(path, index=False)
        paths.append(str(path))
    expected = hashlib.sha256()
    for path in paths:
        data = Path(path).read_bytes()
        expected.update(f"{Path(path).name}:{len(data)}:".encode() + data)

    digest = hashlib.sha256()
    hashed = read_files(str(tmp_path), paths, fmt, digest=digest)

    assert digest.hexdigest() == expected.hexdigest()
    pd.testing.assert_frame_equal(hashed, read_files(str(tmp_path), paths, fmt))
