"""Each step's charts, drawn from its record (or frames) and logged to the MLflow run that owns them.

- the gate: ``gate/charts/scores.png`` and ``gate/charts/slices.png`` on the challenger's training run;
- drift: ``charts/distributions.png`` on the drift run;
- training: ``holdout/charts/predicted_vs_actual.png`` (regression) or ``roc_calibration.png`` (binary).

A chart never fails the task it illustrates: building its data, drawing it, reading the run and logging the
files all happen inside one guard that turns any error into a warning and leaves the chart out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from airflow_ml.ml.charts import gate_charts as gate

log = logging.getLogger(__name__)
_Logged = TypeVar("_Logged")


def log_gate_charts(client: Any, run_id: str, record: Mapping[str, Any]) -> dict[str, Any] | None:
    """The gate's charts of a decision record, logged to the challenger's run ``run_id``.

    Returns:
        ``run_id``, ``experiment_id`` and ``artifacts`` (the paths logged): the record's ``charts``; None when
        the charts could not be logged (a warning says why).
    """

    def log_them() -> dict[str, Any]:
        from airflow_ml.ml.charts import chart_drawing as draw

        drawings: dict[str, Callable[[Path], object]] = {
            gate.GATE_SCORES_PNG: lambda path: draw.draw_gate_scores(gate.gate_scores(record), path)
        }
        if record.get("slices"):
            drawings[gate.GATE_SLICES_PNG] = lambda path: draw.draw_gate_slices(_some(gate.gate_slices(record)), path)
        artifacts = draw.log_charts(client, run_id, gate.GATE_CHARTS_FOLDER, drawings)
        return {"run_id": run_id, "experiment_id": client.get_run(run_id).info.experiment_id, "artifacts": artifacts}

    return _or_warning(gate.GATE_CHARTS_FOLDER, log_them, None)


def log_drift_charts(
    client: Any,
    run_id: str,
    reference: Any,
    current: Any,
    checks: Sequence[Mapping[str, Any]],
    flagged: Mapping[str, Any],
    *,
    title: str,
    shares: Mapping[str, Any] | None = None,
) -> list[str]:
    """The drift run's distributions chart (breached and flagged columns first); the paths logged.

    ``shares`` are the category shares the comparison counted (``DriftReport.shares``), drawn as they are.
    """

    def log_them() -> list[str]:
        from airflow_ml.ml.charts import chart_drawing as draw
        from airflow_ml.ml.charts.drift_charts import DRIFT_CHARTS_FOLDER, DRIFT_PNG, drift_distributions

        def drawing(path: Path) -> None:
            distributions = drift_distributions(reference, current, checks, flagged=flagged, shares=shares)
            draw.draw_drift(distributions, path, title=title)

        return draw.log_charts(client, run_id, DRIFT_CHARTS_FOLDER, {DRIFT_PNG: drawing})

    return _or_warning("charts", log_them, [])


def log_holdout_charts(
    client: Any, run_id: str, task: str, y_true: Any, y_pred: Any, *, metric: str, score: float | None
) -> list[str]:
    """The training run's holdout charts: fit and residuals (regression), ROC and calibration (binary)."""

    def log_them() -> list[str]:
        from airflow_ml.ml.charts import chart_drawing as draw
        from airflow_ml.ml.charts import holdout_charts as holdout

        drawings: dict[str, Callable[[Path], object]]
        if task == "binary":
            drawings = {holdout.ROC_PNG: lambda path: draw.draw_binary_fit(holdout.binary_fit(y_true, y_pred), path)}
        else:
            drawings = {
                holdout.FIT_PNG: lambda path: draw.draw_regression_fit(
                    holdout.regression_fit(y_true, y_pred, metric=metric, score=score), path
                )
            }
        return draw.log_charts(client, run_id, holdout.HOLDOUT_CHARTS_FOLDER, drawings)

    return _or_warning("holdout/charts", log_them, [])


def _or_warning(folder: str, log_them: Callable[[], _Logged], fallback: _Logged) -> _Logged:
    """``log_them()``, or ``fallback`` with a warning: any error of a chart (matplotlib, MLflow) stays here."""
    try:
        return log_them()
    except Exception as exc:  # noqa: BLE001 - a picture never fails the task it illustrates
        log.warning("charts %s were not logged: %s: %s", folder, type(exc).__name__, exc)
        return fallback


def _some(chart: gate.GateSlicesChart | None) -> gate.GateSlicesChart:
    if chart is None:
        raise ValueError("the record has no slices")
    return chart
