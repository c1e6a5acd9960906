"""A request's rows against the model's signature (airflow_ml.scoring.http_schemas), with MLflow's own schema."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from mlflow.models import infer_signature
from pydantic import ValidationError

from airflow_ml.scoring.http_schemas import PredictRequest, RowsRefused, model_columns, rows_frame

SAMPLE = pd.DataFrame({"distance_km": [1.5, 2.0], "pickup_hour": [7, 8], "zone": ["a", "b"], "raining": [True, False]})
SCHEMA = infer_signature(SAMPLE).inputs
FEATURES = list(SAMPLE.columns)


def frame_of(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return rows_frame(rows, SCHEMA, FEATURES)


def test_rows_get_the_signatures_types_once() -> None:
    frame = frame_of(
        [
            {"distance_km": 3, "pickup_hour": 7.0, "zone": "a", "raining": True, "trip": "t1"},
            {"pickup_hour": 8, "zone": None, "raining": False, "distance_km": None},
        ]
    )

    types = {name: str(dtype) for name, dtype in frame.dtypes.items() if name not in ("zone", "trip")}
    assert types == {"distance_km": "float64", "pickup_hour": "int64", "raining": "bool"}
    assert frame["zone"].tolist()[0] == "a"  # text stays text (pandas' string or object type)
    assert frame["distance_km"].isna().tolist() == [False, True]
    assert model_columns(SCHEMA, FEATURES) == FEATURES
    assert model_columns(None, ["x"]) == ["x"]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"pickup_hour": 7, "zone": "a", "raining": True}], "the rows have no column 'distance_km'"),
        (
            [{"distance_km": True, "pickup_hour": 7, "zone": "a", "raining": True}],
            "column 'distance_km': row 0 is True (bool), and the model's signature says double; send a number",
        ),
        (
            [{"distance_km": 1, "pickup_hour": None, "zone": "a", "raining": True}],
            "column 'pickup_hour': row 0 is None (NoneType), and the model's signature says long; send an integer",
        ),
        (
            [
                {"distance_km": 1, "pickup_hour": 1, "zone": "a", "raining": True},
                {"distance_km": 1, "zone": "a", "raining": True},
            ],
            "column 'pickup_hour': row 1 is null, and the model's signature says long (integers, no nulls)",
        ),
        (
            [{"distance_km": 1, "pickup_hour": 1, "zone": 3, "raining": True}],
            "column 'zone': row 0 is 3 (int), and the model's signature says string; send text (or null)",
        ),
        (
            [{"distance_km": 1, "pickup_hour": 1, "zone": "a", "raining": "yes"}],
            "column 'raining': row 0 is 'yes' (str), and the model's signature says boolean; send true or false",
        ),
    ],
)
def test_a_row_that_breaks_the_signature_names_the_column_and_row(rows: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(RowsRefused) as refused:
        frame_of(rows)
    assert str(refused.value).startswith(message)


def test_without_a_signature_the_features_must_be_there() -> None:
    assert rows_frame([{"x": 1}], None, ["x"])["x"].tolist() == [1]
    with pytest.raises(RowsRefused, match=r"no column 'y' \(missing: \['y'\]\)"):
        rows_frame([{"x": 1}], None, ["x", "y"])


def test_a_request_has_rows_and_nothing_else() -> None:
    assert len(PredictRequest.model_validate({"rows": [{"x": 1}]}).rows) == 1
    for bad in ({"rows": []}, {"rows": [{"x": 1}], "model": "v2"}, {"rows": "x"}):
        with pytest.raises(ValidationError):
            PredictRequest.model_validate(bad)


def test_key_and_kept_columns_get_the_kinds_the_dataset_declares() -> None:
    from airflow_ml.scoring.http_schemas import declared_types

    rows = pd.DataFrame(
        {
            "pickup_at": ["2026-03-02T08:15:00", None, "2026-03-02 09:00:00.250"],
            "dropoff_at": ["2026-03-02T08:15:00+01:00", "2026-03-02T07:20:00Z", None],
            "surge": [1, None, 2.5],
            "trip_id": ["t1", "t2", "t3"],
        }
    )

    typed = declared_types(
        rows.copy(),
        {"pickup_at": "time", "dropoff_at": "time", "surge": "numeric"},
        ["pickup_at", "dropoff_at", "surge", "trip_id"],
    )

    assert typed["pickup_at"].tolist()[0] == pd.Timestamp("2026-03-02T08:15:00")
    assert pd.isna(typed["pickup_at"].iloc[1])
    assert typed["pickup_at"].dt.tz is None  # naive text stays naive, as the batch data's naive times
    assert typed["dropoff_at"].tolist()[:2] == [
        pd.Timestamp("2026-03-02T07:15:00Z"),
        pd.Timestamp("2026-03-02T07:20:00Z"),
    ]
    assert str(typed["surge"].dtype) == "float64"
    assert typed["trip_id"].tolist() == ["t1", "t2", "t3"]  # no declared kind: as JSON gave it
    with pytest.raises(RowsRefused, match=r"column 'surge': row 1 is 'high'") as caught:
        declared_types(pd.DataFrame({"surge": [1.0, "high"]}), {"surge": "numeric"}, ["surge"])
    assert caught.value.column == "surge"
