"""A retraining DAG written by hand from ``airflow_ml.operators``, without the factory or any YAML.

snapshot → validate → train → register → gate for the demo's Berlin trips: each task gets its settings as the
``to_dict()`` of a public settings class (:mod:`airflow_ml.ml.steps.step_settings`), and the tasks hand each
other small typed XComs (:mod:`airflow_ml.ml.steps.xcom_payloads`) through ``.output``. See index.md beside
this file for what the factory adds on top.

At run time the tasks read the data root from ``AIRFLOW_ML_DATA_ROOT`` and MLflow from the ``mlflow_default``
connection, as the factory's DAGs do.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from airflow.sdk import DAG

from airflow_ml.ml.gate.naive_baseline import NaiveBaseline
from airflow_ml.ml.gate.rules import GateRules
from airflow_ml.ml.steps.step_settings import (
    GateSettings,
    SnapshotSettings,
    SplitSettings,
    TrainingSettings,
    ValidationSettings,
)
from airflow_ml.ml.train_spec import TrainSpec
from airflow_ml.operators import (
    PromotionGateOperator,
    RegisterModelOperator,
    SnapshotOperator,
    TrainModelOperator,
    ValidateDataOperator,
)

#: The repository's suites (this file lives in docs/examples/); point it at your own folder.
EXPECTATIONS = Path(__file__).resolve().parents[2] / "expectations"
#: The registered model, and the MLflow experiment its training runs go to.
MODEL = "hand_written.berlin"
FEATURES = ["distance_km", "pickup_hour", "weekday", "pickup_zone", "temperature_c", "is_raining"]
TARGET = "duration_min"
#: One split for training and the gate, so that the gate scores the holdout training never saw.
SPLIT = SplitSettings(time_column="pickup_at", validation_fraction=0.15, holdout_fraction=0.15)

snapshot_settings = SnapshotSettings(
    template="hand_written",
    city="berlin",
    source="{data_root}/raw/trips/{city}",
    time_column="pickup_at",
    window_days=90,
)
validation_settings = ValidationSettings(suite="ride_trips", expectations_dir=str(EXPECTATIONS), city="berlin")
training_settings = TrainingSettings(
    experiment=MODEL,
    spec=TrainSpec(
        features=FEATURES,
        categorical=["pickup_zone"],
        target=TARGET,
        metric="rmse",
        num_boost_round=100,
        early_stopping_rounds=20,
        params={"learning_rate": 0.1, "num_leaves": 31},
    ),
    split=SPLIT,
    tags={"airflow_ml.city": "berlin", "airflow_ml.template": "hand_written"},
)
gate_settings = GateSettings(
    model_name=MODEL,
    target=TARGET,
    metric="rmse",
    split=SPLIT,
    rules=GateRules(min_improvement=0.005, min_holdout_rows=200, naive_baseline=NaiveBaseline()),
)

with DAG(
    dag_id="hand_written.berlin",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    tags=["airflow-ml", "example"],
):
    snapshot = SnapshotOperator(task_id="snapshot", settings=snapshot_settings.to_dict())
    validate = ValidateDataOperator(
        task_id="validate", snapshot=snapshot.output, settings=validation_settings.to_dict()
    )
    train = TrainModelOperator(task_id="train", snapshot=snapshot.output, settings=training_settings.to_dict())
    register = RegisterModelOperator(
        task_id="register",
        model_name=MODEL,
        training=train.output,
        snapshot=snapshot.output,
        tags=dict(training_settings.tags),
    )
    gate = PromotionGateOperator(
        task_id="gate", registration=register.output, snapshot=snapshot.output, settings=gate_settings.to_dict()
    )
    snapshot >> validate >> train >> register >> gate
