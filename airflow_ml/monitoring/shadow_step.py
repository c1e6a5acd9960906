"""The monitor's shadow phase: a challenger in shadow against the champion on the same labelled live rows.

When a city's ``challenger`` is not its champion and scoring shadow-scored it (``predictions_shadow/``), the rows
that both versions scored and whose label arrived are compared by :func:`~airflow_ml.monitoring.shadow_compare.
compare_shadow`; a verdict that says promote moves ``champion`` through
:func:`~airflow_ml.ml.shadow_promotion.promote_shadow` (which refuses when either alias moved since), unless
the city's active demotion refuses it (a cool-down, or approval needed:
:func:`~airflow_ml.ml.shadow_promotion.demotion_refusal`) or the kill switch disabled the city (a person has
taken control); the record then says why nothing moved (``promotion_refused``) and names the rule.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from airflow_ml.data.prediction_log import PARTITION_COLUMN, read_predictions
from airflow_ml.data.storage import StorageOptions
from airflow_ml.ml import model_registry as registry
from airflow_ml.ml.demotion_guard import active_demotion
from airflow_ml.ml.shadow_promotion import awaiting_approval, demotion_refusal, promote_shadow
from airflow_ml.ml.steps.step_settings import MonitorSettings
from airflow_ml.monitoring import shadow_compare
from airflow_ml.monitoring.label_join import LABEL

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient


def shadow_phase(
    client: MlflowClient,
    settings: MonitorSettings,
    *,
    champion_version: str,
    root: str,
    labels: pd.DataFrame,
    start: dt.date,
    end: dt.date,
    context: dict[str, Any],
    storage_options: StorageOptions | None = None,
    disabled: str | None = None,
) -> dict[str, Any] | None:
    """Compare the city's challenger in shadow with its champion and promote it when the verdict says so.

    Args:
        labels: The joined rows of the champion (:attr:`~airflow_ml.monitoring.label_join.JoinedLabels.rows`),
            whose ids, days, labels and predictions are the champion's side.
        disabled: ``disabled: <reason>`` when the kill switch disabled the city: compared, never promoted.

    Returns:
        None without a challenger in shadow (none, the champion itself, or no shadow settings); else the
        comparison: ``challenger_version``, ``verdict`` (its figures), ``after_demotion`` (the rule of the
        city's active demotion, or None) and, after a promotion, ``promotion``, or, when a verdict to promote
        was refused, ``promotion_refused`` (why: the demotion's rule, or the kill switch).
        ``verdict`` is None, with a ``reason``, when the challenger is the version the supervisor demoted
        (it is never compared back in), awaits a person's approval, or has no shadow predictions in the windows.
    """
    if settings.shadow is None:
        return None
    name = settings.model_name
    challenger = registry.version_by_alias(client, name, registry.CHALLENGER)
    if challenger is None or str(challenger.version) == champion_version:
        return None
    version = str(challenger.version)
    waiting = awaiting_approval(challenger.tags)
    if waiting is not None:  # its approval request is open: the person decides, not the live comparison
        return {"challenger_version": version, "verdict": None, "reason": f"v{version}: {waiting}"}
    demoted = active_demotion(client, name)
    if demoted is not None and demoted.version == version:  # no flapping: the supervisor removed this one
        return {"challenger_version": version, "verdict": None, "reason": f"v{version} is the demoted version"}
    shadow = read_predictions(
        root, settings.template, settings.city, start, end, shadow=True, storage_options=storage_options
    )
    mine = (shadow["model_name"].astype("str") == name) & (shadow["model_version"].astype("str") == version)
    challenger_rows = shadow[mine.to_numpy()] if len(shadow) else shadow
    if challenger_rows.empty:
        return {"challenger_version": version, "verdict": None, "reason": f"no shadow predictions of v{version}"}
    paired = _paired(labels, challenger_rows)
    verdict = shadow_compare.compare_shadow(paired, settings.metric, settings.shadow)
    result: dict[str, Any] = {"challenger_version": version, "verdict": verdict.to_dict(), "after_demotion": None}
    if not verdict.promote:
        return result
    guard, refusal = demotion_refusal(client, name)
    result["after_demotion"] = guard.sentence() if guard is not None else None
    if disabled is not None:
        refusal = f"{disabled}: a person has taken control of the city, so nothing is promoted on live rows"
    if refusal is not None:
        result["promotion_refused"] = f"the live comparison would promote v{version}, refused: {refusal}"
        return result
    result["promotion"] = promote_shadow(
        client, name, version, verdict, {**context, "by": "monitor"}, champion_version=champion_version
    )
    return result


def _paired(labels: pd.DataFrame, challenger_rows: pd.DataFrame) -> pd.DataFrame:
    """The champion's joined rows beside the challenger's prediction of the same id, on the same day.

    An id can be logged more than once (a row rescored on another day, a request that sends a batch row's key):
    the champion's side keeps its first logged row (:func:`~airflow_ml.monitoring.label_join.join_labels`), and
    the challenger's is its row of that same day, the first logged that day; so each id is compared once, on the
    row both models scored. An id the challenger did not score that day is left out.
    """
    day, champion, challenger = shadow_compare.DAY, shadow_compare.CHAMPION, shadow_compare.CHALLENGER
    champion_rows = labels.rename(columns={PARTITION_COLUMN: day, "prediction": champion})
    kept = [c for c in challenger_rows.columns if c not in ("prediction", PARTITION_COLUMN, "model_version")]
    shadow = challenger_rows[
        ["prediction_id", PARTITION_COLUMN, "prediction", *[c for c in kept if c != "prediction_id"]]
    ]
    shadow = shadow.rename(columns={PARTITION_COLUMN: day, "prediction": challenger})
    shadow = shadow.drop_duplicates(["prediction_id", day], keep="first")  # the log's order: batch, then requests
    return champion_rows[["prediction_id", day, LABEL, champion]].merge(
        shadow, on=["prediction_id", day], how="inner", validate="one_to_one"
    )
