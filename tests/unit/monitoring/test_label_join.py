"""Late labels joined to the prediction log, by recomputed key or by prediction_id, with what did not join counted."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from airflow_ml.data.prediction_log import LogColumns, read_predictions, write_predictions
from airflow_ml.exceptions import DataError
from airflow_ml.monitoring.label_join import LABEL, JoinedLabels, join_labels, read_labels
from tests.support.predictions import scoring_context

DAY = dt.date(2026, 3, 1)
ROWS = pd.DataFrame({"trip_id": ["a", "b", "c"], "distance_km": [1.0, 2.0, 3.0], "duration_min": [5.0, 9.0, 14.0]})


def _logged(root: Path) -> pd.DataFrame:
    context = scoring_context()
    write_predictions(str(root), DAY, ROWS, [6.0, 8.0, 15.0], context, LogColumns(key=("trip_id",)))
    return read_predictions(str(root), context.template, context.city, DAY, DAY)


def _by_key(root: Path, labels: pd.DataFrame, namespace: str) -> JoinedLabels:
    return join_labels(
        _logged(root), labels, target="duration_min", join="key", key_columns=["trip_id"], namespace=namespace
    )


def test_labels_join_by_the_key_scoring_used_and_late_or_stray_rows_are_counted(tmp_path: Path) -> None:
    labels = pd.DataFrame({"trip_id": ["a", "b", "zz", "c"], "duration_min": [5.0, 9.0, 3.0, None]})

    joined = _by_key(tmp_path, labels, "ride_duration/lisbon")

    assert joined.rows[LABEL].tolist() == [5.0, 9.0]
    assert joined.rows["prediction"].tolist() == [6.0, 8.0]
    assert (joined.labels_read, joined.unmatched_labels, joined.unlabelled) == (3, 1, 1)


def test_another_city_s_namespace_matches_nothing(tmp_path: Path) -> None:
    labels = ROWS[["trip_id", "duration_min"]]

    joined = _by_key(tmp_path, labels, "ride_duration/porto")

    assert (len(joined.rows), joined.unmatched_labels) == (0, 3)


def test_labels_that_carry_the_prediction_id_join_by_it(tmp_path: Path) -> None:
    logged = _logged(tmp_path)
    labels = pd.DataFrame({"prediction_id": logged["prediction_id"], "duration_min": [5.0, 9.0, 14.0]})

    joined = join_labels(logged, labels, target="duration_min", join="prediction_id", key_columns=[], namespace="x/y")

    assert len(joined.rows) == 3


@pytest.mark.parametrize(
    ("labels", "join", "fragment"),
    [
        (pd.DataFrame({"trip_id": ["a"]}), "key", "no column 'duration_min'"),
        (pd.DataFrame({"duration_min": [1.0]}), "key", "lack the key column(s) ['trip_id']"),
        (pd.DataFrame({"duration_min": [1.0]}), "prediction_id", "no prediction_id column"),
    ],
)
def test_label_rows_that_cannot_join_name_the_fix(
    tmp_path: Path, labels: pd.DataFrame, join: str, fragment: str
) -> None:
    with pytest.raises(DataError, match=r"monitoring\.labels|scoring\.key_columns") as info:
        join_labels(
            _logged(tmp_path), labels, target="duration_min", join=join, key_columns=["trip_id"], namespace="x/y"
        )  # type: ignore[arg-type]
    assert fragment in str(info.value)


def test_read_labels_reads_the_days_asked_and_a_missing_source_has_none_yet(tmp_path: Path) -> None:
    for day in (DAY, DAY + dt.timedelta(days=1)):
        folder = tmp_path / "labels" / f"date={day.isoformat()}"
        folder.mkdir(parents=True)
        ROWS.to_parquet(folder / "part-0.parquet", index=False)

    assert len(read_labels(f"file://{tmp_path}/labels", DAY, DAY)) == 3
    assert len(read_labels(f"file://{tmp_path}/labels", DAY, DAY + dt.timedelta(days=5))) == 6
    assert read_labels(f"file://{tmp_path}/labels", DAY - dt.timedelta(days=3), DAY - dt.timedelta(days=1)).empty
    assert read_labels(f"file://{tmp_path}/nothing_yet", DAY, DAY).empty
