"""``training.engine: dask``: the same model as :func:`airflow_ml.ml.train.train_model`, trained by ``lightgbm.dask``.

The rows are read with ``dask.dataframe.read_parquet`` (one file or a partitioned folder, local or S3) and stay
on the cluster. What matches the local path, and how:

- **Split**: the same rows as :func:`~airflow_ml.ml.train.time_split`: rows are numbered in read order and sorted
  by (time, number) on the cluster, the stable order of the local ``mergesort``, then cut at the same positions.
- **Preprocessing**: :meth:`Preprocessor.fit <airflow_ml.ml.serving.Preprocessor.fit>` learns only each
  categorical column's levels, which depend only on the column's distinct values; the cluster computes those
  (``drop_duplicates``) and the very same ``fit`` runs on them, so the categories equal the local fit's exactly.
- **Early stopping**: ``lightgbm.dask`` 4.7 does not support it; every round is trained and the booster is cut
  at the round LightGBM's ``early_stopping`` callback would pick (:mod:`airflow_ml.ml.dask_curve`).
- **Model**: ``.to_local()``'s booster with the preprocessor: the same pyfunc as the local path logs.

LightGBM's distributed histograms differ from one process's (each worker bins its own rows' sample), so the
model is close to, not equal to, the local one. The driver holds the holdout (for the lineage artifact and the
charts, as the gate reads it today) and two float64 per row of a split while scoring it.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from airflow_ml.data.storage import StorageOptions, filesystem, storage_errors
from airflow_ml.ml.dask_client import dask_client, run_guarded
from airflow_ml.ml.dask_curve import MINIMIZED, early_stopping_point, validation_curve
from airflow_ml.ml.dask_settings import ClusterAddress, DaskSettings
from airflow_ml.ml.metrics import lightgbm_metric, score
from airflow_ml.ml.train_spec import TrainSpec

if TYPE_CHECKING:
    import dask.dataframe as dd
    import numpy as np
    from distributed import Client

    from airflow_ml.data.snapshot import Manifest
    from airflow_ml.ml.serving import Preprocessor
    from airflow_ml.ml.train import Splits, TrainedModel

log = logging.getLogger(__name__)

_ROW, _POS = "__airflow_ml_row", "__airflow_ml_pos"


class SplitLike(Protocol):
    """The time split (``SplitSettings`` of the train step, which this core module does not import)."""

    @property
    def time_column(self) -> str: ...
    @property
    def validation_fraction(self) -> float: ...
    @property
    def holdout_fraction(self) -> float: ...


@dataclass(frozen=True)
class DaskSplits:
    """The three time splits of a snapshot, persisted on the cluster, and their row counts."""

    train: dd.DataFrame
    validation: dd.DataFrame
    holdout: dd.DataFrame
    sizes: dict[str, int]


def snapshot_files(manifest: Manifest) -> list[str]:
    """The parquet files of the snapshot of ``manifest``, in its rows' order, as :func:`read_rows` takes them.

    A partitioned snapshot (taken on Dask) is exactly the parts its manifest lists, never whatever else lies in
    its folder; a one-file snapshot is its ``data.parquet``. Read in this order, the rows are numbered as
    :func:`airflow_ml.data.snapshot.read_snapshot` concatenates them, so the split is the local one.
    """
    from airflow_ml.data.snapshot import DATA_FILE
    from airflow_ml.data.snapshot_parts import PARTITIONED_KIND

    uri = manifest.uri.rstrip("/")
    if manifest.kind == PARTITIONED_KIND:
        return [f"{uri}/{part['file']}" for part in manifest.parts]
    return [f"{uri}/{DATA_FILE}"]


def read_rows(
    paths: str | Sequence[str], columns: list[str] | None, storage_options: StorageOptions | None
) -> dd.DataFrame:
    """The rows of parquet files as a Dask frame: one partition per row group, in the order of the files given.

    Not ``dask.dataframe.read_parquet``: reading some of the columns, it fuses small partitions at compute time,
    so the partitions counted, numbered and sorted by :func:`time_split_on_dask` are not those its graph holds
    (a persisted sort then loses its inputs). Columns keep pandas' own dtypes (no pyarrow strings), as
    :func:`airflow_ml.data.snapshot.read_snapshot` reads them, so the preprocessing sees the same values.
    """
    import dask
    import dask.dataframe as dd
    import pyarrow.parquet as pq

    files = [paths] if isinstance(paths, str) else list(paths)
    pieces, meta = [], None
    for path in files:
        fs, local = filesystem(path, storage_options)
        with storage_errors(path, storage_options), fs.open(local, "rb") as handle:
            footer = pq.ParquetFile(handle)
            if meta is None:
                meta = footer.schema_arrow.empty_table().to_pandas()
            pieces += [(path, group) for group in range(footer.num_row_groups)]
    assert meta is not None
    meta = meta if columns is None else meta[columns]
    with dask.config.set({"dataframe.convert-string": False}):
        return dd.from_map(
            _read_row_group, pieces, storage_options=storage_options, meta=meta, columns=columns, label="read-rows"
        )


def _read_row_group(piece: tuple[str, int], storage_options: StorageOptions | None, columns: Any = None) -> Any:
    import pyarrow.parquet as pq

    path, group = piece
    fs, local = filesystem(path, storage_options)
    with storage_errors(path, storage_options), fs.open(local, "rb") as handle:
        table = pq.ParquetFile(handle).read_row_group(group, columns=columns)
    return table.to_pandas(split_blocks=True, self_destruct=True)


def time_split_on_dask(
    client: Client,
    frame: dd.DataFrame,
    time_column: str,
    validation_fraction: float,
    holdout_fraction: float,
    *,
    spread: bool = True,
) -> DaskSplits:
    """The rows :func:`airflow_ml.ml.train.time_split` gives, kept on the cluster.

    ``spread`` deals the training rows to the workers, as ``lightgbm.dask`` needs them (the gate does not).

    Raises:
        ValueError: when the time column is missing or a split would be empty (the local path's messages).
    """
    import numpy as np

    from airflow_ml.ml.train import split_bounds

    if time_column not in frame.columns:
        raise ValueError(f"time column {time_column!r} is not in the data; columns are {list(frame.columns)}")
    offsets = _offsets(client.compute(frame.map_partitions(len)).result())
    numbered = frame.map_partitions(_numbered, _ROW, offsets, meta=frame._meta.assign(**{_ROW: np.int64(0)}))
    ordered = client.persist(numbered.sort_values([time_column, _ROW]))
    positions = _offsets(client.compute(ordered.map_partitions(len)).result())
    n = positions[-1]
    validation_start, holdout_start = split_bounds(n, validation_fraction, holdout_fraction)
    placed = ordered.map_partitions(_numbered, _POS, positions, meta=ordered._meta.assign(**{_POS: np.int64(0)}))
    bounds = {
        "train": (0, validation_start),
        "validation": (validation_start, holdout_start),
        "holdout": (holdout_start, n),
    }
    parts = {
        name: placed[(placed[_POS] >= low) & (placed[_POS] < high)].drop(columns=[_ROW, _POS])
        for name, (low, high) in bounds.items()
    }
    persisted = dict(zip(parts, client.persist(list(parts.values())), strict=True))
    del ordered
    kept = {name: _without_empty_partitions(client, rows) for name, rows in persisted.items()}
    if spread:
        kept["train"] = _spread(client, kept["train"])
    sizes = {name: high - low for name, (low, high) in bounds.items()}
    return DaskSplits(kept["train"], kept["validation"], kept["holdout"], sizes)


def _offsets(lengths: Sequence[int]) -> list[int]:
    """Where each partition starts, and the total last."""
    starts = [0]
    for length in lengths:
        starts.append(starts[-1] + int(length))
    return starts


def _numbered(part: Any, column: str, offsets: list[int], partition_info: dict[str, Any] | None = None) -> Any:
    import numpy as np

    start = offsets[partition_info["number"]] if partition_info else 0
    return part.assign(**{column: np.arange(start, start + len(part), dtype="int64")})


def _without_empty_partitions(client: Client, rows: dd.DataFrame) -> dd.DataFrame:
    # The cut leaves most partitions of each split empty; a LightGBM worker given only empty parts fails.
    lengths = client.compute(rows.map_partitions(len)).result()
    full = [i for i, length in enumerate(lengths) if length]
    return rows.partitions[full] if full else rows


def _spread(client: Client, rows: dd.DataFrame) -> dd.DataFrame:
    """The training rows in at least two partitions per worker, dealt to the workers in turn.

    ``lightgbm.dask`` trains on each worker the partitions it holds: rows left on one worker (a one-file snapshot
    is one partition) would train on one machine.
    """
    import dask.dataframe as dd

    workers = sorted(client.nthreads())
    if rows.npartitions < 2 * len(workers):
        rows = rows.repartition(npartitions=2 * len(workers))
    placed = [client.compute(rows.partitions[i], workers=[workers[i % len(workers)]]) for i in range(rows.npartitions)]
    return dd.from_delayed(placed, meta=rows._meta, verify_meta=False)


def fit_preprocessor_on_dask(client: Client, train: dd.DataFrame, spec: TrainSpec) -> Preprocessor:
    """The preprocessor :meth:`Preprocessor.fit` learns from the training rows, from their distinct values."""
    from airflow_ml.ml.serving import Preprocessor

    missing = [name for name in spec.features if name not in train.columns]
    if missing:
        raise ValueError(f"input is missing feature column(s) {missing}; it has {list(train.columns)}")
    distinct = client.compute([train[name].drop_duplicates() for name in spec.categorical], sync=True)
    categories: dict[str, list[str]] = {}
    for name, values in zip(spec.categorical, distinct, strict=True):
        frame = values.to_frame(name).reset_index(drop=True)
        categories[name] = Preprocessor.fit(frame, [name], [name], spec.task).categories[name]
    return Preprocessor(spec.features, categories, spec.task)


def train_model_on_dask(client: Client, splits: DaskSplits, spec: TrainSpec, settings: DaskSettings) -> TrainedModel:
    """Train like :func:`airflow_ml.ml.train.train_model` with ``lightgbm.dask``; returns the local booster.

    Raises:
        ValueError: when the target has nulls in the training or validation rows.
    """
    import lightgbm as lgb

    from airflow_ml.ml.train import TrainedModel

    nulls = [splits.train[spec.target].isna().sum(), splits.validation[spec.target].isna().sum()]
    for name, count in zip(("train", "validation"), client.compute(nulls, sync=True), strict=True):
        if int(count):
            raise ValueError(
                f"target {spec.target!r} has {int(count)} null(s) in the {name} split; fix the data or its suite"
            )
    preprocessor = fit_preprocessor_on_dask(client, splits.train, spec)
    labels = splits.train[spec.target].astype("float64")
    imbalance = spec.imbalance_params(client.compute(labels).result()) if spec.class_weight != "none" else {}
    params = {**spec.lightgbm_params(), **imbalance}
    network: dict[str, Any] = {"time_out": settings.network_timeout_minutes}
    if settings.listen_port is not None:
        network["local_listen_port"] = settings.listen_port
    model_class = lgb.DaskLGBMClassifier if spec.task == "binary" else lgb.DaskLGBMRegressor
    # lightgbm.dask gives each worker as many threads as it has: num_threads would only be warned about.
    fit_params = {k: v for k, v in params.items() if k != "num_threads"}
    estimator = model_class(client=client, n_estimators=spec.num_boost_round, **fit_params, **network)
    features = splits.train.map_partitions(preprocessor.transform, meta=preprocessor.transform(splits.train._meta))
    log.info("lightgbm.dask: %d rounds on %d training rows", spec.num_boost_round, splits.sizes["train"])
    estimator.fit(features, labels, categorical_feature=spec.categorical or "auto")
    booster = estimator.to_local().booster_
    curve = validation_curve(client, booster, preprocessor, splits.validation, spec)
    best, stopped = early_stopping_point(
        curve, spec.early_stopping_rounds, minimize=lightgbm_metric(spec.metric) in MINIMIZED
    )
    if spec.early_stopping_rounds and best < booster.current_iteration():
        booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    # The local path's train metric, on the same seeded sample of training rows (positions in time order).
    sample = _train_sample_positions(client, splits.train, spec.seed)
    metrics = {
        f"train_sample_{spec.metric}": score(
            spec.metric, *_labels_and_predictions(client, splits.train, booster, preprocessor, spec.target, sample)
        ),
        **{
            f"{name}_{spec.metric}": score(
                spec.metric, *_labels_and_predictions(client, rows, booster, preprocessor, spec.target)
            )
            for name, rows in (("validation", splits.validation), ("holdout", splits.holdout))
        },
    }
    return TrainedModel(
        booster=booster,
        preprocessor=preprocessor,
        metrics=metrics,
        best_iteration=int(booster.current_iteration()),
        learning_curve=[float(v) for v in curve[:stopped]],
        params={**params, **network, "engine": "dask", "dask_workers": len(client.nthreads())},
    )


def _train_sample_positions(client: Client, train: dd.DataFrame, seed: int) -> list[Any]:
    """Per training partition, the positions in it of :func:`airflow_ml.ml.train.train_sample`'s rows.

    The partitions hold the training rows in time order, so the local path's seeded positions over the whole
    split pick the very same rows; only those (at most ``TRAIN_SAMPLE_ROWS``) are predicted and gathered.
    """
    import numpy as np

    from airflow_ml.ml.train import TRAIN_SAMPLE_ROWS

    lengths = client.compute(train.map_partitions(len)).result().tolist()
    total = int(sum(lengths))
    chosen = (
        np.arange(total)
        if total <= TRAIN_SAMPLE_ROWS
        else np.sort(np.random.default_rng(seed).choice(total, TRAIN_SAMPLE_ROWS, replace=False))
    )
    starts = np.cumsum([0, *lengths])
    return [chosen[(chosen >= low) & (chosen < high)] - low for low, high in itertools.pairwise(starts)]


def _labels_and_predictions(
    client: Client,
    rows: dd.DataFrame,
    booster: Any,
    preprocessor: Preprocessor,
    target: str,
    positions: list[Any] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The labels and predictions of ``rows`` (only those at ``positions`` per partition when given)."""
    import dask
    import numpy as np

    from airflow_ml.ml.serving import predict_raw

    def pair(part: Any, keep: Any) -> tuple[np.ndarray, np.ndarray]:
        part = part if keep is None else part.iloc[keep]
        return part[target].to_numpy(dtype="float64"), predict_raw(booster, preprocessor, part)

    keeps = positions if positions is not None else [None] * rows.npartitions
    chosen = [(p, k) for p, k in zip(rows.to_delayed(), keeps, strict=True) if k is None or len(k)]
    pairs = client.compute([dask.delayed(pair)(p, k) for p, k in chosen], sync=True)
    return np.concatenate([y for y, _ in pairs]), np.concatenate([p for _, p in pairs])


@dataclass(frozen=True)
class SampledSplits:
    """What the train step keeps of Dask splits: the first training rows (the model's input example), the holdout
    (its predictions artifact and charts) and every split's row count."""

    train: Any
    holdout: Any
    row_counts: dict[str, int] = field(default_factory=dict)

    def sizes(self) -> dict[str, int]:
        """Row count per split (of the whole snapshot, not of what is kept here)."""
        return dict(self.row_counts)


def train_snapshot_on_dask(
    paths: str | Sequence[str],
    spec: TrainSpec,
    split: SplitLike,
    settings: DaskSettings,
    *,
    cluster: ClusterAddress | None = None,
    storage_options: StorageOptions | None = None,
) -> tuple[Splits, TrainedModel]:
    """Read, split and train on the cluster at ``cluster`` (a LocalCluster sized by ``settings`` when None).

    Returns:
        The splits the train step logs from (the holdout and the first training rows in this process) and the
        trained model.

    Raises:
        DaskClusterError: when the cluster is unreachable or loses a worker.
        ValueError: as :func:`airflow_ml.ml.train.time_split` and :func:`~airflow_ml.ml.train.train_model`.
    """
    columns = list(dict.fromkeys([*spec.features, spec.target, split.time_column]))
    with dask_client(settings, cluster) as client:

        def work() -> tuple[Splits, TrainedModel]:
            frame = read_rows(paths, columns, storage_options)
            splits = time_split_on_dask(
                client, frame, split.time_column, split.validation_fraction, split.holdout_fraction
            )
            trained = train_model_on_dask(client, splits, spec, settings)
            holdout = client.compute(splits.holdout).result().reset_index(drop=True)
            first = client.compute(splits.train.partitions[: min(3, splits.train.npartitions)]).result().head(5)
            kept = SampledSplits(train=first, holdout=holdout, row_counts=splits.sizes)
            return kept, trained  # type: ignore[return-value]

        return run_guarded(client, work, what="training on Dask")
