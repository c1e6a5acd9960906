"""A snapshot's holdout on a Dask cluster, for the gate and the health check of ``training.engine: dask``.

The snapshot is split on the cluster exactly as training split it (:mod:`airflow_ml.ml.dask_split`: the local
path's rows), and the models predict the holdout where its rows lie: each partition is one task that
loads the model from the bytes handed to it and predicts its rows. Only what the gate judges comes back to the
task's process: the holdout's labels, the models' predictions, the slice columns and the training rows' target
(one column each); the health check gathers only its sample.

The challenger's logged holdout predictions stand for its own under the local path's checks
(:mod:`airflow_ml.ml.logged_holdout`): the holdout's row hashes are computed where its rows lie and only the rows
spot-checked come to the task, where the loaded model predicts them; then the challenger does not score the holdout.

A model is sent as it was loaded from the registry (the model serving loads): pickled with cloudpickle, its
"models from code" module (a module MLflow made from the model's file, which no worker can import) pickled by
value with it.
"""

from __future__ import annotations

import importlib.machinery
import itertools
import pickle
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_ml.data.storage import StorageOptions
from airflow_ml.ml.dask_split import (
    DaskSplits,
    SplitLike,
    partition_lengths,
    read_rows,
    snapshot_files,
    split_lengths,
    time_split_on_dask,
)

if TYPE_CHECKING:
    import dask.dataframe as dd
    import numpy as np
    import pandas as pd
    from distributed import Client

    from airflow_ml.data.snapshot import Manifest
    from airflow_ml.ml.logged_holdout import LoggedHoldout


def split_on_dask(
    client: Client,
    manifest: Manifest,
    split: SplitLike,
    storage_options: StorageOptions | None = None,
    *,
    columns: list[str] | None = None,
) -> DaskSplits:
    """The training, validation and holdout rows of the snapshot of ``manifest``, kept on the cluster.

    Args:
        columns: The columns to read (the time column among them); None reads every column.

    Raises:
        ValueError: when the time column is missing or a split would be empty (the local path's messages).
    """
    frame = read_rows(snapshot_files(manifest), columns, storage_options)
    return time_split_on_dask(
        client, frame, split.time_column, split.validation_fraction, split.holdout_fraction, spread=False
    )


def columns_read(models: list[Any], also: list[str], available: Any) -> list[str] | None:
    """The columns of ``available`` that ``models`` (loaded pyfuncs, None skipped) read, with ``also``; None (every
    column) when a model has no input signature, since it is then handed every column."""
    names = list(also)
    for model in models:
        schema = model.metadata.get_input_schema() if model is not None else None
        if model is not None and schema is None:
            return None
        names += list(schema.input_names()) if schema is not None else []
    return [c for c in dict.fromkeys(names) if c in available]


def portable(model: Any) -> bytes:
    """``model`` (a loaded pyfunc) as bytes a worker can load, its models-from-code module pickled by value."""
    import cloudpickle

    modules = []
    unwrap = getattr(model, "unwrap_python_model", None)
    try:
        inner = unwrap() if unwrap is not None else None
    except (AttributeError, ValueError):  # a flavour that is no PythonModel: pickled by reference
        inner = None
    name = type(inner).__module__ if inner is not None else ""
    # Not on the import path (sys.modules would find it here, never on a worker): MLflow loaded it from a file.
    if (
        name in sys.modules
        and name != "__main__"
        and importlib.machinery.PathFinder.find_spec(name.split(".")[0]) is None
    ):
        modules.append(sys.modules[name])
    for module in modules:
        cloudpickle.register_pickle_by_value(module)
    try:
        return bytes(cloudpickle.dumps(model))
    finally:
        for module in modules:
            cloudpickle.unregister_pickle_by_value(module)


def predict_on_dask(client: Client, rows: dd.DataFrame, model: Any) -> np.ndarray:
    """``model``'s predictions of ``rows`` (float64, in their order), each partition predicted on its worker.

    The model gets the columns its input signature names, as the gate's local scoring hands them.
    """
    import dask
    import numpy as np

    [payload] = client.scatter([portable(model)], broadcast=True)
    tasks = [dask.delayed(_predict_part)(part, payload) for part in rows.to_delayed()]
    found = client.compute(tasks, sync=True)
    return np.concatenate(found) if found else np.empty(0, dtype="float64")


def _predict_part(part: Any, payload: bytes) -> np.ndarray:
    model = pickle.loads(payload)  # noqa: S301 - bytes this task's own driver pickled from the registry's model
    return predict_rows(model, part)


def predict_rows(model: Any, rows: pd.DataFrame) -> np.ndarray:
    """``model``'s predictions of ``rows`` (float64), handed the columns its input signature names."""
    import numpy as np

    schema = model.metadata.get_input_schema()
    columns = schema.input_names() if schema is not None else list(rows.columns)
    if not len(rows):
        return np.empty(0, dtype="float64")
    return np.asarray(model.predict(rows[columns]), dtype="float64").reshape(-1)


def gather(client: Client, rows: dd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``columns`` of ``rows`` in this process, in order, indexed from 0."""
    return client.compute(rows[columns]).result().reset_index(drop=True)


def sample_on_dask(
    client: Client, rows: dd.DataFrame, n: int, seed: int, lengths: list[int] | None = None
) -> pd.DataFrame:
    """The rows ``frame.sample(n, random_state=seed)`` picks of ``rows`` gathered whole: only those are gathered.

    Indexed from 0, in the sample's order; every row when there are at most ``n``. ``lengths``: the row count of
    each partition when known (else counted on the cluster).
    """
    import numpy as np
    import pandas as pd

    lengths = partition_lengths(client, rows) if lengths is None else lengths
    # pandas draws positions from the row count alone: a range of it draws the same ones as the frame would.
    chosen = pd.RangeIndex(sum(lengths)).to_series().sample(n=min(n, sum(lengths)), random_state=seed).to_numpy()
    ordered = np.sort(chosen)
    picked = rows_at(client, rows, ordered, lengths)
    # ``picked`` holds the rows in position order: put them in the sample's.
    return picked.iloc[np.searchsorted(ordered, chosen)].reset_index(drop=True)


def rows_at(client: Client, rows: dd.DataFrame, positions: Any, lengths: list[int]) -> pd.DataFrame:
    """The rows of ``rows`` at ``positions`` (ascending, over all partitions of ``lengths``) in this process, in
    order and indexed from 0: only those are gathered."""
    return concatenated(client.compute(rows_at_tasks(rows, positions, lengths), sync=True), rows._meta)


def rows_at_tasks(rows: dd.DataFrame, positions: Any, lengths: list[int]) -> list[Any]:
    """:func:`rows_at`'s work, a delayed frame per partition holding some of ``positions``: to be computed with
    other work in one round trip, then :func:`concatenated`."""
    import dask
    import numpy as np

    starts = np.cumsum([0, *lengths])
    keeps = [positions[(positions >= low) & (positions < high)] - low for low, high in itertools.pairwise(starts)]
    take = dask.delayed(_rows_at)
    return [take(part, keep) for part, keep in zip(rows.to_delayed(), keeps, strict=True) if len(keep)]


def concatenated(parts: list[pd.DataFrame], meta: pd.DataFrame) -> pd.DataFrame:
    """``parts`` in order, indexed from 0 (``meta``'s empty copy when there are none)."""
    import pandas as pd

    return (pd.concat(parts, ignore_index=True) if parts else meta.copy()).reset_index(drop=True)


def _rows_at(part: Any, positions: Any) -> Any:
    return part.iloc[positions]


def _row_hashes(part: Any, as_values: list[str]) -> Any:
    from airflow_ml.data.row_hashing import row_hashes

    part = part.reset_index(drop=True)
    return row_hashes(part.astype({c: object for c in as_values}) if as_values else part)


class ClusterRows:
    """A holdout on the cluster as :func:`~airflow_ml.ml.logged_holdout.logged_holdout` checks it: its rows are
    hashed where they lie (eight bytes a row come back) and only the rows spot-checked are gathered.

    ``lengths``: the row count of each partition when known (``DaskSplits.lengths``), else counted on first need.
    """

    def __init__(self, client: Client, rows: dd.DataFrame, lengths: list[int] | None = None) -> None:
        self.client, self.rows = client, rows
        self._lengths = lengths

    @property
    def columns(self) -> list[str]:
        """The holdout's columns."""
        return [str(c) for c in self.rows.columns]

    def _partition_lengths(self) -> list[int]:
        if self._lengths is None:
            self._lengths = partition_lengths(self.client, self.rows)
        return self._lengths

    def __len__(self) -> int:
        return sum(self._partition_lengths())

    def differing_row(self, logged: pd.DataFrame) -> int | None:
        """The first position where ``logged`` and the holdout differ over ``logged``'s columns, by each row's hash
        (the logged columns read back in the cluster's dtypes)."""
        import dask
        import numpy as np
        import pandas as pd

        from airflow_ml.data.row_hashing import row_hashes
        from airflow_ml.ml.logged_holdout import logged_as

        key = list(logged.columns)
        dtypes = self.rows._meta[key].dtypes
        # Dask's meta of a category column has no categories (each partition has its own): such a column is
        # compared by its values, on both sides.
        as_values = [c for c in key if isinstance(dtypes[c], pd.CategoricalDtype)]
        wanted = pd.Series({c: object if c in as_values else dtypes[c] for c in key}, dtype=object)
        expected = logged_as(logged, wanted)
        if expected is None:
            return 0
        parts = self.rows[key].to_delayed()
        found = self.client.compute([dask.delayed(_row_hashes)(part, as_values) for part in parts], sync=True)
        hashes = np.concatenate(found) if found else np.empty(0, dtype="uint64")
        mismatch = np.flatnonzero(hashes != row_hashes(expected))
        return int(mismatch[0]) if mismatch.size else None

    def take(self, positions: np.ndarray) -> pd.DataFrame:
        """The holdout's rows at ``positions`` (ascending), gathered."""
        return rows_at(self.client, self.rows, positions, self._partition_lengths())


def level_shares_on_dask(client: Client, rows: dd.DataFrame, levels: dict[str, list[str]]) -> dict[str, float]:
    """What :func:`airflow_ml.ml.steps.gate_step.level_shares` gives for ``rows``, counted per partition."""
    import dask
    import numpy as np

    wanted = {c: v for c, v in levels.items() if c in rows.columns}
    if not wanted:
        return {}
    tasks = [dask.delayed(_level_counts)(part, wanted) for part in rows.to_delayed()]
    counts = np.sum(client.compute(tasks, sync=True), axis=0)
    total = int(counts[-1])
    return {c: float(counts[i] / total) for i, c in enumerate(wanted)} if total else {}


def _level_counts(part: Any, levels: dict[str, list[str]]) -> Any:
    import numpy as np

    from airflow_ml.ml.serving import level_text

    hits = [int(level_text(part[c]).isin(v).fillna(False).sum()) for c, v in levels.items()]
    return np.asarray([*hits, len(part)], dtype="int64")


@dataclass
class ClusterHoldout:
    """What the gate reads of a snapshot split on the cluster (the local counterpart is in the gate step).

    The columns the gate judges (the holdout's target and ``slice_columns``, the training rows' target) are
    computed on the cluster as soon as it is made, while the models are scored, and come to this process once, on
    first use.

    Attributes:
        client: The cluster's client.
        splits: The splits, persisted on the cluster.
        target: The target column.
        slice_columns: The holdout's slice columns the gate will ask for.
    """

    client: Any
    splits: DaskSplits
    target: str
    slice_columns: list[str] = field(default_factory=list)
    _judged: Any = field(init=False, repr=False, default=None)
    _gathered: tuple[pd.DataFrame, pd.DataFrame] | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        judged = list(dict.fromkeys([self.target, *self.slice_columns]))
        self._judged = self.client.compute([self.splits.holdout[judged], self.train[[self.target]]])

    def _judged_columns(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The holdout's judged columns and the training target, gathered once (the futures then let go)."""
        if self._gathered is None:
            holdout, train = self.client.gather(self._judged)
            self._gathered, self._judged = (holdout.reset_index(drop=True), train.reset_index(drop=True)), None
        return self._gathered

    @property
    def columns(self) -> list[str]:
        """The holdout's columns."""
        return [str(c) for c in self.splits.holdout.columns]

    def labels(self) -> np.ndarray:
        """The holdout's target, in time order."""
        return self._judged_columns()[0][self.target].to_numpy()

    def slices(self, names: list[str]) -> dict[str, Any]:
        """The holdout's values of each slice column."""
        if not names:
            return {}
        gathered = set(names) <= set(self.slice_columns)
        frame = self._judged_columns()[0] if gathered else gather(self.client, self.splits.holdout, names)
        return {name: frame[name] for name in names}

    @property
    def train(self) -> dd.DataFrame:
        """The training rows (the gate's split keeps them)."""
        assert self.splits.train is not None
        return self.splits.train

    def training_target(self) -> np.ndarray:
        """The training rows' target (the naive baseline's constant is learnt from it)."""
        return self._judged_columns()[1][self.target].to_numpy()

    def predict(self, model: Any) -> np.ndarray:
        """``model``'s predictions of the holdout, on the cluster."""
        return predict_on_dask(self.client, self.splits.holdout, model)

    def level_shares(self, levels: dict[str, list[str]]) -> dict[str, float]:
        """The share of the training rows holding each column's ``levels``."""
        return level_shares_on_dask(self.client, self.train, levels)

    def logged(self, client: Any, version: Any, snapshot_hash: str, model: Any, **checks: Any) -> LoggedHoldout:
        """The challenger's logged holdout predictions, when they are ``model``'s of these rows (the local path's
        checks, the rows hashed on the cluster and the spot-checked rows predicted here)."""
        from airflow_ml.ml.logged_holdout import logged_holdout

        rows = ClusterRows(self.client, self.splits.holdout, split_lengths(self.client, self.splits, "holdout"))
        return logged_holdout(
            client, version, snapshot_hash, rows, predict=lambda picked: predict_rows(model, picked), **checks
        )
