"""The snapshot step: copy the run's partitions of the city's data into the immutable snapshot every task reads."""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import Any, Literal

from airflow_ml.data.contract import DataContract
from airflow_ml.data.dask_snapshot import take_partitioned_snapshot
from airflow_ml.data.snapshot import Manifest, resolve_source, take_snapshot
from airflow_ml.data.storage import StorageOptions
from airflow_ml.ml.steps.step_settings import SnapshotSettings
from airflow_ml.ml.steps.xcom_payloads import SnapshotPayload


def sources(settings: SnapshotSettings, data_root: str) -> list[str]:
    """The URIs the snapshot reads: the city's, or each member's of a fallback parent.

    Raises:
        SourceOutsideDataRoot: when the source pattern has a ``..`` segment.
    """
    return [resolve_source(settings.source, data_root=data_root, city=m) for m in settings.members or [settings.city]]


def snapshot(
    settings: SnapshotSettings,
    uris: list[str],
    *,
    data_root: str,
    run_id: str,
    start: dt.date | None = None,
    end: dt.date | None = None,
    storage_options: StorageOptions | None = None,
    engine: Literal["local", "dask"] = "local",
    dask_client: Any = None,
) -> Manifest:
    """The snapshot task: copy ``uris`` (see :func:`sources`) of the window into ``<data_root>/snapshots``.

    Args:
        engine: ``local`` writes one ``data.parquet`` in this process; ``dask`` a partitioned snapshot, one task
            per source file on ``dask_client``'s cluster (:mod:`airflow_ml.data.dask_snapshot`).
        dask_client: A ``distributed.Client`` (``dask`` only); None runs on Dask's default scheduler.

    Raises:
        DataContractError: when the data breaks the dataset contract; no snapshot is written.
        SourceOutsideDataRoot: when a local source leads out of the data root.
    """
    if engine not in ("local", "dask"):
        raise ValueError(f"engine {engine!r} is not one of 'local', 'dask'")
    take = take_snapshot if engine == "local" else partial(take_partitioned_snapshot, client=dask_client)
    return take(
        uris if settings.members else uris[0],
        f"{data_root}/snapshots",
        storage_options=storage_options,
        parse_dates=[settings.time_column] if settings.time_column else [],
        template=settings.template,
        city=settings.city,
        run_id=run_id,
        fmt=settings.data_format,
        window_days=settings.window_days,
        start=start,
        end=end,
        contract=DataContract.from_dict(dict(settings.contract)) if settings.contract else None,
        data_root=data_root,
    )


def payload(manifest: Manifest) -> SnapshotPayload:
    """The snapshot task's XCom: the URI, rows, content hash and first and last partitions."""
    return {
        "uri": manifest.uri,
        "row_count": manifest.row_count,
        "content_hash": manifest.content_hash,
        "partitions": [manifest.partitions[0], manifest.partitions[-1]],
    }
