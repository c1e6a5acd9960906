"""Register the trained model as a new version of the city's model, aliased ``challenger`` (in a ``dry_run``,
with no alias at all)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import Context

from airflow_ml.links.mlflow_links import MlflowModelVersionLink, model_version_url
from airflow_ml.operators.base import MlflowBaseOperator, airflow_lineage, mlflow_errors, run_overrides


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

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_ml.ml.registry import CHALLENGER, register_challenger

        alias = not run_overrides(context).dry_run
        tags = {
            **self.tags,
            **airflow_lineage(context),
            "airflow_ml.snapshot_hash": str(self.snapshot["content_hash"]),
            "airflow_ml.snapshot_uri": str(self.snapshot["uri"]),
            "mlflow_run_id": str(self.training["run_id"]),
        }
        run_id = str(self.training["run_id"])
        with mlflow_errors(self.hook, f"registering model {self.model_name!r}"):
            client = self.hook.get_conn()
            # A try that died after creating the version (before its alias) left it behind: a retry
            # completes that version instead of registering the same model twice.
            earlier = client.search_model_versions(f"name='{self.model_name}' and run_id='{run_id}'")
            if earlier:
                version = earlier[0]
                if alias:
                    client.set_registered_model_alias(self.model_name, CHALLENGER, version.version)
                self.log.info("version %s already holds run %s (an earlier try)", version.version, run_id)
            else:
                version = register_challenger(
                    client, self.model_name, self.training["model_uri"], run_id, tags, alias=alias
                )
        MlflowModelVersionLink.persist(
            context, model_version_url(self.hook.tracking_uri, self.model_name, version.version)
        )
        role = "challenger" if alias else "a dry run's version (no alias moved)"
        self.log.info("registered %s version %s as %s", self.model_name, version.version, role)
        return {"name": self.model_name, "version": str(version.version)}
