"""A thin base for operators that talk to MLflow through :class:`MlflowHook`."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow.sdk import BaseOperator, Context

from airflow_ml.hooks.mlflow import MlflowHook


class MlflowBaseOperator(BaseOperator):
    """Holds the MLflow connection id and builds the hook lazily, at execute time.

    Args:
        mlflow_conn_id: The Airflow connection of type ``mlflow``.
    """

    def __init__(self, *, mlflow_conn_id: str = MlflowHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mlflow_conn_id = mlflow_conn_id

    @cached_property
    def hook(self) -> MlflowHook:
        """The MLflow hook of this task."""
        return MlflowHook(mlflow_conn_id=self.mlflow_conn_id)


def airflow_lineage(context: Context) -> dict[str, str]:
    """Tags that tie an MLflow object to the Airflow task instance that made it."""
    ti = context["ti"]
    return {
        "airflow.dag_id": ti.dag_id,
        "airflow.run_id": context["run_id"],
        "airflow.task_id": ti.task_id,
        "airflow.try_number": str(ti.try_number),
    }


def is_empty(value: Any) -> bool:
    """Whether a rendered template value means "no override": None, "", "None" or "null"."""
    return value is None or (isinstance(value, str) and value.strip() in ("", "None", "null"))


def optional_number(value: Any, field: str) -> float | None:
    """A rendered template value as a number, or None for an empty override.

    Raises:
        ValueError: naming the field when the value is not a number.
    """
    if is_empty(value):
        return None
    if isinstance(value, bool):
        raise ValueError(f"{field}: expected a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{field}: expected a number, got {value!r}; fix the trigger parameter") from None
