"""Slices of the holdout: labels from the bins, refused columns."""

from __future__ import annotations

import numpy as np
import pytest

from airflow_ml.ml.gate.slices import evaluate_slices, slice_labels


def test_slice_labels_follow_the_bins_and_name_missing_and_outside_values() -> None:
    hours = np.array([0, 5, 6, 23, 24, 25, -1, np.nan])

    labels = slice_labels(hours, [0, 6, 24])

    assert list(labels) == [
        "[0, 6)",
        "[0, 6)",
        "[6, 24]",
        "[6, 24]",
        "[6, 24]",
        "outside [0, 24]",
        "outside [0, 24]",
        "missing",
    ]
    assert list(slice_labels(["mitte", None, "mitte"])) == ["mitte", "missing", "mitte"]


def test_bins_on_text_and_unknown_slice_columns_are_refused_with_the_column_named() -> None:
    with pytest.raises(ValueError, match=r"bins .* need numbers"):
        slice_labels(np.array(["a", "b"], dtype=object), [0, 1])
    with pytest.raises(ValueError, match="slice column 'zone' is not in the holdout"):
        evaluate_slices("rmse", [1.0, 2.0], [1.0, 2.0], None, {}, [{"column": "zone"}], max_regression=0.1, min_rows=1)
