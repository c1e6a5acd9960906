"""Take the immutable snapshot of a city's data that every later task of the run reads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowFailException

from airflow_ml import settings
from airflow_ml.exceptions import DataContractError, DataError, SourceOutsideDataRoot, StorageUnreachable
from airflow_ml.hooks.storage_credentials import DEFAULT_AWS_CONN_ID, storage_options
from airflow_ml.operators.base_operator import run_overrides
from airflow_ml.operators.dask_engine import engine_client

if TYPE_CHECKING:
    from airflow_ml.data.refusal import Kind
    from airflow_ml.ml.steps.step_settings import SnapshotSettings
    from airflow_ml.ml.steps.xcom_payloads import SnapshotPayload


class SnapshotOperator(BaseOperator):
    """Copy the city's partitions of the run's window into ``<data_root>/snapshots/<template>/<city>/<run_id>``.

    The first task of a run: it refuses a conf that sets anything but the DAG's Params, or conflicting
    overrides (see :mod:`airflow_ml.operators.overrides`), before any work, whatever created the run. The
    window comes from the run's ``window_start``/``window_end`` Params. Nothing here is a template field:
    ``source`` comes from YAML and is never rendered by Jinja.

    Args:
        settings: :meth:`SnapshotSettings.to_dict <airflow_ml.ml.steps.step_settings.SnapshotSettings.to_dict>`:
            template and city (which key the snapshot), the fallback parent's members, the source pattern,
            format, time column, window and the dataset contract (data that breaks it fails the task without a
            retry, and no snapshot; so does a local source that leads out of the data root).
        data_root: Root of raw data and snapshots; defaults to ``AIRFLOW_ML_DATA_ROOT``.
        aws_conn_id: Airflow connection (type ``aws``) for ``s3://`` sources and data roots.

    With ``engine: dask`` (``training.engine``) the snapshot is partitioned, one task per source file on the
    city's Dask cluster (:mod:`airflow_ml.data.dask_snapshot`), whose client is made here, at execute.

    A run refused for its data, its conf or its source leaves ``refusal.json`` where its snapshot would be (see
    :mod:`airflow_ml.data.refusal`), so that ``airflow-ml status`` shows it as the latest run.

    Returns (XCom): ``uri``, ``row_count``, ``content_hash`` and ``partitions`` of the snapshot.
    """

    template_fields: Sequence[str] = ()
    ui_color = "#e8f4fa"

    def __init__(
        self,
        *,
        settings: Mapping[str, Any],
        data_root: str | None = None,
        aws_conn_id: str | None = DEFAULT_AWS_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.settings = dict(settings)
        self.data_root = data_root
        self.aws_conn_id = aws_conn_id

    @property
    def snapshot_settings(self) -> SnapshotSettings:
        """The task's settings, typed."""
        from airflow_ml.ml.steps.step_settings import SnapshotSettings

        return SnapshotSettings.from_dict(self.settings)

    def execute(self, context: Context) -> SnapshotPayload:
        try:
            return self._snapshot(context)
        except Exception as exc:
            kind = refusal_kind(exc)
            if kind is not None:
                self._record_refusal(context, kind, exc)
            raise

    def _record_refusal(self, context: Context, kind: Kind, exc: Exception) -> None:
        """Leave ``refusal.json`` where the snapshot would be, best effort: it must never hide ``exc``."""
        from airflow_ml.data.refusal import record_refusal

        params = context.get("params") or {}
        try:
            root = settings.data_root(self.data_root)
            written = record_refusal(
                f"{root}/snapshots",
                template=self.snapshot_settings.template,
                city=self.snapshot_settings.city,
                run_id=context["run_id"],
                kind=kind,
                message=str(exc),
                window_start=params.get("window_start"),
                window_end=params.get("window_end"),
                window_days=self.snapshot_settings.window_days,
                storage_options=storage_options(root, aws_conn_id=self.aws_conn_id),
            )
        except Exception as problem:  # noqa: BLE001 - a storage outage, say: the refusal is what the task reports
            self.log.warning("no refusal record was written (%s: %s)", type(problem).__name__, problem)
            return
        if written:
            self.log.info("the refusal is recorded in %s (read by airflow-ml status)", written)

    def _snapshot(self, context: Context) -> SnapshotPayload:
        from airflow_ml.ml.steps import snapshot_step

        overrides = run_overrides(context, check_conf=True)
        self.log.info("the run's overrides: %s", overrides.to_dict())
        root = settings.data_root(self.data_root)
        options = None
        task = self.snapshot_settings
        try:
            sources = snapshot_step.sources(task, root)
            options = storage_options(sources[0], root, aws_conn_id=self.aws_conn_id)
            with engine_client(task.engine, task.dask, what="taking the snapshot") as client:
                manifest = snapshot_step.snapshot(
                    task,
                    sources,
                    data_root=root,
                    run_id=context["run_id"],
                    start=overrides.window_start,
                    end=overrides.window_end,
                    storage_options=options,
                    engine=task.engine,
                    dask_client=client,
                )
        except (DataContractError, SourceOutsideDataRoot) as exc:
            raise AirflowFailException(f"{exc}\nno snapshot was written; the run stops here") from exc
        except StorageUnreachable as exc:
            if not options:
                raise
            # The data layer knows the URL, not which Airflow connection reached it: name it here.
            raise StorageUnreachable(
                f"{exc} (Airflow connection {self.aws_conn_id!r} of type aws; its extra's endpoint_url and "
                "credentials are what the task used)"
            ) from exc
        self.log.info(
            "snapshot %s: %d rows from %d partition(s) %s..%s, content hash %s",
            manifest.uri,
            manifest.row_count,
            len(manifest.partitions),
            manifest.partitions[0],
            manifest.partitions[-1],
            manifest.content_hash,
        )
        for applied in manifest.filters:
            self.log.info("filter %s (%s) dropped %d row(s)", applied["field"], applied["filter"], applied["dropped"])
        for warning in manifest.warnings():
            self.log.warning("%s", warning)
        return snapshot_step.payload(manifest)


def refusal_kind(exc: BaseException) -> Kind | None:
    """What refused the run, for its refusal record; None when it is neither the data's nor the conf's.

    A storage outage (:class:`StorageUnreachable`) is not: the data may be fine and a retry may succeed.
    """
    cause = exc.__cause__ if isinstance(exc, AirflowFailException) and exc.__cause__ is not None else exc
    if isinstance(cause, StorageUnreachable):
        return None
    if isinstance(cause, (DataContractError, SourceOutsideDataRoot)):
        return "contract"
    if isinstance(cause, DataError):
        return "storage"
    return "conf" if isinstance(exc, AirflowFailException) else None
