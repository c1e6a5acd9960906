"""benchmarks/parse.py's generated fleet splits the broken-files report as a fleet past CITIES_PER_REPORT does.

It calls the script's ``_prepare`` at a tiny size with the count forced, and runs the report files it writes;
nothing is measured.
"""

from __future__ import annotations

import runpy
from pathlib import Path
from types import ModuleType

import pytest

from airflow_ml.exceptions import BrokenCityFiles
from airflow_ml.factory import Shard
from tests.support.benchmark_scripts import load_benchmark_script

pytestmark = pytest.mark.benchmark

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def parse() -> ModuleType:
    return load_benchmark_script("parse")


def test_the_fleet_gets_one_report_file_per_shard_and_each_broken_file_is_named_once(
    parse: ModuleType, tmp_path: Path
) -> None:
    parse._prepare(tmp_path, 6, 2, dag_factory=False, reports=3)
    dags = tmp_path / "factory" / "dags"
    cities = tmp_path / "factory" / "dag_templates" / "cities"
    (cities / "broken.yaml").write_text("city: broken\ntemplate: ride_duration\nnot_a_field: 1\n")

    reports = sorted(dags.glob("retrain_errors*.py"))
    raised = []
    for path in reports:
        try:
            runpy.run_path(str(path))
        except BrokenCityFiles as error:
            raised.append((path.name, str(error)))

    assert [p.name for p in reports] == [f"retrain_errors_{index}.py" for index in range(3)]
    holder = next(index for index in range(3) if Shard(index, 3).holds("broken"))
    assert [name for name, _ in raised] == [f"retrain_errors_{holder}.py"]
    assert "broken.yaml" in raised[0][1]
    assert "shard=Shard(2, 3))" in reports[2].read_text()


def test_one_report_file_is_the_shipped_one(parse: ModuleType, tmp_path: Path) -> None:
    parse._prepare(tmp_path, 4, 2, dag_factory=False)

    dags = tmp_path / "factory" / "dags"
    assert (dags / "retrain_errors.py").read_text() == (REPO / "dags" / "retrain_errors.py").read_text()
    assert not list(dags.glob("retrain_errors_*.py"))


def test_a_report_file_that_no_longer_holds_what_is_replaced_stops_the_script(
    parse: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parse, "REPORT_CALL", "report_broken_cities(templates_root=elsewhere)")

    with pytest.raises(SystemExit, match=r"dags/retrain_errors\.py no longer holds .*update benchmarks/parse\.py"):
        parse._prepare(tmp_path, 4, 2, dag_factory=False, reports=2)
