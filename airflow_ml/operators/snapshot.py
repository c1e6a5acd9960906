"""Take the immutable snapshot of a city's data that every later task of the run reads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowFailException

from airflow_ml import settings
from airflow_ml.exceptions import DataContractError, DataError, SourceOutsideDataRoot, StorageUnreachable
from airflow_ml.hooks.storage_credentials import DEFAULT_AWS_CONN_ID, storage_options
from airflow_ml.operators.base import run_overrides

if TYPE_CHECKING:
    from airflow_ml.data.refusal import Kind


class SnapshotOperator(BaseOperator):
    """Copy the city's partitions of the run's window into ``<data_root>/snapshots/<template>/<city>/<run_id>``.

    The first task of a run: it refuses a conf that sets anything but the DAG's Params, or conflicting
    overrides (see :mod:`airflow_ml.operators.overrides`), before any work, whatever created the run. The
    window comes from the run's ``window_start``/``window_end`` Params. Nothing here is a template field:
    ``source`` comes from YAML and is never rendered by Jinja.

    Args:
        template: The DAG's template; with ``city`` it keys the snapshot, so cities of two templates never meet.
        city: The city id (a fallback parent's id: ``global`` or ``group.<group>``).
        members: The cities whose data the snapshot unites (a fallback parent's); just ``city`` when None.
        source: URI pattern of the city's data; ``{data_root}`` and ``{city}`` are filled in.
        data_format: ``parquet`` or ``csv`` (the snapshot is parquet either way).
        time_column: Column of CSV files parsed as date-times (ISO 8601).
        window_days: Use the latest N days of partitions (all when None and the run sets no window).
        data_root: Root of raw data and snapshots; defaults to ``AIRFLOW_ML_DATA_ROOT``.
        aws_conn_id: Airflow connection (type ``aws``) for ``s3://`` sources and data roots.
        contract: The dataset contract (:meth:`airflow_ml.data.contract.DataContract.to_dict`): the columns the
            DAG needs and the row filters; data that breaks it fails the task without a retry, and no snapshot.
            A local source that leads out of the data root (a ``..`` in ``source``, a symbolic link) does too.

    A run refused for its data, its conf or its source leaves ``refusal.json`` where its snapshot would be (see
    :mod:`airflow_ml.data.refusal`), so that ``airflow-ml status`` shows it as the latest run.

    Returns (XCom): ``uri``, ``row_count``, ``content_hash`` and ``partitions`` of the snapshot.
    """

    template_fields: Sequence[str] = ()
    ui_color = "#e8f4fa"

    def __init__(
        self,
        *,
        template: str,
        city: str,
        source: str,
        members: Sequence[str] | None = None,
        data_format: str = "parquet",
        time_column: str | None = None,
        window_days: int | None = None,
        data_root: str | None = None,
        aws_conn_id: str | None = DEFAULT_AWS_CONN_ID,
        contract: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.template = template
        self.city = city
        self.members = list(members) if members else None
        self.source = source
        self.data_format = data_format
        self.time_column = time_column
        self.aws_conn_id = aws_conn_id
        self.window_days = window_days
        self.data_root = data_root
        self.contract = contract

    def execute(self, context: Context) -> dict[str, Any]:
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
                template=self.template,
                city=self.city,
                run_id=context["run_id"],
                kind=kind,
                message=str(exc),
                window_start=params.get("window_start"),
                window_end=params.get("window_end"),
                window_days=self.window_days,
                storage_options=storage_options(root, aws_conn_id=self.aws_conn_id),
            )
        except Exception as problem:  # noqa: BLE001 - a storage outage, say: the refusal is what the task reports
            self.log.warning("no refusal record was written (%s: %s)", type(problem).__name__, problem)
            return
        if written:
            self.log.info("the refusal is recorded in %s (read by airflow-ml status)", written)

    def _snapshot(self, context: Context) -> dict[str, Any]:
        from airflow_ml.data.contract import DataContract
        from airflow_ml.data.snapshot import resolve_source, take_snapshot

        overrides = run_overrides(context, check_conf=True)
        self.log.info("the run's overrides: %s", overrides.to_dict())
        root = settings.data_root(self.data_root)
        try:
            sources = [resolve_source(self.source, data_root=root, city=m) for m in self.members or [self.city]]
        except SourceOutsideDataRoot as exc:
            raise AirflowFailException(f"{exc}\nno snapshot was written; the run stops here") from exc
        source = sources[0]
        options = storage_options(source, root, aws_conn_id=self.aws_conn_id)
        try:
            manifest = take_snapshot(
                sources if self.members else source,
                f"{root}/snapshots",
                storage_options=options,
                parse_dates=[self.time_column] if self.time_column else [],
                template=self.template,
                city=self.city,
                run_id=context["run_id"],
                fmt=self.data_format,
                window_days=self.window_days,
                start=overrides.window_start,
                end=overrides.window_end,
                contract=DataContract.from_dict(self.contract) if self.contract else None,
                data_root=root,
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
        return {
            "uri": manifest.uri,
            "row_count": manifest.row_count,
            "content_hash": manifest.content_hash,
            "partitions": [manifest.partitions[0], manifest.partitions[-1]],
        }


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
