"""The content hash keeps the scheme every snapshot's manifest was written with, however it is computed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from airflow_ml.data.row_hashing import content_hash, row_hashes
from airflow_ml.data.snapshot import read_snapshot, take_snapshot


def hash_as_before(frame: pd.DataFrame) -> str:
    """The content hash as snapshots have always been written: the schema, then pandas' hash of every row."""
    digest = hashlib.sha256()
    digest.update(json.dumps({c: str(t) for c, t in frame.dtypes.items()}, sort_keys=True).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def hash_scheme_frames() -> dict[str, pd.DataFrame]:
    """Frames of every kind of column pandas hashes differently (text with and without nulls and repeats...)."""
    rows = 30_000  # above the 10,000-row sample that decides how text is hashed
    ids = [f"trip-{i:06d}" for i in range(rows)]
    many = pd.DataFrame(
        {
            "arrow_ids": pd.array(ids, dtype="string[pyarrow]"),
            "python_ids": pd.array(ids, dtype="string[python]"),
            "str_ids": pd.Series(ids, dtype="str"),
            "object_ids": pd.Series(ids, dtype=object),
            "ids_with_a_null": pd.array([*ids[:-1], None], dtype="string[pyarrow]"),
            "zones": pd.array([f"z{i % 7}" for i in range(rows)], dtype="string[pyarrow]"),
            "mixed": pd.Series([1 if i % 3 else f"x{i}" for i in range(rows)], dtype=object),
            "category": pd.Categorical([f"c{i % 5}" for i in range(rows)]),
            "n": range(rows),
            "x": [float(i) if i % 11 else None for i in range(rows)],
            "t": pd.date_range("2026-01-01", periods=rows, freq="min", tz="Europe/Lisbon"),
            "flag": [i % 2 == 0 for i in range(rows)],
            # distinct at first, then repeated: the sample decides, the hash must not depend on it
            "late_repeats": pd.array([*ids[:10_000], *["same"] * (rows - 10_000)], dtype="string[pyarrow]"),
        }
    )
    return {
        "many kinds": many,
        "no rows": many.iloc[:0],
        "no columns": many[[]],
        "one text column": many[["arrow_ids"]],
        "text first": many[["zones", "arrow_ids", "n"]],
    }


@pytest.mark.parametrize("name", list(hash_scheme_frames()))
def test_content_hash_is_the_scheme_every_snapshot_was_written_with(name: str) -> None:
    frame = hash_scheme_frames()[name]

    assert content_hash(frame) == hash_as_before(frame)
    assert row_hashes(frame).tolist() == pd.util.hash_pandas_object(frame, index=False).tolist()


def test_a_snapshot_taken_now_verifies_with_the_former_hash(tmp_path: Path) -> None:
    frame = hash_scheme_frames()["many kinds"].drop(columns=["mixed"])  # parquet refuses a mixed object column
    partition = tmp_path / "raw" / "date=2026-01-05"
    partition.mkdir(parents=True)
    frame.to_parquet(partition / "part.parquet", index=False)

    manifest = take_snapshot(str(partition.parent), str(tmp_path / "s"), template="t", city="c", run_id="r")

    assert manifest.content_hash == hash_as_before(read_snapshot(manifest.uri))
    assert manifest.content_hash == hash_as_before(pd.read_parquet(partition / "part.parquet"))
