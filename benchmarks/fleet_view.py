"""The fleet view's page time over N cities: the registry reads, the rows and the HTML, as the api-server makes them.

A fresh SQLite MLflow store (the embedded default) gets N cities of one template, registered night by night
(each night a version of every city, with ``gate.*`` tags as the gate writes them) and a champion each; every
third city's champion is an older version (a kept challenger), and the monitor's live score is on each
champion. The page is then made as ``airflow_ml.fleet.app.collect_fleet`` and the HTML route make it, without
the metadata database (its queries, one per kind of fact, do not grow with the registry): ``list_versions``
(one version search per template), ``read_models`` (one model search per template), ``complete_versions``
and ``trends_of``, ``build_rows`` with ``summarize``, and ``render``. Median of ``--repeat`` rounds, with the
registry calls counted.

    .venv/bin/python benchmarks/fleet_view.py --cities 100 --versions 10 --repeat 5
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
TEMPLATE = "bench"


class CountingClient:
    """A real MLflow client that counts the registry calls made through it."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return method(*args, **kwargs)

        return counted


def fill(client: Any, models: Path, cities: int, versions: int) -> list[str]:
    """Register the fleet night by night (each night, a version of every city); returns the model names."""
    names = [f"{TEMPLATE}.city_{index:04d}" for index in range(cities)]
    for name in names:
        client.create_registered_model(name)
        (models / name).mkdir(parents=True)
    for number in range(1, versions + 1):
        for index, name in enumerate(names):
            tags = {
                "gate.metric": "rmse",
                "gate.challenger_score": f"{8 - number * 0.1:.3f}",
                "gate.decision": "promoted" if number < versions or index % 3 else "kept",
                "gate.reason": "benchmark",
                "gate.airflow_run_id": f"run_{number}",
            }
            client.create_model_version(name, str(models / name), tags=tags)
    for index, name in enumerate(names):
        champion = versions - 1 if index % 3 == 0 and versions > 1 else versions
        client.set_registered_model_alias(name, "champion", str(champion))
        client.set_model_version_tag(name, str(champion), "monitor.verdict", "healthy")
        client.set_model_version_tag(name, str(champion), "monitor.live_rmse", "7.9")
    return names


def page_once(client: Any, names: list[str]) -> dict[str, float]:
    """One page, timed part by part (seconds)."""
    from airflow_ml.fleet.html import render
    from airflow_ml.fleet.metadata import CityDag, LastRun
    from airflow_ml.fleet.model_states import read_models
    from airflow_ml.fleet.rows import build_rows
    from airflow_ml.fleet.summary import summarize
    from airflow_ml.fleet.trends import complete_versions, list_versions, trends_of

    now = dt.datetime.now(dt.UTC)
    dags = [CityDag(name, name.split(".")[1], display_name=f"City {name[-4:]} · {TEMPLATE}") for name in names]
    runs = {name: LastRun("run_1", "success", "scheduled", now, now, now) for name in names}
    times: dict[str, float] = {}
    start = time.perf_counter()
    versions, errors = list_versions(client, names)  # as airflow_ml.fleet.app: one version search per template
    times["list_versions"] = time.perf_counter() - start
    mark = time.perf_counter()
    models = read_models(client, names, versions=versions)
    complete_versions(client, versions, [n for n, m in models.items() if m.registered and n not in versions])
    trends = trends_of(names, versions, errors)
    times["read_models"] = time.perf_counter() - mark
    mark = time.perf_counter()
    rows = build_rows(dags, runs, {}, models, trends=trends)
    page = render(rows, generated_at=now.isoformat(), summary=summarize(rows, now=now))
    times["rows and html"] = time.perf_counter() - mark
    times["total"] = time.perf_counter() - start
    assert page.count('<svg class="trend"') == len(names), "every city must have its trend"
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cities", type=int, default=100)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from mlflow import MlflowClient

    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        started = time.perf_counter()
        names = fill(MlflowClient(tracking_uri=uri, registry_uri=uri), Path(tmp) / "models", args.cities, args.versions)
        filled = time.perf_counter() - started
        print(f"registry: {args.cities} cities x {args.versions} versions, filled in {filled:.1f} s")
        client = CountingClient(MlflowClient(tracking_uri=uri, registry_uri=uri))
        page_once(client, names)  # the first read warms SQLAlchemy's and MLflow's caches, as a running server has
        client.calls.clear()
        rounds = [page_once(client, names) for _ in range(args.repeat)]
        calls = {name: count // args.repeat for name, count in sorted(client.calls.items())}
        size = len(rounds)
    print(f"fleet page, median of {size} rounds (registry calls per page: {calls})")
    for part in rounds[0]:
        print(f"  {part:<14} {statistics.median(r[part] for r in rounds) * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
