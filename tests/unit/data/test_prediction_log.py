"""The prediction log (airflow_ml.data.prediction_log): partitions by day, replaced whole, read by date range."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
from pathlib import Path

import fsspec
import pandas as pd
import pytest
from fsspec.implementations.local import LocalFileSystem

from airflow_ml.data.prediction_log import (
    LOG_COLUMNS,
    PART_FILE,
    LogColumns,
    partition_location,
    read_predictions,
    write_predictions,
)
from airflow_ml.exceptions import DataError
from tests.support.predictions import LISBON, scoring_context

REPO = Path(__file__).resolve().parents[3]
DAY = dt.date(2026, 3, 1)
CONTEXT = LISBON


def _rows(n: int = 4, offset: int = 0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "trip_id": [f"t{i + offset}" for i in range(n)],
            "distance_km": [1.5 + i for i in range(n)],
            "zone": ["a", "b"] * (n // 2) + ["a"] * (n % 2),
        }
    )


def _write(
    root: Path | str,
    rows: pd.DataFrame,
    day: dt.date = DAY,
    *,
    key_columns: tuple[str, ...] | list[str] = (),
    keep_columns: tuple[str, ...] | list[str] = (),
    shadow: bool = False,
) -> str:
    predictions = [10.0 * (i + 1) for i in range(len(rows))]
    columns = LogColumns(key=tuple(key_columns), keep=tuple(keep_columns))
    return write_predictions(str(root), day, rows, predictions, CONTEXT, columns, shadow=shadow).uri


def test_a_day_is_one_partition_with_the_log_columns_then_the_kept_ones(tmp_path: Path) -> None:
    uri = _write(tmp_path, _rows(), key_columns=["trip_id"], keep_columns=["distance_km"])

    assert uri == f"{tmp_path}/predictions/ride_duration/lisbon/date=2026-03-01"
    assert sorted(os.listdir(uri)) == [PART_FILE]
    logged = pd.read_parquet(f"{uri}/{PART_FILE}")
    assert list(logged.columns) == [*LOG_COLUMNS, "trip_id", "distance_km"]
    assert logged["prediction"].tolist() == [10.0, 20.0, 30.0, 40.0]
    assert set(logged["model_version"]) == {"3"}
    assert set(logged["scored_at"]) == {pd.Timestamp("2026-03-01T02:00:00Z")}
    assert logged["prediction_id"].is_unique


def test_ids_come_from_the_key_whatever_else_the_row_holds(tmp_path: Path) -> None:
    rows = _rows()
    changed = rows.assign(distance_km=rows["distance_km"] * 2)

    first = pd.read_parquet(f"{_write(tmp_path / 'a', rows, key_columns=['trip_id'])}/{PART_FILE}")
    second = pd.read_parquet(f"{_write(tmp_path / 'b', changed, key_columns=['trip_id'])}/{PART_FILE}")
    by_content = pd.read_parquet(f"{_write(tmp_path / 'c', changed)}/{PART_FILE}")

    assert first["prediction_id"].tolist() == second["prediction_id"].tolist()
    assert by_content["prediction_id"].tolist() != second["prediction_id"].tolist()


def test_a_rerun_replaces_the_day_with_the_same_bytes(tmp_path: Path) -> None:
    uri = _write(tmp_path, _rows(6), key_columns=["trip_id"], keep_columns=["zone"])
    first = Path(uri, PART_FILE).read_bytes()

    _write(tmp_path, _rows(3, offset=100), key_columns=["trip_id"], keep_columns=["zone"])
    assert len(read_predictions(str(tmp_path), "ride_duration", "lisbon", DAY, DAY)) == 3
    _write(tmp_path, _rows(6), key_columns=["trip_id"], keep_columns=["zone"])

    assert Path(uri, PART_FILE).read_bytes() == first
    assert sorted(os.listdir(uri)) == [PART_FILE]  # no temporary file left behind


def test_another_process_writes_the_same_bytes(tmp_path: Path) -> None:
    uri = _write(tmp_path / "here", _rows(), key_columns=["trip_id"])
    code = (
        "import sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from tests.unit.data.test_prediction_log import _rows, _write\n"
        "_write(sys.argv[2], _rows(), key_columns=['trip_id'])\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "987"}
    subprocess.run([sys.executable, "-c", code, str(REPO), str(tmp_path / "there")], env=env, check=True)

    there = tmp_path / "there" / Path(uri).relative_to(tmp_path / "here")
    assert (there / PART_FILE).read_bytes() == Path(uri, PART_FILE).read_bytes()


def test_a_write_cut_short_leaves_the_old_day_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The crash between writing the new file and the swap: the day reads as before, nothing temporary remains."""
    uri = _write(tmp_path, _rows(4), key_columns=["trip_id"])
    before = Path(uri, PART_FILE).read_bytes()

    def crash(self: LocalFileSystem, path1: str, path2: str, **kwargs: object) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(LocalFileSystem, "mv", crash)
    with pytest.raises(DataError, match="cannot write the prediction log partition"):
        _write(tmp_path, _rows(2, offset=50), key_columns=["trip_id"])

    assert Path(uri, PART_FILE).read_bytes() == before
    assert sorted(os.listdir(uri)) == [PART_FILE]


def test_a_reader_sees_the_old_day_or_the_new_day_never_a_mix(tmp_path: Path) -> None:
    versions = {3: _rows(3), 500: _rows(500, offset=1000)}
    _write(tmp_path, versions[3], key_columns=["trip_id"])
    seen: set[int] = set()
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                frame = read_predictions(str(tmp_path), "ride_duration", "lisbon", DAY, DAY)
            except Exception as exc:  # noqa: BLE001 - a truncated file is what this test is about
                errors.append(exc)
                return
            seen.add(len(frame))
            if len(frame) not in versions or frame["trip_id"].tolist() != versions[len(frame)]["trip_id"].tolist():
                errors.append(AssertionError(f"a mixed read of {len(frame)} rows"))
                return

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for round_ in range(40):
            _write(tmp_path, versions[500 if round_ % 2 == 0 else 3], key_columns=["trip_id"])
    finally:
        done.set()
        reader.join()

    assert not errors, errors[0]
    assert seen <= set(versions)


def test_a_hidden_temporary_file_is_never_read(tmp_path: Path) -> None:
    uri = _write(tmp_path, _rows(4), key_columns=["trip_id"])
    Path(uri, f".{PART_FILE}.0123.tmp").write_bytes(b"half a parquet file")

    assert len(read_predictions(str(tmp_path), "ride_duration", "lisbon", DAY, DAY)) == 4


def test_the_shadow_log_is_a_separate_tree(tmp_path: Path) -> None:
    champion = _write(tmp_path, _rows(4), key_columns=["trip_id"])
    shadow = _write(tmp_path, _rows(2), key_columns=["trip_id"], shadow=True)

    assert shadow == partition_location(str(tmp_path), "ride_duration", "lisbon", DAY, shadow=True)
    assert "/predictions_shadow/ride_duration/lisbon/" in shadow
    assert len(read_predictions(str(tmp_path), "ride_duration", "lisbon", DAY, DAY)) == 4
    assert len(read_predictions(str(tmp_path), "ride_duration", "lisbon", DAY, DAY, shadow=True)) == 2
    # The same row scored by champion and shadow has one id: the monitor pairs them by it.
    ids = read_predictions(str(tmp_path), "ride_duration", "lisbon", DAY, DAY)["prediction_id"].tolist()
    assert (
        read_predictions(str(tmp_path), "ride_duration", "lisbon", DAY, DAY, shadow=True)["prediction_id"].tolist()
        == ids[:2]
    )
    assert Path(champion).exists()


def test_a_date_range_reads_its_days_only_with_their_date(tmp_path: Path) -> None:
    for offset in range(4):
        _write(tmp_path, _rows(2, offset=10 * offset), DAY + dt.timedelta(days=offset), key_columns=["trip_id"])

    frame = read_predictions(
        str(tmp_path), "ride_duration", "lisbon", DAY + dt.timedelta(days=1), DAY + dt.timedelta(days=2)
    )

    assert frame["partition_date"].tolist() == [DAY + dt.timedelta(days=d) for d in (1, 1, 2, 2)]
    assert frame["trip_id"].tolist() == ["t10", "t11", "t20", "t21"]
    empty = read_predictions(str(tmp_path), "ride_duration", "porto", DAY, DAY)
    assert empty.empty
    assert list(empty.columns) == ["partition_date", *LOG_COLUMNS]


def test_an_object_store_root_works_the_same(tmp_path: Path) -> None:
    root = f"memory://{tmp_path.name}/lake"

    uri = _write(root, _rows(4), key_columns=["trip_id"])
    _write(root, _rows(2), key_columns=["trip_id"])

    assert fsspec.filesystem("memory").ls(uri.removeprefix("memory://"), detail=False) == [f"{uri[8:]}/{PART_FILE}"]
    assert len(read_predictions(root, "ride_duration", "lisbon", DAY, DAY)) == 2


def test_served_requests_are_files_of_their_own_that_a_batch_rerun_keeps(tmp_path: Path) -> None:
    def serve(request_id: str, rows: pd.DataFrame) -> None:
        context = scoring_context(scoring_run_id=request_id)
        columns = LogColumns(key=("trip_id",))
        write_predictions(str(tmp_path), DAY, rows, [1.0] * len(rows), context, columns, request=True)

    _write(tmp_path, _rows(4), key_columns=["trip_id"])
    serve("request-a", _rows(1, offset=100))
    serve("request-b", _rows(2, offset=200))
    serve("request-a", _rows(1, offset=300))  # the same request logged again: replaced, not doubled
    _write(tmp_path, _rows(3), key_columns=["trip_id"])  # the batch rerun

    frame = read_predictions(str(tmp_path), "ride_duration", "lisbon", DAY, DAY)

    assert frame["trip_id"].tolist()[:3] == ["t0", "t1", "t2"]
    assert sorted(frame["trip_id"].tolist()[3:]) == ["t200", "t201", "t300"]
    assert set(frame["scoring_run_id"]) == {CONTEXT.scoring_run_id, "request-a", "request-b"}


def test_a_missing_key_column_names_it(tmp_path: Path) -> None:
    with pytest.raises(
        DataError,
        match=r"nothing was written to '.*date=2026-03-01': the key column\(s\) \['ride_id'\] are not in the rows",
    ):
        _write(tmp_path, _rows(), key_columns=["ride_id"])
    with pytest.raises(DataError, match=r"cannot keep columns \['weather'\].*not in the rows"):
        _write(tmp_path, _rows(), keep_columns=["weather"])


def test_a_kept_column_may_not_take_a_log_column_name(tmp_path: Path) -> None:
    rows = _rows().assign(partition_date="2026-03-01", prediction=1.0)

    with pytest.raises(DataError, match=r"\['partition_date'\] are names of the log's own columns"):
        _write(tmp_path, rows, keep_columns=["partition_date"])
    with pytest.raises(DataError, match=r"\['prediction'\] are names of the log's own columns"):
        _write(tmp_path, rows, key_columns=["prediction"])


def test_two_rows_with_one_id_are_refused(tmp_path: Path) -> None:
    rows = pd.concat([_rows(2), _rows(2)], ignore_index=True)

    with pytest.raises(DataError, match=r"rows 0 and 2 .* have the key columns' values.*add a column to it"):
        _write(tmp_path, rows, key_columns=["trip_id"])
    with pytest.raises(DataError, match=r"rows 0 and 2 .* have identical content.*name key columns"):
        _write(tmp_path, rows)
    assert not (tmp_path / "predictions").exists()


def test_an_unwritable_root_names_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the root should be", encoding="utf-8")

    with pytest.raises(DataError, match=r"cannot write the prediction log partition '.*not-a-folder/predictions/.*"):
        _write(blocker, _rows(), key_columns=["trip_id"])


def test_a_naive_scoring_time_is_refused(tmp_path: Path) -> None:
    naive = scoring_context(scored_at=dt.datetime(2026, 3, 1))

    with pytest.raises(DataError, match="no time zone; pass the run's logical date"):
        write_predictions(str(tmp_path), DAY, _rows(), [1.0] * 4, naive, LogColumns(key=("trip_id",)))


def test_a_request_batch_is_one_file_of_several_requests_rows_beside_the_batch_file(tmp_path: Path) -> None:
    from airflow_ml.data.prediction_log import log_frame, write_request_batch

    _write(tmp_path, _rows(), key_columns=["trip_id"])
    first = log_frame(_rows(2, 10), [1.0, 2.0], CONTEXT, LogColumns(key=("trip_id",), keep=("zone",)))
    second = log_frame(_rows(3, 20), [3.0, 4.0, 5.0], CONTEXT, LogColumns(key=("trip_id",)))

    written = write_request_batch(str(tmp_path), "ride_duration", "lisbon", DAY, [first, second], batch_id="flush-1")
    again = write_request_batch(str(tmp_path), "ride_duration", "lisbon", DAY, [first, second], batch_id="flush-1")

    assert written == again
    assert (written.row_count, written.uri) == (5, partition_location(str(tmp_path), "ride_duration", "lisbon", DAY))
    log = read_predictions(str(tmp_path), "ride_duration", "lisbon", DAY, DAY)
    assert len(log) == 4 + 5  # the batch file, then one request file (written twice: replaced, not doubled)
    assert log["zone"].tolist()[4:6] == ["a", "b"]
    assert log["zone"].iloc[6:].isna().all()  # a column one request did not keep: null in its rows
    with pytest.raises(DataError, match="give one or more frames made by log_frame"):
        write_request_batch(str(tmp_path), "ride_duration", "lisbon", DAY, [_rows()], batch_id="flush-2")
