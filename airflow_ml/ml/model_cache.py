"""Serve registered models by alias: resolve ``champion`` to one version, keep a bounded set of models loaded.

Two rules of the prediction loop live here:

- **One version per run.** :func:`resolve_alias` reads an alias once and returns the concrete version
  (``models:/<name>/<version>``); a batch run scores with that version from start to end, so a champion moved
  mid-run can never mix two versions in one output.
- **A moved champion is served within a bound.** :class:`ModelCache` (shared by every request of the HTTP
  server) re-reads an alias at most every ``alias_ttl`` seconds, and keeps at most ``max_models`` loaded pyfunc
  models, keyed by (name, version) and evicted least recently used first. A model is loaded once even when many
  threads ask for it at the same moment; the others wait for that load.

A fleet served round-robin by more cities than ``max_models`` defeats the LRU: every request evicts the model
the next one needs, and each reloads it from the registry. The cache counts its evictions over the last minute
and logs a warning with the figures (at most once a minute) when they reach :data:`THRASH_EVICTIONS` or the
cache's size, whichever is more: raise ``max_models`` (``airflow-ml serve --max-models``) to the number of
models in use, as memory allows.

Everything goes through the ``MlflowClient`` given (its tracking and registry URIs), never MLflow's globals.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_ml.exceptions import AirflowMLError
from airflow_ml.ml.model_requirements import warn_of_environment_mismatches

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

log = logging.getLogger(__name__)

CHAMPION = "champion"
#: Evictions within :data:`THRASH_WINDOW` seconds that are thrashing (or ``max_models``, when that is more).
THRASH_EVICTIONS = 10
#: The window over which evictions are counted, and the least time between two warnings (seconds).
THRASH_WINDOW = 60.0

#: Loads one registered version as a pyfunc model: ``loader(client, name, version)``.
Loader = Callable[["MlflowClient", str, str], Any]


class NoServableModel(AirflowMLError, LookupError):
    """The registry has no version behind the alias (no such model, or the alias is not set)."""


@dataclass(frozen=True)
class ResolvedModel:
    """An alias read once: the concrete version it pointed at."""

    name: str
    version: str
    alias: str

    @property
    def uri(self) -> str:
        """``models:/<name>/<version>``: the version, whatever the alias points at later."""
        return f"models:/{self.name}/{self.version}"


def resolve_alias(client: MlflowClient, name: str, alias: str = CHAMPION) -> ResolvedModel:
    """Read ``alias`` of the registered model ``name`` once.

    Raises:
        NoServableModel: when the model does not exist or the alias is not set, naming both and the fix.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST, ErrorCode

    try:  # the message leaves the registry's URI out: a database URI may hold a password
        version = client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code not in {ErrorCode.Name(RESOURCE_DOES_NOT_EXIST), ErrorCode.Name(INVALID_PARAMETER_VALUE)}:
            raise
        raise NoServableModel(
            f"registered model {name!r} has no {alias!r} alias (or does not exist) in the registry: nothing to "
            "serve; train and promote it first (its retraining DAG), or check `airflow-ml serving`"
        ) from exc
    return ResolvedModel(name=name, version=str(version.version), alias=alias)


def load_pyfunc(client: MlflowClient, name: str, version: str) -> Any:
    """Download a registered version through ``client`` and load it as a pyfunc model.

    A version logged in its run's artifacts (as training logs them) is fetched with ``client.download_artifacts``,
    so a client of an Airflow connection (:mod:`airflow_ml.hooks.mlflow_auth`) sends its credentials, proxied
    artifacts included; any other source goes through MLflow's download of the registry's location. The files go
    to a temporary folder that is removed once the model is loaded: the pyfunc flavors this project logs (its
    LightGBM serving code, scikit-learn) read their artifacts at load time. A model saved in another environment
    (requirements, Python) is loaded with a warning naming each difference
    (:func:`~airflow_ml.ml.model_requirements.warn_of_environment_mismatches`).
    """
    import mlflow.artifacts
    import mlflow.pyfunc

    with tempfile.TemporaryDirectory(prefix="airflow-ml-serve-") as destination:
        in_run = _path_in_run(client, name, version)
        if in_run is not None:
            local = client.download_artifacts(*in_run, destination)
        else:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=client.get_model_version_download_uri(name, version),
                dst_path=destination,
                tracking_uri=client.tracking_uri,
            )
        # MLflow's own check of the model's environment scans every installed package (0.4 s a process).
        warn_of_environment_mismatches(local, f"registered model {name!r} version {version}")
        return mlflow.pyfunc.load_model(local, suppress_warnings=True)


def _path_in_run(client: MlflowClient, name: str, version: str) -> tuple[str, str] | None:
    """(run id, artifact path) of a version whose source is in its run's artifacts, else None."""
    return source_in_run(client, client.get_model_version(name, version))


def source_in_run(client: MlflowClient, registered: ModelVersion) -> tuple[str, str] | None:
    """(run id, artifact path) of a registered version whose ``source`` lies in its own run's artifacts (as
    ``runs:/<run id>/...`` or under the run's artifact URI), else None: what serving then loads is not in the run."""
    if not registered.run_id:
        return None
    source = str(registered.source).rstrip("/")
    for root in (f"runs:/{registered.run_id}", str(client.get_run(registered.run_id).info.artifact_uri).rstrip("/")):
        if source.startswith(f"{root}/"):
            return registered.run_id, source[len(root) + 1 :]
    return None


@dataclass(frozen=True)
class CacheStats:
    """How the cache has done since it was made: loads count every model read from the registry."""

    hits: int
    loads: int
    evictions: int
    alias_reads: int


class ModelCache:
    """A thread-safe, bounded LRU cache of loaded models, with alias resolution that refreshes on a timer.

    Args:
        client: The MLflow client of the registry (its tracking URI and credentials).
        max_models: How many loaded models stay in memory at most (at least 1); the least recently used goes.
        alias_ttl: Seconds an alias read is trusted; a moved alias is served at most this long after the move.
            0 re-reads the alias on every call.
        loader: How a version is loaded (default :func:`load_pyfunc`).
        clock: Monotonic seconds (default :func:`time.monotonic`); a test passes its own.
    """

    def __init__(
        self,
        client: MlflowClient,
        *,
        max_models: int = 32,
        alias_ttl: float = 30.0,
        loader: Loader = load_pyfunc,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_models < 1:
            raise ValueError(f"max_models={max_models}: keep at least one model loaded")
        if alias_ttl < 0:
            raise ValueError(f"alias_ttl={alias_ttl}: seconds, 0 or more")
        self._client = client
        self._max_models = max_models
        self._alias_ttl = alias_ttl
        self._loader = loader
        self._clock = clock
        self._lock = threading.Lock()
        self._models: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._loading: dict[tuple[str, str], Future[Any]] = {}
        self._aliases: dict[tuple[str, str], tuple[ResolvedModel, float]] = {}
        self._hits = self._loads = self._evictions = self._alias_reads = 0
        self._recent_evictions: deque[float] = deque()
        self._warned_at: float | None = None

    def resolve(self, name: str, alias: str = CHAMPION) -> ResolvedModel:
        """The version behind ``alias``, as read at most ``alias_ttl`` seconds ago.

        Raises:
            NoServableModel: when the alias is not set (not remembered: the next call asks again).
        """
        now = self._clock()
        with self._lock:
            known = self._aliases.get((name, alias))
            if known is not None and now - known[1] < self._alias_ttl:
                return known[0]
            self._alias_reads += 1
        resolved = resolve_alias(self._client, name, alias)
        with self._lock:
            self._aliases[(name, alias)] = (resolved, now)
        return resolved

    def get(self, name: str, version: str) -> Any:
        """The loaded model of ``name`` version ``version``, loaded on first use (once, whatever the threads)."""
        key = (name, str(version))
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                self._hits += 1
                return self._models[key]
            pending = self._loading.get(key)
            owner = pending is None
            if pending is None:
                pending = self._loading[key] = Future()
        if not owner:
            return pending.result()  # another thread is loading it: wait for that load, or its error
        try:
            model = self._loader(self._client, name, key[1])
        except BaseException as exc:
            with self._lock:
                del self._loading[key]
            pending.set_exception(exc)
            raise
        with self._lock:
            self._loads += 1
            self._models[key] = model
            while len(self._models) > self._max_models:
                self._models.popitem(last=False)
                self._evictions += 1
                self._recent_evictions.append(self._clock())
            del self._loading[key]
            thrashing = self._thrashing()
        pending.set_result(model)
        if thrashing is not None:
            log.warning(
                "the model cache evicted %d models in the last %.0f s with max_models=%d (%d loads, %d hits so far): "
                "requests reload models evicted moments before, each a registry download; raise --max-models "
                "(airflow-ml serve) to the number of models in use at once, as memory allows",
                thrashing,
                THRASH_WINDOW,
                self._max_models,
                self._loads,
                self._hits,
            )
        return model

    def _thrashing(self) -> int | None:
        """The evictions of the last minute when they are many and no warning was given this minute (under lock)."""
        now = self._clock()
        while self._recent_evictions and now - self._recent_evictions[0] > THRASH_WINDOW:
            self._recent_evictions.popleft()
        count = len(self._recent_evictions)
        if count < max(THRASH_EVICTIONS, self._max_models):
            return None
        if self._warned_at is not None and now - self._warned_at < THRASH_WINDOW:
            return None
        self._warned_at = now
        return count

    def serve(self, name: str, alias: str = CHAMPION) -> tuple[ResolvedModel, Any]:
        """The version behind ``alias`` (see :meth:`resolve`) and its loaded model."""
        resolved = self.resolve(name, alias)
        return resolved, self.get(resolved.name, resolved.version)

    def cached(self) -> list[tuple[str, str]]:
        """The (name, version) of the loaded models, least recently used first."""
        with self._lock:
            return list(self._models)

    def forget_alias(self, name: str, alias: str = CHAMPION) -> None:
        """Drop what is known of ``alias``, so that the next call reads it (e.g. on a champion-changed event)."""
        with self._lock:
            self._aliases.pop((name, alias), None)

    def stats(self) -> CacheStats:
        """Hits, loads, evictions and alias reads so far."""
        with self._lock:
            return CacheStats(self._hits, self._loads, self._evictions, self._alias_reads)
