"""Two templates that share a city id and a logical date keep their snapshots apart (dag.test(), real MLflow).

Two DAGs on the same cron get the same ``scheduled__…`` run id; when snapshots were keyed by city and run id
alone, ``late.lisbon`` and ``delay.lisbon`` read each other's rows and overwrote each other's records.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest

from tests.support import REPO
from tests.support.worlds import write_loader

pytestmark = pytest.mark.integration
CITY = "lisbon"
WHEN = dt.datetime(2026, 3, 1, 2, tzinfo=dt.UTC)


def _template(root: Path, name: str, source: str) -> None:
    text = (REPO / "dag_templates" / "templates" / "ride_duration.yaml").read_text(encoding="utf-8")
    text = text.replace("template: ride_duration\n", "").replace('"{data_root}/raw/trips/{city}"', f'"{source}"')
    (root / "templates" / f"{name}.yaml").write_text(text, encoding="utf-8")
    (root / "cities" / name).mkdir()
    (root / "cities" / name / f"{CITY}.yaml").write_text(
        f"city: {CITY}\ntemplate: {name}\ndag:\n  retries: 0\n  schedule: null\n", encoding="utf-8"
    )


def test_two_templates_one_city_one_logical_date(
    tmp_path: Path, airflow_db: Path, dags_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pandas as pd

    from airflow_ml.data.demo import write_demo_data
    from airflow_ml.data.snapshot import MANIFEST, snapshot_location
    from airflow_ml.factory import register_dags
    from tests.support.mlflow_stores import wire_mlflow

    root, data = tmp_path / "templates", tmp_path / "data"
    (root / "templates").mkdir(parents=True)
    (root / "cities").mkdir()
    _template(root, "late", "{data_root}/raw/trips/{city}")
    _template(root, "delay", "{data_root}/raw/delay/{city}")
    write_demo_data(data, cities=[CITY], batch="initial", scale=0.3)
    write_demo_data(tmp_path / "other", cities=[CITY], batch="initial", scale=0.6, seed=11)
    shutil.copytree(tmp_path / "other" / "raw" / "trips", data / "raw" / "delay")
    write_loader(dags_dir, "world_snapshot_keys", root)
    monkeypatch.setenv("AIRFLOW_ML_DATA_ROOT", str(data))
    wire_mlflow(tmp_path / "mlflow", monkeypatch)

    dags = register_dags({}, templates_root=root, expectations_dir=REPO / "expectations")
    runs = {name: dags[f"{name}.{CITY}"].test(logical_date=WHEN, run_after=WHEN) for name in ("late", "delay")}

    assert runs["late"].run_id == runs["delay"].run_id  # the collision the keying must survive
    for name, source in (("late", "trips"), ("delay", "delay")):
        assert str(runs[name].state) == "success", name
        folder = Path(snapshot_location(str(data / "snapshots"), name, CITY, runs[name].run_id))
        manifest = json.loads((folder / MANIFEST).read_text())
        expected_rows = sum(len(pd.read_parquet(p)) for p in (data / "raw" / source / CITY).rglob("*.parquet"))
        assert (manifest["template"], manifest["row_count"]) == (name, expected_rows)
        decision = json.loads((folder / "decision.json").read_text())
        assert decision["model_name"] == f"{name}.{CITY}"
        assert decision["snapshot_hash"] == manifest["content_hash"]
