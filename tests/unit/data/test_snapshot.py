"""Unit tests of immutable, content-hashed snapshots (airflow_ml.data.snapshot) on demo data."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import stat
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from airflow_ml.data.demo import batch_days, write_demo_data
from airflow_ml.data.snapshot import (
    DATA_FILE,
    MANIFEST,
    content_hash,
    list_partitions,
    load_manifest,
    read_snapshot,
    read_snapshot_schema,
    resolve_source,
    safe_segment,
    select_window,
    take_snapshot,
)
from airflow_ml.exceptions import DataContractError, DataError

RUN_ID = "manual__2026-03-01T02:00:00+00:00"


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lake")
    write_demo_data(root, cities=["lisbon"], batch="initial", scale=0.1)
    return root


@pytest.fixture
def source(lake: Path, tmp_path: Path) -> Path:
    """A private copy of lisbon's partitions, so a test may change them."""
    copy = tmp_path / "raw" / "trips" / "lisbon"
    shutil.copytree(lake / "raw" / "trips" / "lisbon", copy)
    return copy


def read_partitions(source: Path, dates: list[str] | None = None) -> pd.DataFrame:
    folders = sorted(source.glob("date=*"))
    if dates is not None:
        folders = [f for f in folders if f.name.removeprefix("date=") in dates]
    return pd.concat([pd.read_parquet(p) for f in folders for p in sorted(f.glob("*.parquet"))], ignore_index=True)


def test_take_snapshot_writes_data_and_manifest(source: Path, tmp_path: Path) -> None:
    root = tmp_path / "snapshots"

    manifest = take_snapshot(str(source), str(root), template="ride_duration", city="lisbon", run_id=RUN_ID)

    expected = read_partitions(source)
    folder = Path(manifest.uri)
    assert folder.parent.parent.parent == root
    assert (folder.parent.parent.name, folder.parent.name) == ("ride_duration", "lisbon")
    assert (folder / DATA_FILE).is_file()
    assert (folder / MANIFEST).is_file()
    assert manifest.row_count == len(expected)
    assert manifest.columns == {c: str(t) for c, t in expected.dtypes.items()}
    assert manifest.partitions == sorted(p.name.removeprefix("date=") for p in source.glob("date=*"))
    assert manifest.content_hash == content_hash(expected)
    assert len(manifest.content_hash) == 64
    assert manifest.city == "lisbon"
    assert manifest.run_id == RUN_ID
    assert manifest.source == str(source)
    on_disk = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    assert on_disk == manifest.to_dict()
    assert load_manifest(manifest.uri) == manifest
    snapshot = read_snapshot(manifest.uri)
    pd.testing.assert_frame_equal(snapshot, expected)
    assert list(read_snapshot(manifest.uri, columns=["trip_id"]).columns) == ["trip_id"]
    schema = read_snapshot_schema(manifest.uri)
    assert schema.empty
    pd.testing.assert_series_equal(schema.dtypes, expected.dtypes)  # every column, in order, with its type


def test_same_run_id_reuses_the_snapshot(source: Path, tmp_path: Path) -> None:
    root = str(tmp_path / "snapshots")
    first = take_snapshot(str(source), root, template="ride_duration", city="lisbon", run_id=RUN_ID)
    data_file = Path(first.uri) / DATA_FILE
    before = data_file.stat().st_mtime_ns
    # new data arrives between the attempts: a retry must still see the rows of its first attempt
    shutil.rmtree(next(iter(sorted(source.glob("date=*")))))

    second = take_snapshot(str(source), root, template="ride_duration", city="lisbon", run_id=RUN_ID)

    assert second == first
    assert second.created_at == first.created_at
    assert data_file.stat().st_mtime_ns == before
    assert len(read_snapshot(second.uri)) == first.row_count


def test_other_run_id_takes_a_new_snapshot(source: Path, tmp_path: Path) -> None:
    root = str(tmp_path / "snapshots")
    first = take_snapshot(str(source), root, template="ride_duration", city="lisbon", run_id="run_1")
    shutil.rmtree(sorted(source.glob("date=*"))[-1])

    second = take_snapshot(str(source), root, template="ride_duration", city="lisbon", run_id="run_2")

    assert second.uri != first.uri
    assert second.row_count < first.row_count
    assert second.content_hash != first.content_hash


def test_two_templates_sharing_a_city_id_and_run_id_never_share_a_snapshot(tmp_path: Path) -> None:
    # Two DAGs on the same cron get the same scheduled__ run id: late.site_a and delay.site_a.
    write_demo_data(tmp_path / "late", cities=["lisbon"], batch="initial", scale=0.1)
    write_demo_data(tmp_path / "delay", cities=["lisbon"], batch="initial", scale=0.05, seed=3)
    root = str(tmp_path / "snapshots")
    run_id = "scheduled__2026-03-01T02:00:00+00:00"

    late = take_snapshot(str(tmp_path / "late/raw/trips/lisbon"), root, template="late", city="lisbon", run_id=run_id)
    delay = take_snapshot(
        str(tmp_path / "delay/raw/trips/lisbon"), root, template="delay", city="lisbon", run_id=run_id
    )

    assert late.uri != delay.uri
    assert (late.template, delay.template) == ("late", "delay")
    assert late.row_count == len(read_partitions(tmp_path / "late/raw/trips/lisbon"))
    assert delay.row_count == len(read_partitions(tmp_path / "delay/raw/trips/lisbon"))
    assert delay.row_count != late.row_count
    assert len(read_snapshot(delay.uri)) == delay.row_count


def test_a_manifest_of_another_dag_is_never_reused(source: Path, tmp_path: Path) -> None:
    root = str(tmp_path / "snapshots")
    first = take_snapshot(str(source), root, template="ride_duration", city="lisbon", run_id=RUN_ID)
    manifest = Path(first.uri) / MANIFEST
    manifest.chmod(0o644)
    manifest.write_text(json.dumps({**first.to_dict(), "template": "delay"}), encoding="utf-8")

    with pytest.raises(DataError, match=r"belongs to run .* of 'delay.lisbon'.*move that folder away"):
        take_snapshot(str(source), root, template="ride_duration", city="lisbon", run_id=RUN_ID)


def test_snapshots_of_the_old_layout_stay_readable(source: Path, tmp_path: Path) -> None:
    # Champions trained before snapshots were keyed by template point at <root>/<city>/<run>: still readable.
    new = take_snapshot(str(source), str(tmp_path / "new"), template="ride_duration", city="lisbon", run_id=RUN_ID)
    old = tmp_path / "snapshots" / "lisbon" / "manual__2026-01-01-0123456789"
    old.mkdir(parents=True)
    shutil.copy(Path(new.uri) / DATA_FILE, old / DATA_FILE)
    legacy = {k: v for k, v in new.to_dict().items() if k != "template"}
    (old / MANIFEST).write_text(json.dumps({**legacy, "uri": str(old)}), encoding="utf-8")

    manifest = load_manifest(str(old))

    assert (manifest.template, manifest.city, manifest.row_count) == ("", "lisbon", new.row_count)
    assert len(read_snapshot(str(old))) == new.row_count


def test_snapshot_files_are_read_only(source: Path, tmp_path: Path) -> None:
    manifest = take_snapshot(
        str(source), str(tmp_path / "snapshots"), template="ride_duration", city="lisbon", run_id=RUN_ID
    )

    for name in (DATA_FILE, MANIFEST):
        mode = stat.S_IMODE((Path(manifest.uri) / name).stat().st_mode)
        assert mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) == 0, oct(mode)


def test_window_days_selects_the_latest_partitions(source: Path, tmp_path: Path) -> None:
    all_dates = sorted(p.name.removeprefix("date=") for p in source.glob("date=*"))

    manifest = take_snapshot(
        str(source), str(tmp_path / "s"), template="ride_duration", city="lisbon", run_id="r", window_days=7
    )

    assert manifest.partitions == all_dates[-7:]
    assert manifest.row_count == len(read_partitions(source, all_dates[-7:]))


def test_window_days_counts_calendar_days_not_partitions(source: Path, tmp_path: Path) -> None:
    dates = sorted(p.name.removeprefix("date=") for p in source.glob("date=*"))
    for gone in dates[-4:-1]:  # a gap of three days right before the last partition
        shutil.rmtree(source / f"date={gone}")

    manifest = take_snapshot(
        str(source), str(tmp_path / "s"), template="ride_duration", city="lisbon", run_id="r", window_days=5
    )

    assert manifest.partitions == [dates[-5], dates[-1]]


def test_window_start_and_end(source: Path, tmp_path: Path) -> None:
    days = batch_days("initial")
    start, end = days[10], days[14]

    manifest = take_snapshot(
        str(source), str(tmp_path / "s"), template="ride_duration", city="lisbon", run_id="r", start=start, end=end
    )

    assert manifest.partitions == [d.isoformat() for d in days[10:15]]
    frame = read_snapshot(manifest.uri)
    assert frame["pickup_at"].min() >= pd.Timestamp(start)
    assert frame["pickup_at"].max() < pd.Timestamp(end + dt.timedelta(days=1))


def test_window_outside_the_data_is_an_error(source: Path, tmp_path: Path) -> None:
    late = batch_days("initial")[-1] + dt.timedelta(days=30)

    with pytest.raises(DataError, match="window") as info:
        take_snapshot(str(source), str(tmp_path / "s"), template="ride_duration", city="lisbon", run_id="r", start=late)

    assert str(source) in str(info.value)
    assert not (tmp_path / "s" / "lisbon" / "r" / MANIFEST).exists()


def test_select_window() -> None:
    dates = [dt.date(2026, 1, d) for d in (1, 2, 3, 5, 8)]

    assert select_window(dates, window_days=None) == dates
    assert select_window(dates, window_days=4) == [dt.date(2026, 1, 5), dt.date(2026, 1, 8)]
    assert select_window(dates, window_days=2, end=dt.date(2026, 1, 3)) == dates[1:3]
    assert select_window(dates, window_days=None, start=dt.date(2026, 1, 3), end=dt.date(2026, 1, 5)) == dates[2:4]


def test_missing_source_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "raw" / "trips" / "nowhere"

    with pytest.raises(DataError) as info:
        take_snapshot(str(missing), str(tmp_path / "s"), template="ride_duration", city="nowhere", run_id="r")

    assert str(missing) in str(info.value)


def test_empty_partition_folder_names_the_path(source: Path, tmp_path: Path) -> None:
    empty = source / "date=2027-01-01"
    empty.mkdir()

    with pytest.raises(DataError) as info:
        take_snapshot(str(source), str(tmp_path / "s"), template="ride_duration", city="lisbon", run_id="r")

    assert "date=2027-01-01" in str(info.value)
    assert str(source) in str(info.value)


def test_source_without_partitions_is_an_error(tmp_path: Path) -> None:
    source = tmp_path / "raw"
    (source / "not-a-partition").mkdir(parents=True)

    with pytest.raises(DataError, match="partition"):
        list_partitions(str(source))


def test_list_partitions_ignores_other_files(source: Path) -> None:
    (source / "_SUCCESS").write_text("", encoding="utf-8")
    some = sorted(source.glob("date=*"))[0]
    (some / "notes.txt").write_text("", encoding="utf-8")

    partitions = list_partitions(str(source))

    assert len(partitions) == len(list(source.glob("date=*")))
    assert all(f.endswith(".parquet") for files in partitions.values() for f in files)
    assert list(partitions) == sorted(partitions)


def test_content_hash_is_stable_and_sensitive() -> None:
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"], "c": [0.5, 1.5, 2.5]})
    changed = frame.copy()
    changed.loc[1, "c"] = 1.25

    assert content_hash(frame) == content_hash(frame.copy())
    assert content_hash(frame) == content_hash(frame.set_axis([7, 8, 9]))  # the index is not content
    assert content_hash(changed) != content_hash(frame)
    assert content_hash(frame.astype({"a": "float64"})) != content_hash(frame)  # nor is the schema ignored
    assert content_hash(frame.iloc[::-1]) != content_hash(frame)


def test_content_hash_survives_a_parquet_round_trip(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": [1, 2], "t": pd.to_datetime(["2026-01-01", "2026-01-02"]), "s": ["x", None]})
    path = tmp_path / "x.parquet"
    frame.to_parquet(path, index=False)

    assert content_hash(pq.read_table(path).to_pandas()) == content_hash(frame)


@pytest.mark.parametrize("value", ["../x", "..", "/etc/passwd", "a/../../b", "..\\..\\x", "", "."])
def test_safe_segment_cannot_escape(value: str) -> None:
    segment = safe_segment(value)

    assert segment
    assert "/" not in segment
    assert "\\" not in segment
    assert segment not in {".", ".."}
    assert not segment.startswith(".")


@pytest.mark.parametrize("run_id", [RUN_ID, "scheduled__2026-01-01T00:00:00+00:00", "../../../escape", "a/b:c+d", ".."])
def test_run_ids_stay_inside_the_snapshot_root(source: Path, tmp_path: Path, run_id: str) -> None:
    root = tmp_path / "snapshots"

    manifest = take_snapshot(
        str(source), str(root), template="ride_duration", city="lisbon", run_id=run_id, window_days=1
    )

    folder = Path(manifest.uri).resolve()
    assert folder.parent == (root / "ride_duration" / "lisbon").resolve()
    assert ":" not in folder.name
    assert "+" not in folder.name
    assert manifest.run_id == run_id
    assert [p.resolve() for p in root.rglob(MANIFEST)] == [folder / MANIFEST]


def test_distinct_run_ids_never_share_a_snapshot(source: Path, tmp_path: Path) -> None:
    root = str(tmp_path / "snapshots")
    first = take_snapshot(
        str(source), root, template="ride_duration", city="lisbon", run_id="manual__a:b", window_days=1
    )

    second = take_snapshot(
        str(source), root, template="ride_duration", city="lisbon", run_id="manual__a+b", window_days=2
    )

    assert second.run_id == "manual__a+b"
    assert second.uri != first.uri


def test_resolve_source_fills_the_pattern() -> None:
    assert resolve_source("{data_root}/raw/trips/{city}", data_root="s3://lake/", city="lisbon") == (
        "s3://lake/raw/trips/lisbon"
    )


@pytest.mark.parametrize("city", ["../berlin", "a/b", "lisbon:x", "..", "São Paulo"])
def test_resolve_source_refuses_an_unsafe_city(city: str) -> None:
    with pytest.raises(DataError) as info:
        resolve_source("{data_root}/raw/trips/{city}", data_root="/data", city=city)

    assert repr(city) in str(info.value)


def test_load_manifest_of_an_incomplete_snapshot(tmp_path: Path) -> None:
    folder = tmp_path / "snapshots" / "lisbon" / "r"
    folder.mkdir(parents=True)
    (folder / DATA_FILE).write_bytes(b"")

    with pytest.raises(DataError, match="manifest"):
        load_manifest(str(folder))


def _as_csv(source: Path, target: Path) -> Path:
    """The same partitions as CSV files."""
    for path in sorted(source.glob("date=*/*.parquet")):
        out = target / path.parent.name / path.with_suffix(".csv").name
        out.parent.mkdir(parents=True, exist_ok=True)
        pd.read_parquet(path).to_csv(out, index=False)
    return target


def test_csv_partitions_parse_the_time_column_and_snapshot_as_parquet(source: Path, tmp_path: Path) -> None:
    csv = _as_csv(source, tmp_path / "csv")

    manifest = take_snapshot(
        str(csv),
        str(tmp_path / "s"),
        template="ride_duration",
        city="lisbon",
        run_id=RUN_ID,
        fmt="csv",
        parse_dates=["pickup_at"],
    )

    assert manifest.columns["pickup_at"].startswith("datetime64")
    assert manifest.columns["distance_km"] == "float64"
    assert manifest.row_count == len(read_partitions(source))
    schema = pq.read_schema(Path(manifest.uri) / DATA_FILE)
    assert str(schema.field("pickup_at").type).startswith("timestamp")
    snapshot = read_snapshot(manifest.uri)
    assert content_hash(snapshot) == manifest.content_hash
    pd.testing.assert_series_equal(
        snapshot["pickup_at"], read_partitions(source)["pickup_at"], check_dtype=False, check_exact=True
    )


def test_csv_without_parse_dates_keeps_text(source: Path, tmp_path: Path) -> None:
    csv = _as_csv(source, tmp_path / "csv")

    manifest = take_snapshot(
        str(csv), str(tmp_path / "s"), template="ride_duration", city="lisbon", run_id=RUN_ID, fmt="csv"
    )

    assert not manifest.columns["pickup_at"].startswith("datetime64")


def test_csv_with_a_bad_date_names_the_file_and_the_column(source: Path, tmp_path: Path) -> None:
    csv = _as_csv(source, tmp_path / "csv")
    broken = sorted(csv.glob("date=*/*.csv"))[2]
    frame = pd.read_csv(broken)
    frame.loc[3, "pickup_at"] = "yesterday at noon"
    frame.to_csv(broken, index=False)

    # Not retryable: a retry reads the same text (it used to be a plain DataError, retried).
    with pytest.raises(DataContractError) as info:
        take_snapshot(
            str(csv),
            str(tmp_path / "s"),
            template="ride_duration",
            city="lisbon",
            run_id=RUN_ID,
            fmt="csv",
            parse_dates=["pickup_at"],
        )

    message = str(info.value)
    assert f"{str(broken)!r}: column 'pickup_at' is not ISO 8601 date-times" in message
    assert "yesterday at noon" in message
    assert "write it as ISO 8601 in that file, or delete the file" in message
    assert not (tmp_path / "s").exists()


def test_zero_byte_file_names_it(source: Path, tmp_path: Path) -> None:
    empty = sorted(source.glob("date=*"))[-1] / "part-late.parquet"
    empty.write_bytes(b"")

    with pytest.raises(DataError) as info:
        take_snapshot(str(source), str(tmp_path / "s"), template="ride_duration", city="lisbon", run_id=RUN_ID)

    assert f"{str(empty)!r} is empty (0 bytes)" in str(info.value)


def test_partition_without_rows_names_it(source: Path, tmp_path: Path) -> None:
    day = sorted(source.glob("date=*"))[-1]
    for path in day.glob("*.parquet"):
        pd.read_parquet(path).head(0).to_parquet(path, index=False)

    with pytest.raises(DataError) as info:
        take_snapshot(str(source), str(tmp_path / "s"), template="ride_duration", city="lisbon", run_id=RUN_ID)

    assert f"partition '{source}/{day.name}' holds no rows" in str(info.value)


def test_several_sources_make_one_snapshot_and_a_missing_one_is_skipped(lake: Path, tmp_path: Path) -> None:
    write_demo_data(tmp_path / "more", cities=["berlin"], batch="initial", scale=0.05)
    lisbon, berlin = lake / "raw" / "trips" / "lisbon", tmp_path / "more" / "raw" / "trips" / "berlin"
    missing = tmp_path / "raw" / "trips" / "porto"

    manifest = take_snapshot(
        [str(lisbon), str(berlin), str(missing)],
        str(tmp_path / "snaps"),
        template="ride_duration",
        city="global",
        run_id=RUN_ID,
    )

    expected = len(read_partitions(lisbon)) + len(read_partitions(berlin))
    assert manifest.row_count == expected == len(read_snapshot(manifest.uri))
    assert manifest.extra["sources"] == [str(lisbon), str(berlin), str(missing)]
    assert list(manifest.extra["skipped_sources"]) == [str(missing)]
    assert "does not exist" in manifest.extra["skipped_sources"][str(missing)]


def test_several_sources_without_any_data_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="none of the 2 sources holds data"):
        take_snapshot(
            [str(tmp_path / "a"), str(tmp_path / "b")],
            str(tmp_path / "snaps"),
            template="ride_duration",
            city="g",
            run_id=RUN_ID,
        )


#: The fields airflow-ml wrote and read before partitioned snapshots (380e5a3): its reader did ``Manifest(**data)``.
_FIELDS_BEFORE_PARTITIONED = {
    "city", "run_id", "uri", "source", "row_count", "columns", "content_hash", "partitions", "created_at", "extra",
    "template", "filters", "missing_days", "rows_outside_partition",
}  # fmt: skip


def test_a_local_manifest_stays_readable_by_airflow_ml_before_partitioned_snapshots(
    source: Path, tmp_path: Path
) -> None:
    manifest = take_snapshot(str(source), str(tmp_path / "s"), template="t", city="lisbon", run_id=RUN_ID)

    written = json.loads((Path(manifest.uri) / MANIFEST).read_text(encoding="utf-8"))
    assert set(written) <= _FIELDS_BEFORE_PARTITIONED
    assert load_manifest(manifest.uri) == manifest


def _rewritten_manifest(source: Path, tmp_path: Path, **changes: object) -> str:
    manifest = take_snapshot(str(source), str(tmp_path / "s"), template="t", city="lisbon", run_id=RUN_ID)
    folder = tmp_path / "copy"
    folder.mkdir()
    (folder / MANIFEST).write_text(json.dumps({**manifest.to_dict(), **changes}), encoding="utf-8")
    return str(folder)


def test_a_manifest_field_of_a_newer_airflow_ml_is_ignored(
    source: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = _rewritten_manifest(source, tmp_path, retention_class="gold")

    with caplog.at_level("DEBUG", logger="airflow_ml.data.snapshot"):
        manifest = load_manifest(folder)

    assert manifest.city == "lisbon"
    assert "retention_class" in caplog.text


def test_a_manifest_of_an_unknown_kind_is_refused_before_its_unknown_fields(source: Path, tmp_path: Path) -> None:
    folder = _rewritten_manifest(source, tmp_path, kind="sharded", shards=4)

    with pytest.raises(DataError, match=r"of kind 'sharded' .* upgrade airflow-ml"):
        load_manifest(folder)
