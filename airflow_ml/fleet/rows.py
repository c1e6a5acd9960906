"""One row per city of the fleet: the metadata database's facts and the registry's, side by side.

Plain Python: the FastAPI adapter (:mod:`airflow_ml.fleet.app`) gathers the facts and renders the rows.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from airflow_ml.fleet.metadata import CityDag, DriftVerdict, LastRun
from airflow_ml.fleet.model_states import ModelState
from airflow_ml.fleet.trends import Trend

NO_MODEL = "no champion yet: no model is registered for this city"
NO_CHAMPION = "no champion yet: no version has been promoted"


def build_rows(
    dags: Iterable[CityDag],
    runs: Mapping[str, LastRun],
    drifts: Mapping[str, DriftVerdict],
    models: Mapping[str, ModelState],
    *,
    trends: Mapping[str, Trend] | None = None,
    approvals: Mapping[str, str] | None = None,
    ui_root: str = "/",
    mlflow_ui: str | None = None,
) -> list[dict[str, Any]]:
    """The fleet's rows, JSON-ready, in the order of ``dags``.

    Args:
        dags: The city DAGs.
        runs: The last run of each DAG id that has run.
        drifts: The last drift verdict of each DAG id.
        models: The registry state of each model (the model name is the DAG id).
        trends: The trend of each model over its versions (none drawn for a model missing here).
        approvals: The run of each DAG id whose approval task waits for a person.
        ui_root: The Airflow UI's root path (``[api] base_url``'s path), for the DAG and run links.
        mlflow_ui: The MLflow UI's base URL, or None when the store has no UI (no MLflow links then).

    Returns:
        One dict per city: ``dag_id``, ``city``, ``display_name`` (the DAG's display name's city part, else the
        city id), ``template``, ``model_name``, ``paused``, ``last_run``,
        ``champion``, ``champion_note``, ``decision``, ``naive_baseline`` (of the last decision), ``drift``,
        ``live`` (the monitor's newest live metric of the champion, beside its holdout score in ``champion``),
        ``disabled`` (the kill switch's mark: ``reason``, ``by``, ``at``; None when it may serve),
        ``trend`` (:meth:`~airflow_ml.fleet.trends.Trend.to_dict`), ``awaiting_approval`` (the run waiting
        for a person, or None), ``registry_error`` and ``links`` (``required_actions``: that run's Required
        Actions page in the Airflow UI).
    """
    root = ui_root if ui_root.endswith("/") else ui_root + "/"
    rows = []
    for dag in dags:
        run = runs.get(dag.dag_id)
        drift = drifts.get(dag.dag_id)
        model = models.get(dag.model_name) or ModelState(dag.model_name, error="registry not read")
        dag_path = f"{root}dags/{quote(dag.dag_id, safe='')}"
        waiting = (approvals or {}).get(dag.dag_id)
        trend = (trends or {}).get(dag.model_name)
        rows.append(
            {
                "dag_id": dag.dag_id,
                "city": dag.city,
                "display_name": dag.title,
                "template": dag.template,
                "model_name": model.name,
                "paused": dag.paused,
                "last_run": _run(run),
                "champion": _champion(model),
                "champion_note": _champion_note(model),
                "decision": _decision(model),
                "naive_baseline": _naive_baseline(model),
                "drift": _drift(drift),
                "live": model.live if model.champion_version is not None else None,
                "disabled": model.disabled,
                "trend": trend.to_dict() if trend is not None else None,
                "awaiting_approval": waiting,
                "registry_error": model.error,
                "links": {
                    "dag": dag_path,
                    "last_run": f"{dag_path}/runs/{quote(run.run_id, safe='')}" if run else None,
                    # Airflow 3.3's UI route of a run's Required Actions tab (its HITL requests).
                    "required_actions": f"{dag_path}/runs/{quote(waiting, safe='')}/required_actions"
                    if waiting
                    else None,
                    **_mlflow_links(mlflow_ui, model),
                },
            }
        )
    return rows


def _run(run: LastRun | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "run_id": run.run_id,
        "state": run.state,
        "run_type": run.run_type,
        "run_after": _iso(run.run_after),
        "start_date": _iso(run.start_date),
        "end_date": _iso(run.end_date),
    }


def _champion(model: ModelState) -> dict[str, Any] | None:
    if model.champion_version is None:
        return None
    return {"version": model.champion_version, "metric": model.metric, "value": model.score}


def _champion_note(model: ModelState) -> str | None:
    """Why there is no champion to show, or None when there is one."""
    if model.error:
        return model.error
    if not model.registered:
        return NO_MODEL
    if model.champion_version is not None:
        return None
    if model.champion_gone:
        return f"no champion: {model.champion_gone}; the next run's challenger may become champion"
    return NO_CHAMPION


def _decision(model: ModelState) -> dict[str, Any] | None:
    if model.decision is None:
        return None
    return {
        "decision": model.decision,
        "reason": model.reason,
        "version": model.decision_version,
        "run_id": model.decision_run_id,
    }


def _naive_baseline(model: ModelState) -> dict[str, Any] | None:
    """The last decision's naive baseline: what it predicted, its score, the challenger's skill and the minimum."""
    naive = model.naive_baseline
    if not naive:
        return None
    keys = ("metric", "statistic", "value", "score", "skill", "min_skill", "passed")
    # NaN (a skill that cannot be measured) is no JSON: the API would fail on it.
    return {key: None if _nan(naive.get(key)) else naive.get(key) for key in keys}


def _nan(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def _drift(drift: DriftVerdict | None) -> dict[str, Any] | None:
    if drift is None:
        return None
    return {
        "status": drift.status,
        "detail": drift.detail,
        "run_id": drift.run_id,
        "champion_version": drift.champion_version,
        "flagged": [{"column": c, "q_value": q} for c, q in sorted(drift.flagged.items(), key=lambda kv: kv[1])],
    }


def _mlflow_links(base: str | None, model: ModelState) -> dict[str, str | None]:
    """Links into the MLflow UI: the model, its champion and the last decided version (None without a UI)."""
    if not base or not model.registered:
        return {"mlflow_model": None, "mlflow_champion": None, "mlflow_decision": None}
    model_url = f"{base.rstrip('/')}/#/models/{quote(model.name, safe='')}"
    return {
        "mlflow_model": model_url,
        "mlflow_champion": f"{model_url}/versions/{model.champion_version}" if model.champion_version else None,
        "mlflow_decision": f"{model_url}/versions/{model.decision_version}" if model.decision_version else None,
    }


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
