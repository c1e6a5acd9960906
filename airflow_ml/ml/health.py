"""The health check of a freshly promoted champion: load it by its alias, predict, judge the predictions.

Plain functions over a client and frames: the health step (:mod:`airflow_ml.ml.steps.health_step`) fetches
the rows, these judge them.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from airflow_ml.ml import model_registry as registry

#: Where training logs the holdout predictions of each run (see ``steps.train_step.train_and_log``).
HOLDOUT_PREDICTIONS_ARTIFACT = "lineage/holdout_predictions.parquet"
QUANTILES = (0.1, 0.5, 0.9)
#: The seed of the holdout rows the check samples (the same holdout checks the same rows, on either engine).
SAMPLE_SEED = 0


@dataclass(frozen=True)
class HealthThresholds:
    """Limits of the distribution check, in standard deviations of the reference predictions."""

    max_mean_shift: float = 1.0
    max_quantile_shift: float = 1.5


def reference_predictions(client: MlflowClient, version: ModelVersion) -> pd.Series | None:
    """The holdout predictions logged when ``version`` was trained, or None when its run logged none."""
    if not version.run_id:
        return None
    names = {a.path for a in client.list_artifacts(version.run_id, "lineage")}
    if HOLDOUT_PREDICTIONS_ARTIFACT not in names:
        return None
    with tempfile.TemporaryDirectory(prefix="airflow-ml-health-") as tmp:
        local = client.download_artifacts(version.run_id, HOLDOUT_PREDICTIONS_ARTIFACT, tmp)
        return pd.read_parquet(Path(local), columns=["prediction"])["prediction"]


def check_predictions(
    model: Any, rows: pd.DataFrame, reference: pd.Series | None, thresholds: HealthThresholds
) -> dict[str, Any]:
    """Judge a model on ``rows``: schema, finite and varied predictions, a distribution close to ``reference``.

    Returns:
        ``passed``, the ``problems`` found (empty when passed) and the figures behind them.
    """
    problems: list[str] = []
    figures: dict[str, Any] = {"rows": len(rows)}
    schema = model.metadata.get_input_schema()
    expected = schema.input_names() if schema is not None else list(rows.columns)
    missing = [name for name in expected if name not in rows.columns]
    if missing:
        problems.append(f"schema: the model expects columns {missing} that the snapshot lacks")
        return {"passed": False, "problems": problems, **figures}
    try:
        predictions = np.asarray(model.predict(rows[expected]), dtype=float).ravel()
    except Exception as exc:  # noqa: BLE001 - any failure to predict is the finding
        problems.append(f"schema: the model refused the snapshot's rows: {str(exc).splitlines()[0][:300]}")
        return {"passed": False, "problems": problems, **figures}
    finite = np.isfinite(predictions)
    figures["non_finite"] = int((~finite).sum())
    if figures["non_finite"]:
        problems.append(f"predictions: {figures['non_finite']} of {len(predictions)} are NaN or infinite")
    values = predictions[finite]
    if values.size == 0 or float(np.std(values)) == 0.0:
        problems.append("predictions: every prediction is the same value; the model predicts a constant")
    if reference is not None and values.size and not problems:
        problems += _distribution_problems(values, reference.to_numpy(dtype=float), thresholds, figures)
    return {"passed": not problems, "problems": problems, **figures}


def _distribution_problems(
    values: np.ndarray, reference: np.ndarray, thresholds: HealthThresholds, figures: dict[str, Any]
) -> list[str]:
    reference = reference[np.isfinite(reference)]
    if reference.size == 0:
        return []
    # A reference with no spread would make every shift infinite; fall back to a unit scale.
    scale = float(np.std(reference)) or 1.0
    problems = []
    mean_shift = abs(float(values.mean()) - float(reference.mean())) / scale
    figures["mean_shift"] = round(mean_shift, 6)
    figures["mean"], figures["reference_mean"] = float(values.mean()), float(reference.mean())
    if mean_shift > thresholds.max_mean_shift:
        problems.append(
            f"distribution: the mean prediction moved {mean_shift:.3g} std devs from the holdout's at training "
            f"({figures['mean']:.6g} vs {figures['reference_mean']:.6g}), more than {thresholds.max_mean_shift}"
        )
    for q in QUANTILES:
        shift = abs(float(np.quantile(values, q)) - float(np.quantile(reference, q))) / scale
        figures[f"q{round(q * 100)}_shift"] = round(shift, 6)
        if shift > thresholds.max_quantile_shift or math.isnan(shift):
            problems.append(
                f"distribution: the {q:.0%} quantile moved {shift:.3g} std devs from the holdout's at training, "
                f"more than {thresholds.max_quantile_shift}"
            )
    return problems


def check_champion(
    client: MlflowClient,
    model_name: str,
    holdout: pd.DataFrame,
    *,
    sample_rows: int,
    thresholds: HealthThresholds,
    seed: int = SAMPLE_SEED,
    loaded: tuple[str, Any] | None = None,
) -> dict[str, Any]:
    """Load ``model_name@champion`` through the registry and check it on a sample of ``holdout``.

    Args:
        loaded: The champion's version and its model, when the caller loaded it already (as serving loads it):
            the version checked. When the alias names another version by now, nothing is judged: the record's
            ``passed`` is None and ``skipped`` says why.

    Returns:
        The check's record (see :func:`check_predictions`) with the ``champion_version`` checked.
    """
    champion = registry.version_by_alias(client, model_name, registry.CHAMPION)
    if champion is None:
        return {"passed": False, "problems": [f"{model_name} has no {registry.CHAMPION!r} alias"]}
    if loaded is not None and loaded[0] != str(champion.version):
        # Moved since it was loaded (a rollback, a forced promotion): the other version is not judged on this
        # run's data, nor rolled back for it.
        return {
            "passed": None,
            "problems": [],
            "skipped": f"the champion moved to v{champion.version} during the check of v{loaded[0]}; nothing judged",
            "champion_version": loaded[0],
        }
    rows = holdout.sample(n=min(sample_rows, len(holdout)), random_state=seed) if len(holdout) else holdout
    model = loaded[1] if loaded is not None else registry.load_version(client, champion)
    record = check_predictions(model, rows, reference_predictions(client, champion), thresholds)
    return {**record, "champion_version": str(champion.version)}
