"""A gate decision record as the gate step writes it (scores, intervals, slices), for the chart tests."""

from __future__ import annotations

from typing import Any

RECORD: dict[str, Any] = {
    "metric": "rmse",
    "direction": "minimize",
    "challenger_version": "2",
    "baseline_version": "1",
    "holdout_rows": 500,
    "challenger_score": 4.0,
    "champion_score": 4.4,
    "bootstrap": {"resamples": 100, "confidence": 0.95, "seed": 0, "challenger": [3.8, 4.2], "champion": [4.1, 4.6]},
    "naive_baseline": {"metric": "rmse", "statistic": "mean", "score": 9.0},
    "slices": [
        {
            "column": "zone",
            "value": v,
            "rows": 100,
            "challenger_score": 4.0 + i,
            "champion_score": 4.1,
            "regression": i / 4,
            "judged": True,
            "breached": i > 1,
        }
        for i, v in enumerate("abc")
    ],
    "max_slice_regression": 0.3,
}
