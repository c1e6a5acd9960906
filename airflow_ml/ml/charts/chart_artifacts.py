"""Each step's charts, drawn from its record (or frames) and logged to the MLflow run that owns them.

- the gate: ``gate/charts/scores.png`` and ``gate/charts/slices.png`` on the challenger's training run;
- drift: ``charts/distributions.png`` on the drift run;
- training: ``holdout/charts/predicted_vs_actual.png`` (regression) or ``roc_calibration.png`` (binary).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from airflow_ml.ml.charts import gate_charts as gate


def log_gate_charts(client: Any, run_id: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """The gate's charts of a decision record, logged to the challenger's run ``run_id``.

    Returns:
        ``run_id``, ``experiment_id`` and ``artifacts`` (the paths logged): the record's ``charts``.
    """
    from airflow_ml.ml.charts import chart_drawing as draw

    drawings: dict[str, Callable[[Path], None]] = {
        gate.GATE_SCORES_PNG: partial(draw.draw_gate_scores, gate.gate_scores(record))
    }
    slices = gate.gate_slices(record)
    if slices is not None:
        drawings[gate.GATE_SLICES_PNG] = partial(draw.draw_gate_slices, slices)
    artifacts = draw.log_charts(client, run_id, gate.GATE_CHARTS_FOLDER, drawings)
    return {"run_id": run_id, "experiment_id": client.get_run(run_id).info.experiment_id, "artifacts": artifacts}


def log_drift_charts(
    client: Any,
    run_id: str,
    reference: Any,
    current: Any,
    checks: Sequence[Mapping[str, Any]],
    flagged: Mapping[str, Any],
    *,
    title: str,
) -> list[str]:
    """The drift run's distributions chart (breached and flagged columns first); the paths logged."""
    from airflow_ml.ml.charts import chart_drawing as draw
    from airflow_ml.ml.charts.drift_charts import DRIFT_CHARTS_FOLDER, DRIFT_PNG, drift_distributions

    distributions = drift_distributions(reference, current, checks, flagged=flagged)
    drawing = partial(draw.draw_drift, distributions, title=title)
    return draw.log_charts(client, run_id, DRIFT_CHARTS_FOLDER, {DRIFT_PNG: drawing})


def log_holdout_charts(
    client: Any, run_id: str, task: str, y_true: Any, y_pred: Any, *, metric: str, score: float | None
) -> list[str]:
    """The training run's holdout charts: fit and residuals (regression), ROC and calibration (binary)."""
    from airflow_ml.ml.charts import chart_drawing as draw
    from airflow_ml.ml.charts import holdout_charts as holdout

    drawings: dict[str, Callable[[Path], None]]
    if task == "binary":
        drawings = {holdout.ROC_PNG: lambda path: draw.draw_binary_fit(holdout.binary_fit(y_true, y_pred), path)}
    else:
        fit = holdout.regression_fit(y_true, y_pred, metric=metric, score=score)
        drawings = {holdout.FIT_PNG: partial(draw.draw_regression_fit, fit)}
    return draw.log_charts(client, run_id, holdout.HOLDOUT_CHARTS_FOLDER, drawings)
