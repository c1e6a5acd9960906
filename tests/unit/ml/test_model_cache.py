"""Alias resolution and the bounded model cache (airflow_ml.ml.model_cache), on a real MLflow registry."""

from __future__ import annotations

import threading
from typing import Any

import pandas as pd
import pytest

from airflow_ml.ml.model_cache import ModelCache, NoServableModel, ResolvedModel, load_pyfunc, resolve_alias

NAME = "ride_duration.lisbon"
ROWS = pd.DataFrame({"x": [1.0, 2.0]})


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A real MLflow store (SQLite, local artifacts) whose model has versions 1-5, each predicting its number."""
    import mlflow.sklearn
    from mlflow import MlflowClient
    from sklearn.dummy import DummyRegressor

    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder}/mlflow.db"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("serving", artifact_location=f"file://{folder}/artifacts")
    client.create_registered_model(NAME)
    for value in (1, 2, 3, 4, 5):
        model = DummyRegressor(strategy="constant", constant=float(value)).fit(ROWS, [0.0, 0.0])
        path = folder / f"model-{value}"
        mlflow.sklearn.save_model(model, str(path), pip_requirements=["scikit-learn"])
        if value == 5:  # a model outside any run: MLflow's own download of the registry's location
            client.create_model_version(NAME, path.as_uri())
            continue
        run = client.create_run(experiment)
        client.log_artifacts(run.info.run_id, str(path), "model")
        # As training registers a version (the run's artifact URI), and as a runs:/ URI.
        source = f"runs:/{run.info.run_id}/model" if value == 4 else f"{run.info.artifact_uri}/model"
        client.create_model_version(NAME, source, run_id=run.info.run_id)
        client.set_terminated(run.info.run_id)
    client.set_registered_model_alias(NAME, "champion", "1")
    return client


class Clock:
    """Seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def served(model: Any) -> float:
    return float(model.predict(ROWS)[0])


@pytest.fixture(autouse=True)
def champion_back_to_one(registry: Any) -> Any:
    yield
    registry.set_registered_model_alias(NAME, "champion", "1")


def test_an_alias_resolves_once_to_a_version_uri(registry: Any) -> None:
    resolved = resolve_alias(registry, NAME)
    registry.set_registered_model_alias(NAME, "champion", "2")

    assert resolved == ResolvedModel(NAME, "1", "champion")
    assert resolved.uri == f"models:/{NAME}/1"
    assert served(load_pyfunc(registry, NAME, resolved.version)) == 1.0


def test_versions_in_a_run_download_through_the_client_others_through_mlflow(registry: Any) -> None:
    """The client's own download is what an Airflow connection's client sends its credentials with."""
    from mlflow import MlflowClient

    calls: list[str] = []

    class Recording(MlflowClient):
        def download_artifacts(self, run_id: str, path: str, dst_path: str | None = None) -> str:
            calls.append(path)
            return str(super().download_artifacts(run_id, path, dst_path))

    client = Recording(tracking_uri=registry.tracking_uri, registry_uri=registry.tracking_uri)

    assert [served(load_pyfunc(client, NAME, version)) for version in ("1", "4", "5")] == [1.0, 4.0, 5.0]
    assert calls == ["model", "model"]  # version 5 is in no run


def test_a_missing_alias_or_model_says_what_to_do(registry: Any) -> None:
    with pytest.raises(NoServableModel, match=r"'ride_duration.lisbon' has no 'shadow' alias.*promote it first"):
        resolve_alias(registry, NAME, "shadow")
    with pytest.raises(NoServableModel, match=r"'nowhere.city' has no 'champion' alias"):
        ModelCache(registry).serve("nowhere.city")


def test_the_alias_is_read_again_after_the_interval_and_not_before(registry: Any) -> None:
    clock = Clock()
    cache = ModelCache(registry, alias_ttl=30, clock=clock)
    assert cache.resolve(NAME).version == "1"

    registry.set_registered_model_alias(NAME, "champion", "2")
    clock.now += 29.9
    assert cache.resolve(NAME).version == "1"
    assert cache.stats().alias_reads == 1
    clock.now += 0.1
    resolved, model = cache.serve(NAME)

    assert resolved.version == "2"
    assert served(model) == 2.0
    assert cache.stats().alias_reads == 2


def test_forgetting_an_alias_reads_it_at_once(registry: Any) -> None:
    cache = ModelCache(registry, alias_ttl=3600, clock=Clock())
    cache.resolve(NAME)
    registry.set_registered_model_alias(NAME, "champion", "3")

    cache.forget_alias(NAME)

    assert cache.resolve(NAME).version == "3"


def test_the_least_recently_used_model_is_evicted(registry: Any) -> None:
    loads: list[str] = []

    def counting(client: Any, name: str, version: str) -> Any:
        loads.append(version)
        return load_pyfunc(client, name, version)

    cache = ModelCache(registry, max_models=2, loader=counting)
    cache.get(NAME, "1")
    cache.get(NAME, "2")
    assert served(cache.get(NAME, "1")) == 1.0  # a hit: 1 is now the most recently used

    cache.get(NAME, "3")

    assert cache.cached() == [(NAME, "1"), (NAME, "3")]
    assert loads == ["1", "2", "3"]
    assert served(cache.get(NAME, "2")) == 2.0  # evicted, so loaded again
    assert loads == ["1", "2", "3", "2"]
    assert cache.stats().evictions == 2
    assert cache.stats().hits == 1


def _counting(loads: list[str]) -> Any:
    lock = threading.Lock()

    def load(client: Any, name: str, version: str) -> Any:
        with lock:
            loads.append(version)
        return load_pyfunc(client, name, version)

    return load


def _in_threads(count: int, work: Any) -> list[BaseException]:
    start = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            start.wait()
            work(index)
        except Exception as exc:  # noqa: BLE001 - reported by the test's assertion
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_threads_that_ask_for_one_model_at_once_load_it_once(registry: Any) -> None:
    loads: list[str] = []
    cache = ModelCache(registry, loader=_counting(loads))
    got: list[float] = []

    errors = _in_threads(8, lambda _: got.append(served(cache.get(NAME, "2"))))

    assert not errors, errors[0]
    assert loads == ["2"]
    assert got == [2.0] * 8
    assert cache.stats().hits + cache.stats().loads <= 8


def test_concurrent_gets_under_eviction_give_each_its_version(registry: Any) -> None:
    loads: list[str] = []
    cache = ModelCache(registry, max_models=2, loader=_counting(loads))
    results: list[tuple[str, float]] = []

    def work(index: int) -> None:
        for round_ in range(15):
            version = str(1 + (index + round_) % 3)
            results.append((version, served(cache.get(NAME, version))))
            assert len(cache.cached()) <= 2

    errors = _in_threads(8, work)

    assert not errors, errors[0]
    assert len(results) == 8 * 15
    assert all(float(version) == value for version, value in results)
    assert len(cache.cached()) == 2
    assert cache.stats().loads == len(loads)
    assert cache.stats().evictions == len(loads) - 2


def test_a_failed_load_is_not_cached(registry: Any) -> None:
    cache = ModelCache(registry)

    with pytest.raises(Exception, match="99"):
        cache.get(NAME, "99")

    assert cache.cached() == []
    assert served(cache.get(NAME, "1")) == 1.0


def test_bounds_are_checked() -> None:
    with pytest.raises(ValueError, match="max_models=0"):
        ModelCache(None, max_models=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="alias_ttl=-1"):
        ModelCache(None, alias_ttl=-1)  # type: ignore[arg-type]


def test_the_lru_holds_a_round_robin_of_as_many_models_as_it_keeps(registry: Any) -> None:
    loads: list[str] = []
    cache = ModelCache(registry, max_models=3, loader=_counting(loads))

    for _ in range(20):
        for version in ("1", "2", "3"):
            cache.get(NAME, version)

    assert sorted(loads) == ["1", "2", "3"]  # each loaded once, then every request a hit
    assert (cache.stats().evictions, cache.stats().hits) == (0, 57)


def test_a_round_robin_of_more_models_than_it_keeps_warns_with_the_figures_once_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    cache = ModelCache(None, max_models=2, loader=lambda client, name, version: version, clock=clock)  # type: ignore[arg-type]

    with caplog.at_level("WARNING", logger="airflow_ml.ml.model_cache"):
        for _ in range(8):  # three cities round-robin through two slots: every request reloads
            for version in ("1", "2", "3"):
                cache.get(NAME, version)
                clock.now += 1
        first = [r.getMessage() for r in caplog.records]
        clock.now += 61
        for version in ("1", "2", "3") * 4:
            cache.get(NAME, version)

    assert cache.stats().loads == 36
    assert len(first) == 1
    assert first[0].startswith("the model cache evicted 10 models in the last 60 s with max_models=2 (12 loads, 0 hits")
    assert "raise --max-models" in first[0]
    assert len(caplog.records) == 2  # a minute later, still thrashing: warned again, once
