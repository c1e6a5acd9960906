"""Register the trained model as a new version of the city's model, aliased ``challenger`` (in a ``dry_run``,
with no alias at all)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import Context

from airflow_ml.links.mlflow_links import MlflowModelVersionLink, model_version_url
from airflow_ml.ml.steps.xcom_payloads import RegistrationPayload
from airflow_ml.operators.base_operator import MlflowBaseOperator, airflow_lineage, mlflow_errors, run_overrides


class RegisterModelOperator(MlflowBaseOperator):
    """Create a version of registered model ``model_name`` from the training run's model.

    The ``champion`` alias is never touched here: only the gate moves it. A run with promotion mode
    ``dry_run`` registers the version (the gate scores it) and moves no alias, ``challenger`` included.

    Args:
        model_name: The city's registered model.
        training: The training task's XCom (``run_id`` and ``model_uri``); templated.
        snapshot: The snapshot task's XCom, for the lineage tags; templated.
        tags: Extra version tags (city, template...).

    Returns (XCom): ``name`` and ``version``.
    """

    template_fields: Sequence[str] = ("training", "snapshot")
    operator_extra_links = (MlflowModelVersionLink(),)
    ui_color = "#f1ecfa"

    def __init__(
        self, *, model_name: str, training: Any, snapshot: Any, tags: dict[str, str] | None = None, **kwargs: Any
    ):
        super().__init__(**kwargs)
        self.model_name = model_name
        self.training = training
        self.snapshot = snapshot
        self.tags = tags or {}

    def execute(self, context: Context) -> RegistrationPayload:
        from airflow_ml.ml.steps.register_step import register

        alias = not run_overrides(context).dry_run
        with mlflow_errors(self.hook, f"registering model {self.model_name!r}"):
            version, earlier = register(
                self.hook.get_conn(),
                self.model_name,
                self.training,
                self.snapshot,
                tags={**self.tags, **airflow_lineage(context)},
                alias=alias,
            )
        if earlier:
            self.log.info("version %s already holds run %s (an earlier try)", version.version, self.training["run_id"])
        MlflowModelVersionLink.persist(
            context, model_version_url(self.hook.tracking_uri, self.model_name, version.version)
        )
        role = "challenger" if alias else "a dry run's version (no alias moved)"
        self.log.info("registered %s version %s as %s", self.model_name, version.version, role)
        return {"name": self.model_name, "version": str(version.version)}
