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

import functools
import hashlib
import io
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from airflow_ml.data.snapshot import MANIFEST, Manifest
from airflow_ml.data.storage import StorageOptions, filesystem, put_whole, storage_errors
from airflow_ml.exceptions import DataError

log = logging.getLogger(__name__)

PREFIX = "champion_predictions-"
#: The most bytes a kept file's ``.npy`` header may take (numpy writes 128 or a few hundred).
_MAX_HEADER = 4096


def _float64_vector(data: bytes, rows: int) -> np.ndarray:
    """``data`` as a ``.npy`` of exactly ``rows`` little-endian float64 values, else ValueError.

    The header is checked before any array exists: ``np.load`` would build an archive from a zip, or allocate
    whatever shape a corrupt header claims, before the length could be compared.
    """
    from numpy.lib import format as npy

    stream = io.BytesIO(data)
    version = npy.read_magic(stream)  # ValueError on anything that is not a .npy
    header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
    shape, fortran_order, dtype = header(stream, max_header_size=_MAX_HEADER)
    if shape != (rows,) or fortran_order or dtype != np.dtype("<f8"):
        raise ValueError(f"holds {dtype} values of shape {shape}, not the snapshot's {rows} float64 values")
    values = np.frombuffer(data, dtype="<f8", count=rows, offset=stream.tell())
    return values.copy()  # writable and detached from the file's bytes, as a prediction is


#: Bumped when what a kept file holds, or how a prediction is made, changes: every older file is then unread.
_KEY_VERSION = 1


@functools.cache
def _library_versions() -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name) for name in ("lightgbm", "numpy", "pandas", "scikit-learn")}


def cache_key(version: Any, features: Sequence[str], content_hash: str) -> str:
    """The key of a registered ``version``'s predictions from ``features`` on the rows of ``content_hash``."""
    identity = {
        "key_version": _KEY_VERSION,
        # An upgrade that could change a prediction (the model's code is logged with it; these libraries are not)
        # makes a new key, so yesterday's values are never mixed with today's as drift.
        "libraries": _library_versions(),
        "created": str(getattr(version, "creation_timestamp", "")),  # a version re-created under one number
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
                size = fs.size(where)
                # Never more than the values and a header: a file that claims more is not read at all.
                if size is None or size > 8 * rows + _MAX_HEADER:
                    raise ValueError(f"{size} bytes, more than {rows} float64 values and a header")
                return _float64_vector(fs.cat_file(where), rows)
        except (OSError, ValueError, DataError) as exc:
            log.warning("the champion's kept predictions %s could not be used (%s); predicting again", path, exc)
            return None

    def _write(self, uri: str, path: str, values: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.save(buffer, values, allow_pickle=False)
        fs, where = filesystem(path, self._storage_options)
        try:
            with storage_errors(uri, self._storage_options):
                # Only beside a snapshot that is still there: retention may have removed it since it was read,
                # and a file written then would leave a folder (an S3 prefix) holding nothing else, forever.
                if not fs.exists(f"{where.rsplit('/', 1)[0]}/{MANIFEST}"):
                    log.warning("the champion's predictions were not kept: the snapshot %s is gone", uri)
                    return
                put_whole(fs, where, buffer.getvalue())
        except (OSError, DataError) as exc:  # a read-only data root: the next run predicts again
            log.warning("the champion's predictions were not kept at %s (%s)", path, exc)
