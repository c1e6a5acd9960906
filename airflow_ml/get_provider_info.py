"""Provider metadata read by Airflow through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from airflow_ml import __version__


def get_provider_info() -> dict[str, Any]:
    """Describe the provider: its hooks, operators, the ``mlflow`` and ``dask`` connection types and extra links."""
    return {
        "package-name": "airflow-ml",
        "name": "airflow-ml",
        "description": "Per-city retraining of LightGBM models with Great Expectations and MLflow.",
        "versions": [__version__],
        "integrations": [
            {"integration-name": "MLflow", "external-doc-url": "https://mlflow.org/docs/latest/", "tags": ["software"]},
            {"integration-name": "Dask", "external-doc-url": "https://distributed.dask.org/", "tags": ["software"]},
        ],
        "hooks": [
            {"integration-name": "MLflow", "python-modules": ["airflow_ml.hooks.mlflow"]},
            {"integration-name": "Dask", "python-modules": ["airflow_ml.hooks.dask_cluster"]},
        ],
        "operators": [
            {
                "integration-name": "MLflow",
                "python-modules": [
                    "airflow_ml.operators.snapshot_operator",
                    "airflow_ml.operators.validate_operator",
                    "airflow_ml.operators.drift_operator",
                    "airflow_ml.operators.drift_review_operator",
                    "airflow_ml.operators.train_operator",
                    "airflow_ml.operators.register_operator",
                    "airflow_ml.operators.gate_operator",
                    "airflow_ml.operators.approval_operator",
                    "airflow_ml.operators.health_operator",
                    "airflow_ml.operators.rollback_operator",
                    "airflow_ml.operators.monitor_operator",
                    "airflow_ml.operators.prune_operator",
                    "airflow_ml.operators.resolve_operator",
                    "airflow_ml.operators.score_operator",
                ],
            }
        ],
        "connection-types": [
            {
                "hook-class-name": "airflow_ml.hooks.mlflow.MlflowHook",
                "hook-name": "MLflow",
                "connection-type": "mlflow",
                "conn-fields": {
                    "tracking_uri": {
                        "label": "Tracking URI",
                        "schema": {"type": ["string", "null"]},
                        "description": "e.g. http://mlflow:5000 or sqlite:////srv/mlflow.db; else host and port",
                    },
                    "registry_uri": {
                        "label": "Registry URI",
                        "schema": {"type": ["string", "null"]},
                        "description": "Defaults to the tracking URI.",
                    },
                    "artifact_root": {
                        "label": "Artifact root",
                        "schema": {"type": ["string", "null"]},
                        "description": "Artifacts of new experiments (file:// or s3://); leave unset with a server.",
                    },
                    "token": {
                        "label": "Token",
                        "schema": {"type": ["string", "null"], "format": "password"},
                        "description": "Bearer token for an HTTP(S) server; wins over Login and Password.",
                    },
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["extra"],
                    "relabeling": {
                        "host": "Tracking server host",
                        "schema": "Scheme (http or https)",
                        "login": "Username (basic auth)",
                        "password": "Password (basic auth)",
                    },
                    "placeholders": {"host": "mlflow", "port": "5000", "schema": "http"},
                },
            },
            {
                "hook-class-name": "airflow_ml.hooks.dask_cluster.DaskClusterHook",
                "hook-name": "Dask cluster",
                "connection-type": "dask",
                "conn-fields": {
                    "ca_file": {
                        "label": "CA file",
                        "schema": {"type": ["string", "null"]},
                        "description": "tls:// only: path of the CA certificate on the Airflow worker.",
                    },
                    "cert_file": {
                        "label": "Client certificate file",
                        "schema": {"type": ["string", "null"]},
                        "description": "tls:// only, with the key file: the client's certificate path.",
                    },
                    "key_file": {
                        "label": "Client key file",
                        "schema": {"type": ["string", "null"]},
                        "description": "tls:// only: the client's private key path.",
                    },
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["extra", "login", "password"],
                    "relabeling": {"host": "Scheduler address or host", "schema": "Scheme (tcp or tls)"},
                    "placeholders": {"host": "tcp://dask-scheduler:8786", "port": "8786", "schema": "tcp"},
                },
            },
        ],
        "extra-links": [
            "airflow_ml.links.mlflow_links.MlflowRunLink",
            "airflow_ml.links.mlflow_links.MlflowModelVersionLink",
            "airflow_ml.links.mlflow_links.ValidationReportLink",
        ],
    }
