"""The champion's predictions on a whole snapshot, made once per champion and snapshot, and kept beside it.

The drift step compares the champion's predictions on its training snapshot with its predictions on this
run's rows and, with calibration, its predictions on the city's previous snapshot with this one's. Until the
champion changes, its predictions on its training snapshot are the same every night, and tonight's
predictions on this snapshot are tomorrow's on the previous one. :class:`ChampionPredictions` therefore
predicts a snapshot's rows once and keeps them:

- in this process, by the snapshot's content hash: two snapshots with one content hash hold the same rows in
  the same order (:func:`airflow_ml.data.row_hashing.content_hash` hashes the rows in order, with the schema),
  so a rerun of the champion's window, or a previous snapshot that is the champion's training snapshot, is
  predicted once;
- on disk, beside the snapshot, as ``champion_predictions-<key>.npy`` (float64, one value per row in the
  snapshot's order): ``key`` hashes the champion's registered version (name, version, its run and source),
  the features and the snapshot's content hash, so another champion, other features or other rows never
  read it; a file whose length is not the snapshot's row count is ignored. The file goes when the snapshot's
  folder is pruned.

The values are those a fresh prediction gives (float64 kept whole), so the checks judged on them do not
change. The cache is an optimisation only: a file that cannot be read or written is recomputed or left
unwritten with a warning, and the model is loaded only when a prediction is not found.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from airflow_ml.data.snapshot import Manifest
from airflow_ml.data.storage import StorageOptions, filesystem, put_whole, storage_errors
from airflow_ml.exceptions import DataError

log = logging.getLogger(__name__)

PREFIX = "champion_predictions-"


def cache_key(version: Any, features: Sequence[str], content_hash: str) -> str:
    """The key of a registered ``version``'s predictions from ``features`` on the rows of ``content_hash``."""
    identity = {
        "name": str(version.name),
        "version": str(version.version),
        "run_id": str(version.run_id),
        "source": str(version.source),
        "features": list(features),
        "content_hash": content_hash,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]


class ChampionPredictions:
    """The predictions of one champion on whole snapshots, each made at most once (see the module).

    Args:
        champion: The champion's registered version (an MLflow ``ModelVersion``).
        features: The columns the champion predicts from.
        load: Loads the champion (called at most once, on the first prediction not found); returns an object
            with ``predict(frame)``.
        storage_options: Options of the snapshots' filesystem.
    """

    def __init__(
        self,
        champion: Any,
        features: Sequence[str],
        load: Callable[[], Any],
        *,
        storage_options: StorageOptions | None = None,
    ) -> None:
        self.champion = champion
        self.features = list(features)
        self._load = load
        self._model: Any = None
        self._storage_options = storage_options
        self._made: dict[str, np.ndarray] = {}
        #: What each call found: ``memory``, ``file`` or ``predicted`` (what the tests and the profile read).
        self.sources: list[str] = []

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """The champion's predictions on ``frame``'s rows, as float64, nothing kept."""
        if self._model is None:
            self._model = self._load()
        return np.asarray(self._model.predict(frame[self.features]), dtype=float).ravel()

    def whole(self, manifest: Manifest, frame: pd.DataFrame) -> np.ndarray:
        """The champion's predictions on every row of the snapshot of ``manifest`` (``frame``, as read).

        Found in this process by content hash, else in the file beside the snapshot, else predicted and
        written there. Prediction errors propagate (nothing is kept).
        """
        key = cache_key(self.champion, self.features, manifest.content_hash)
        if key in self._made and len(self._made[key]) == len(frame):
            self.sources.append("memory")
            return self._made[key]
        path = f"{manifest.uri.rstrip('/')}/{PREFIX}{key}.npy"
        kept = self._read(manifest.uri, path, len(frame))
        if kept is not None:
            self.sources.append("file")
        else:
            kept = self.predict(frame)
            self.sources.append("predicted")
            self._write(manifest.uri, path, kept)
        self._made[key] = kept
        return kept

    def _read(self, uri: str, path: str, rows: int) -> np.ndarray | None:
        fs, where = filesystem(path, self._storage_options)
        try:
            with storage_errors(uri, self._storage_options):
                if not fs.exists(where):
                    return None
                values = np.load(io.BytesIO(fs.cat_file(where)), allow_pickle=False)
        except (OSError, ValueError, DataError) as exc:
            log.warning("the champion's kept predictions %s could not be read (%s); predicting again", path, exc)
            return None
        if values.dtype != np.float64 or values.shape != (rows,):
            shown = f"{path} do not fit the snapshot's {rows} rows"
            log.warning("the champion's kept predictions %s; predicting again", shown)
            return None
        return values

    def _write(self, uri: str, path: str, values: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.save(buffer, values, allow_pickle=False)
        fs, where = filesystem(path, self._storage_options)
        try:
            with storage_errors(uri, self._storage_options):
                put_whole(fs, where, buffer.getvalue())
        except (OSError, DataError) as exc:  # a read-only data root: the next run predicts again
            log.warning("the champion's predictions were not kept at %s (%s)", path, exc)
