"""Rows against a model's input signature (airflow_ml.ml.signature_check), with MLflow's own inferred signatures."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from airflow_ml.ml.signature_check import SignatureMismatch, check_signature, signature_fit


def _schema(frame: pd.DataFrame) -> object:
    from mlflow.models import infer_signature

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLflow's hint about integer columns
        return infer_signature(frame).inputs


TRAINED = pd.DataFrame(
    {
        "hour": np.array([1, 2], dtype="int64"),
        "distance": [1.5, 2.0],
        "zone": pd.Series(["a", "b"], dtype="str"),
        "raining": [True, False],
        "at": pd.to_datetime(["2026-01-01", "2026-01-02"]),
    }
)


def test_rows_of_the_trained_types_fit_and_categories_of_text_read_as_text() -> None:
    rows = TRAINED.astype({"zone": "category", "hour": "int32", "distance": "float32"})

    fit = signature_fit(_schema(TRAINED), rows)

    assert fit.fits
    assert fit.widened == ()


def test_integers_where_the_signature_reads_double_are_widened_and_named() -> None:
    rows = TRAINED.assign(distance=np.array([2, 3], dtype="int64"))

    fit = signature_fit(_schema(TRAINED), rows)

    assert fit.fits
    assert fit.widened == ("distance",)


def test_every_difference_is_listed_with_its_column_and_both_types() -> None:
    rows = TRAINED.drop(columns=["raining"]).assign(
        hour=[1.5, 2.0], zone=[1, 2], at=pd.Series(["2026-01-01", "x"], dtype="str")
    )

    with pytest.raises(SignatureMismatch) as caught:
        check_signature(_schema(TRAINED), rows, what="partition 'p/date=2026-01-02'", model="m v3")

    message = str(caught.value)
    assert "partition 'p/date=2026-01-02' does not fit the input signature of m v3" in message
    assert "column 'hour' holds double (float64), the signature says long" in message
    assert "column 'zone' holds long (int64), the signature says string" in message
    assert "column 'raining' is missing (the signature says boolean)" in message
    assert "column 'at' holds string (str), the signature says datetime" in message
    assert "gate.accept_schema_change" in message


def test_text_mixed_with_numbers_is_not_text_and_a_model_without_a_signature_fits_anything() -> None:
    rows = TRAINED.assign(zone=pd.Series(["a", 3], dtype=object))

    assert signature_fit(_schema(TRAINED), rows).problems == (
        "column 'zone' holds mixed values (mixed-integer) (object), the signature says string",
    )
    assert signature_fit(None, rows).fits
