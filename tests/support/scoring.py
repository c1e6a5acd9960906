"""Scoring tests' registry: real LightGBM models of the demo trips, logged and registered in a real MLflow store.

:class:`ModelShelf` trains each distinct model once (a few boosting rounds, so that two models predict apart) and
registers it as a new version of any registered model, as the register task does (a version whose source is its
run's ``model`` artifacts), so that :func:`airflow_ml.ml.model_cache.load_pyfunc` loads it as serving does.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.support.mlflow_stores import wire_mlflow
from tests.support.task_runs import task_context
from tests.support.training_data import regression
from tests.support.worlds import copy_template

#: The scoring worlds' day: one of the demo data's "initial" days.
DAY = dt.date(2026, 1, 12)
#: The scoring section the scoring worlds' template appends (the demo source; keeps the zone for slices).
SCORING_YAML = """
scoring:
  source: "{data_root}/raw/trips/{city}"
  keep_columns: [pickup_zone]
"""


class ModelShelf:
    """Trained models of the demo trips, by number of boosting rounds, registered on demand.

    Args:
        client: The MLflow client of the store the versions go to.
        artifact_root: Where the experiments' artifacts go (``file://...``).
    """

    def __init__(self, client: Any, artifact_root: str) -> None:
        self.client = client
        self.artifact_root = artifact_root
        self._trained: dict[int, Any] = {}
        self._frame: pd.DataFrame | None = None

    def trips(self) -> pd.DataFrame:
        """Ten days of Lisbon's demo trips (trained on, and a sample for the signature)."""
        from airflow_ml.data.demo import DEMO_START, generate_day

        if self._frame is None:
            days = [DEMO_START + dt.timedelta(days=i) for i in range(10)]
            self._frame = pd.concat([generate_day("lisbon", d, scale=0.2) for d in days], ignore_index=True)
        return self._frame

    def trained(self, rounds: int) -> Any:
        """The model of ``rounds`` boosting rounds (trained once)."""
        from airflow_ml.ml.train import time_split, train_model

        if rounds not in self._trained:
            splits = time_split(self.trips(), "pickup_at", 0.15, 0.15)
            spec = regression(num_boost_round=rounds, early_stopping_rounds=rounds)
            self._trained[rounds] = train_model(splits, spec, score_holdout=False)
        return self._trained[rounds]

    def register(self, name: str, rounds: int, *, alias: str | None = None) -> str:
        """Register the ``rounds`` model as a new version of ``name`` (pointing ``alias`` at it); its version."""
        from airflow_ml.ml.model_registry import get_or_create_experiment, log_model, register_challenger

        experiment = get_or_create_experiment(self.client, name, self.artifact_root)
        run = self.client.create_run(experiment)
        source = log_model(self.client, run.info.run_id, self.trained(rounds), self.trips())
        self.client.set_terminated(run.info.run_id)
        version = register_challenger(self.client, name, source, run.info.run_id, {}, alias=False)
        if alias:
            self.client.set_registered_model_alias(name, alias, version.version)
        return str(version.version)


#: The model of the operator worlds' city.
LISBON_MODEL = "ride_duration.lisbon"


@contextlib.contextmanager
def scoring_operator_world(root: Path) -> Iterator[dict[str, Any]]:
    """lisbon's scoring DAG built by the factory, its demo data and a real MLflow store with its champion (v1).

    Yields ``dag``, ``client`` and ``data_root``; the data root and the ``mlflow_default`` connection are set
    in the environment meanwhile.
    """
    from mlflow import MlflowClient

    from airflow_ml.data.demo import write_demo_data
    from airflow_ml.factory import register_score_dags

    copy_template(root, "ride_duration", extra=SCORING_YAML)
    (root / "cities" / "lisbon.yaml").write_text("city: lisbon\ntemplate: ride_duration\n", encoding="utf-8")
    write_demo_data(root / "data", cities=["lisbon"], batch="initial", scale=0.05)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_ML_DATA_ROOT", str(root / "data"))
        store = wire_mlflow(root / "mlflow", mp)
        client = MlflowClient(tracking_uri=store["tracking_uri"], registry_uri=store["tracking_uri"])
        ModelShelf(client, store["artifact_root"]).register(LISBON_MODEL, 5, alias="champion")
        dag = register_score_dags({}, templates_root=root)["ride_duration.lisbon.score"]
        yield {"dag": dag, "client": client, "data_root": root / "data"}


def scoring_context(dag: Any, task_id: str) -> dict[str, Any]:
    """The context ``execute`` of a scoring task gets in a run for :data:`DAY` (see ``task_runs.task_context``)."""
    found = task_context(dag, task_id)
    found["logical_date"] = dt.datetime.combine(DAY, dt.time(), tzinfo=dt.UTC)
    return found
