"""Stable prediction ids (airflow_ml.data.prediction_ids): the documented encoding, in every process."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from airflow_ml.data.prediction_ids import prediction_ids
from airflow_ml.exceptions import DataError

REPO = Path(__file__).resolve().parents[3]
NS = "ride_duration/lisbon"


def _one(values: dict[str, object], columns: list[str] | None = None, namespace: str = NS) -> str:
    frame = pd.DataFrame({name: [value] for name, value in values.items()})
    return prediction_ids(frame, columns or list(values), namespace=namespace)[0]


def test_the_id_is_the_documented_sha256() -> None:
    """The encoding of the module's docstring, spelled out by hand: a change of it changes every logged id."""
    text = "airflow-ml/prediction-id/v1" + "20:ride_duration/lisbon" + "8:distancef3:2.57:trip_ids3:t-1"

    expected = hashlib.sha256(text.encode()).hexdigest()[:32]

    assert _one({"trip_id": "t-1", "distance": 2.5}) == expected


def test_ids_are_the_same_in_another_process_with_another_hash_seed(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "trip_id": ["a", "b", None],
            "distance": [1.5, np.nan, 3.0],
            "zone": pd.Categorical(["x", "y", "x"]),
            "at": pd.to_datetime(["2026-03-01 10:00:00", "2026-03-01 11:30:00.000001", None], format="ISO8601"),
        }
    )
    path = tmp_path / "rows.pkl"
    frame.to_pickle(path)
    code = (
        "import json, sys, pandas as pd\n"
        "from airflow_ml.data.prediction_ids import prediction_ids\n"
        f"frame = pd.read_pickle({str(path)!r})\n"
        f"print(json.dumps(prediction_ids(frame, list(frame.columns), namespace={NS!r})))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONHASHSEED": "12345"}

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout

    assert json.loads(out) == prediction_ids(frame, list(frame.columns), namespace=NS)
    assert len(set(json.loads(out))) == 3


def test_column_order_does_not_matter() -> None:
    assert _one({"a": 1, "b": "x"}) == _one({"b": "x", "a": 1})


def test_an_integral_float_is_its_integer_and_a_null_is_a_null() -> None:
    """A key column that gains a null turns float64 (or Int64): its other ids stay."""
    as_int = prediction_ids(pd.DataFrame({"k": [3, 4]}), ["k"], namespace=NS)
    as_float = prediction_ids(pd.DataFrame({"k": [3.0, np.nan]}), ["k"], namespace=NS)
    as_nullable = prediction_ids(pd.DataFrame({"k": pd.array([3, None], dtype="Int64")}), ["k"], namespace=NS)

    assert as_int[0] == as_float[0] == as_nullable[0]
    assert as_float[1] == as_nullable[1] == _one({"k": None})
    assert _one({"k": -0.0}) == _one({"k": 0})


def test_float32_reads_as_its_own_shortest_decimal() -> None:
    f32 = prediction_ids(pd.DataFrame({"x": np.array([0.1], dtype=np.float32)}), ["x"], namespace=NS)

    assert f32[0] == _one({"x": 0.1})
    assert _one({"x": 0.1}) != _one({"x": 0.1 + 1e-16 * 2})


def test_date_times_of_any_resolution_are_one_value() -> None:
    stamp = "2026-03-01 10:00:00.000001"
    ns = pd.DataFrame({"at": pd.Series(pd.to_datetime([stamp])).astype("datetime64[ns]")})
    us = pd.DataFrame({"at": pd.Series(pd.to_datetime([stamp])).astype("datetime64[us]")})
    aware = pd.DataFrame({"at": pd.Series(pd.to_datetime([stamp])).dt.tz_localize("Europe/Lisbon")})

    assert prediction_ids(ns, ["at"], namespace=NS) == prediction_ids(us, ["at"], namespace=NS)
    assert prediction_ids(aware, ["at"], namespace=NS) != prediction_ids(us, ["at"], namespace=NS)
    assert _one({"at": dt.datetime(2026, 3, 1, 10, 0, 0, 1)}) == prediction_ids(us, ["at"], namespace=NS)[0]


def test_numpy_object_and_arrow_backed_columns_give_one_id() -> None:
    """pandas changes its default backends between versions (pandas 3 reads strings as ``str``): the ids stay."""
    times = pd.to_datetime(["2026-01-01", "2026-01-02", None])
    numpy = pd.DataFrame({"s": ["x", "y", None], "i": [1, 2, 3], "f": [1.5, 2.0, None], "t": times})
    arrow = pd.DataFrame(
        {
            "s": pd.array(["x", "y", None], dtype="string[pyarrow]"),
            "i": pd.array([1, 2, 3], dtype="int64[pyarrow]"),
            "f": pd.array([1.5, 2.0, None], dtype="double[pyarrow]"),
            "t": pd.array(times).astype("timestamp[us][pyarrow]"),
        }
    )
    objects = numpy.astype({"s": object, "i": object})
    columns = ["s", "i", "f", "t"]

    ids = prediction_ids(numpy, columns, namespace=NS)

    assert prediction_ids(arrow, columns, namespace=NS) == ids
    assert prediction_ids(objects, columns, namespace=NS) == ids


def test_types_namespace_and_values_tell_rows_apart() -> None:
    assert _one({"k": "3"}) != _one({"k": 3})
    assert _one({"k": True}) != _one({"k": 1})
    assert _one({"k": 3}, namespace="ride_duration/porto") != _one({"k": 3})
    # Length prefixes: two columns' values cannot run into each other.
    assert _one({"a": "xy", "b": "z"}) != _one({"a": "x", "b": "yz"})


def test_a_missing_column_or_an_unhashable_value_is_a_data_error() -> None:
    with pytest.raises(DataError, match=r"\['trip_id'\] are not in the rows to score"):
        prediction_ids(pd.DataFrame({"x": [1]}), ["trip_id"], namespace=NS)
    with pytest.raises(DataError, match=r"column 'x'.*list has no canonical form"):
        prediction_ids(pd.DataFrame({"x": [[1, 2]]}), ["x"], namespace=NS)


def _mixed_columns() -> dict[str, pd.Series]:
    """One column of each type the batch path builds in Arrow, with nulls, non-ASCII text and extreme values."""
    stamps = ["2026-01-01T10:00:00.5", "NaT", "1900-03-04T00:00:00.000001", "2261-12-31T23:59:59"]
    return {
        "str": pd.Series(["a", None, "é€𝄞", ""], dtype="str"),
        "arrow_str": pd.Series(pd.array(["x", "y:z", None, "3"], dtype="string[pyarrow]")),
        "python_str": pd.Series(pd.array(["x", "y", None, "w"], dtype="string[python]")),
        "int": pd.Series([0, -7, np.iinfo(np.int64).max, np.iinfo(np.int64).min], dtype="int64"),
        "uint": pd.Series([0, 1, np.iinfo(np.uint64).max, 3], dtype="uint64"),
        "int8": pd.Series([1, -1, 127, -128], dtype="int8"),
        "bool": pd.Series([True, False, True, False]),
        **{
            f"time_{unit}": pd.Series(np.array(stamps, dtype="datetime64[us]").astype(f"datetime64[{unit}]"))
            for unit in ("s", "ms", "us", "ns")
        },
        "time_days": pd.Series(np.array(["2026-01-01", "NaT", "1970-01-01", "2400-02-29"], dtype="datetime64[D]")),
        "time_old": pd.Series(np.array(["0999-03-01T10:00", "0050-01-01", "NaT", "1000-01-01"], dtype="datetime64[s]")),
        "aware": pd.Series(
            pd.to_datetime(["2026-03-29 00:30", None, "2026-10-25 01:30", "2000-01-01 00:00"])
        ).dt.tz_localize("Europe/Lisbon", ambiguous=True),
        "float": pd.Series([0.1, np.nan, 3.0, -0.0]),
    }


@pytest.mark.parametrize("name", list(_mixed_columns()))
def test_the_batch_path_gives_each_value_its_documented_token(name: str) -> None:
    """column_token_array (Arrow's kernels) against _token, the value-by-value reading of the docstring."""
    from airflow_ml.data.prediction_ids import _token, column_token_array

    values = _mixed_columns()[name]

    assert column_token_array(values).to_pylist() == [_token(value) for value in values.array]


def test_ids_of_many_columns_are_the_documented_sha256_row_by_row() -> None:
    from airflow_ml.data.prediction_ids import _token

    frame = pd.DataFrame(_mixed_columns())
    names = sorted(frame.columns)

    expected = [
        hashlib.sha256(
            (
                "airflow-ml/prediction-id/v1"
                + f"{len(NS)}:{NS}"
                + "".join(f"{len(name)}:{name}{_token(frame[name].array[row])}" for name in names)
            ).encode()
        ).hexdigest()[:32]
        for row in range(len(frame))
    ]

    assert prediction_ids(frame, names, namespace=NS) == expected


def test_a_repeated_id_is_found_with_both_rows_and_an_empty_batch_has_none() -> None:
    from airflow_ml.data.prediction_ids import hash_rows

    keys = pd.DataFrame({"k": [f"t-{i}" for i in range(1000)] + ["t-17", "t-3"]})

    assert hash_rows(keys, ["k"], namespace=NS).first_repeat() == (17, 1000)
    assert hash_rows(keys.head(1000), ["k"], namespace=NS).first_repeat() is None
    assert len(hash_rows(keys.head(0), ["k"], namespace=NS)) == 0
    assert prediction_ids(keys.head(0), ["k"], namespace=NS) == []
