"""What the DAG files register (factory/dag_registration.py): each shard file builds its cities' retraining and scoring
DAGs from one read of each city file; one file builds every template's monitor and drift review DAGs from one load."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from airflow_ml.exceptions import BrokenCityFiles
from airflow_ml.factory import (
    Shard,
    city_problems,
    monitor_dags,
    register_city_dags,
    register_dags,
    register_monitor_and_drift_review_dags,
    register_score_dags,
    report_broken_cities,
    score_dags,
)
from airflow_ml.factory.drift_review_dags import register_drift_review_dags
from airflow_ml.factory.monitor_dags import register_monitor_dags
from tests.support import REPO
from tests.support.city_files import write_city
from tests.support.monitoring_worlds import MONITORING

EXPECTATIONS = REPO / "expectations"
CITIES = ["berlin", "lisbon", "oslo", "porto"]


@pytest.fixture
def fleet(root: Path) -> Path:
    """Four cities of the ride_duration template: all but oslo score and are monitored; porto has no drift review."""
    for city in CITIES:
        extra = "" if city == "oslo" else MONITORING
        write_city(root, city, f"city: {city}\ntemplate: ride_duration\n{extra}")
    porto = root / "cities" / "porto.yaml"
    porto.write_text(porto.read_text(encoding="utf-8") + "drift:\n  calibration: {enabled: false}\n", "utf-8")
    return root


def _city_dags(root: Path, shard: Shard | None = None) -> dict[str, Any]:
    return register_city_dags({}, templates_root=root, expectations_dir=EXPECTATIONS, shard=shard)


def _skipped(caplog: pytest.LogCaptureFixture, needle: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if "skipped" in r.getMessage() and needle in r.getMessage()]


def test_a_shard_file_builds_each_city_s_retraining_and_scoring_dags_as_the_two_registrations_do(fleet: Path) -> None:
    namespace: dict[str, Any] = {}

    built = register_city_dags(namespace, templates_root=fleet, expectations_dir=EXPECTATIONS)

    retraining = register_dags({}, templates_root=fleet, expectations_dir=EXPECTATIONS)
    scoring = register_score_dags({}, templates_root=fleet)
    assert sorted(built) == sorted([*retraining, *scoring])
    assert sorted(scoring) == [f"ride_duration.{city}.score" for city in CITIES if city != "oslo"]
    assert namespace["dag_ride_duration_berlin_score"] is built["ride_duration.berlin.score"]
    assert namespace["dag_ride_duration_berlin"] is built["ride_duration.berlin"]
    for dag_id, dag in built.items():  # the same DAGs, task for task
        other = {**retraining, **scoring}[dag_id]
        assert [t.task_id for t in dag.topological_sort()] == [t.task_id for t in other.topological_sort()]
        assert dag.tags == other.tags


def test_a_broken_city_file_is_read_and_reported_once_by_the_shard_file_that_builds_both_dags(
    fleet: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_city(fleet, "broken", f"city: broken\ntemplate: ride_duration\nnot_a_field: 1\n{MONITORING}")

    with caplog.at_level(logging.ERROR):
        built = _city_dags(fleet)

    assert not [dag_id for dag_id in built if "broken" in dag_id]
    assert len(_skipped(caplog, "broken.yaml")) == 1, "each city file is loaded once for both of its DAGs"
    assert "ride_duration.berlin.score" in built


def test_shards_split_both_dags_of_a_city_alike(fleet: Path) -> None:
    shards = [_city_dags(fleet, Shard(index, 2)) for index in range(2)]

    assert sorted([*shards[0], *shards[1]]) == sorted(_city_dags(fleet))
    for index, built in enumerate(shards):
        assert all(Shard(index, 2).holds(dag_id.split(".")[1]) for dag_id in built)


def test_a_city_whose_scoring_dag_cannot_be_built_keeps_its_retraining_dag_and_the_reverse(
    fleet: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Both need AIRFLOW_ML_DATA_ROOT at parse to name the data Asset: without it, only that DAG is skipped.
    monkeypatch.delenv("AIRFLOW_ML_DATA_ROOT", raising=False)
    berlin, lisbon = fleet / "cities" / "berlin.yaml", fleet / "cities" / "lisbon.yaml"
    berlin.write_text(berlin.read_text(encoding="utf-8").replace("scoring:\n", "scoring:\n  on_new_data: true\n"))
    lisbon.write_text(lisbon.read_text(encoding="utf-8") + "dag:\n  on_new_data: true\n", encoding="utf-8")

    with caplog.at_level(logging.ERROR):
        built = _city_dags(fleet)

    assert "ride_duration.berlin" in built
    assert "ride_duration.berlin.score" not in built
    assert "ride_duration.lisbon" not in built
    assert "ride_duration.lisbon.score" in built
    assert any("scoring.on_new_data needs AIRFLOW_ML_DATA_ROOT" in m for m in _skipped(caplog, "scoring DAG"))
    assert any("dag.on_new_data needs AIRFLOW_ML_DATA_ROOT" in m for m in _skipped(caplog, "a city:"))


def _broken_for_berlin(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> None:
    """Make ``module.name`` (a settings class) raise RuntimeError for berlin alone: a bug no message foresaw."""

    class Broken(getattr(module, name)):  # type: ignore[misc]
        def __init__(self, **kwargs: Any) -> None:
            if kwargs.get("city") == "berlin":
                raise RuntimeError(f"a bug in {name}")
            super().__init__(**kwargs)

    monkeypatch.setattr(module, name, Broken)


def test_an_unexpected_error_building_one_dag_skips_that_dag_alone_and_names_its_city_file(
    fleet: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A data root Airflow refuses as an Asset URI: berlin's scoring DAG raises ValueError, not a ConfigError.
    monkeypatch.setenv("AIRFLOW_ML_DATA_ROOT", "airflow://data")
    berlin = fleet / "cities" / "berlin.yaml"
    berlin.write_text(berlin.read_text(encoding="utf-8").replace("scoring:\n", "scoring:\n  on_new_data: true\n"))

    with caplog.at_level(logging.ERROR):
        built = _city_dags(fleet)

    assert sorted(built) == sorted(
        [f"ride_duration.{city}" for city in CITIES] + [f"ride_duration.{c}.score" for c in ("lisbon", "porto")]
    )
    (message,) = _skipped(caplog, "ride_duration.berlin.score")
    assert str(berlin) in message
    assert [e.file for e in city_problems(fleet)] == [str(berlin)]


def test_a_bug_in_a_city_s_scoring_settings_skips_its_scoring_dag_and_is_reported_by_retrain_errors(
    fleet: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _broken_for_berlin(monkeypatch, score_dags, "ScoringSettings")

    with caplog.at_level(logging.ERROR):
        built = _city_dags(fleet)

    assert "ride_duration.berlin.score" not in built
    assert {"ride_duration.berlin", "ride_duration.lisbon.score", "ride_duration.porto"} <= set(built)
    (problem,) = city_problems(fleet)
    assert problem.file == str(fleet / "cities" / "berlin.yaml")
    assert "RuntimeError: a bug in ScoringSettings" in str(problem)


def test_a_bug_building_the_monitor_dag_leaves_the_drift_review_dag_and_names_the_city_files(
    fleet: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _broken_for_berlin(monkeypatch, monitor_dags, "MonitorSettings")

    with caplog.at_level(logging.ERROR):
        built = register_monitor_and_drift_review_dags({}, templates_root=fleet)

    assert list(built) == ["ride_duration.drift_review"]
    (message,) = _skipped(caplog, "ride_duration.monitor")
    assert str(fleet / "cities" / "berlin.yaml") in message
    (problem,) = city_problems(fleet)
    assert problem.file == str(fleet / "cities" / "berlin.yaml")
    assert "RuntimeError: a bug in MonitorSettings" in str(problem)


@pytest.mark.parametrize("dag_id", ["ride_duration.berlin", "ride_duration.berlin.score"])
def test_a_task_process_reads_only_its_city_s_file_and_builds_only_its_dag(
    fleet: Path, dag_id: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    write_city(fleet, "broken", "city: broken\ntemplate: ride_duration\nnot_a_field: 1\n")
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", dag_id)

    with caplog.at_level(logging.ERROR):
        built = _city_dags(fleet)

    assert list(built) == [dag_id]
    assert caplog.records == [], "a task process must not read other cities' files"


def test_a_city_named_score_is_still_a_retraining_dag_in_its_task_process(
    fleet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_city(fleet, "score", f"city: score\ntemplate: ride_duration\n{MONITORING}")
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "ride_duration.score")

    assert list(register_dags({}, templates_root=fleet, expectations_dir=EXPECTATIONS)) == ["ride_duration.score"]
    assert list(_city_dags(fleet)) == ["ride_duration.score"]
    assert register_score_dags({}, templates_root=fleet) == {}


def test_a_shard_far_past_its_budget_says_how_many_shard_files_the_fleet_needs(
    fleet: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("airflow_ml.factory.sharding.CITIES_PER_SHARD", 1)  # 4 cities in one shard: past 2 x 1

    with caplog.at_level(logging.WARNING):
        _city_dags(fleet)

    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "shard" in r.getMessage()]
    assert "holds 4 city files" in warning
    assert "4 shard files" in warning


def test_a_report_file_past_its_budget_says_how_many_report_files_the_fleet_needs(
    fleet: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("airflow_ml.factory.sharding.CITIES_PER_REPORT", 1)  # 4 cities in one report file

    with caplog.at_level(logging.WARNING):
        report_broken_cities(templates_root=fleet)  # no broken file: it raises nothing, and still warns

    (warning,) = [r.getMessage() for r in caplog.records if "report of broken city files" in r.getMessage()]
    assert "(shard 0 of 1) reads 4 city files, more than 1: about 4 cities need 4 report files" in warning


def test_misnamed_layer_files_do_not_count_in_a_report_files_city_budget(
    fleet: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("airflow_ml.factory.sharding.CITIES_PER_REPORT", 4)  # the fleet's 4 cities, no more
    (fleet / "templates" / "late.yml").write_text("dataset: {}\n")
    (fleet / "defaults.yml").write_text("owner: x\n")

    with caplog.at_level(logging.WARNING), pytest.raises(BrokenCityFiles, match=r"late\.yml"):
        report_broken_cities(templates_root=fleet, shard=Shard(0, 1))

    assert not [r for r in caplog.records if "report of broken city files" in r.getMessage()]


def test_an_unsharded_load_runs_no_model_name_pass(fleet: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_pass(*args: object) -> None:
        raise AssertionError("the model-name pass ran")

    monkeypatch.setattr("airflow_ml.templates.loader.outside_claims", no_pass)

    assert _city_dags(fleet)
    assert _city_dags(fleet, Shard(0, 1))
    assert city_problems(fleet, Shard(0, 1)) == city_problems(fleet) == []


def test_a_report_shard_validates_only_its_city_files_and_shard_0_names_the_parents(fleet: Path) -> None:
    write_city(fleet, "broken", "city: broken\ntemplate: ride_duration\nnot_a_field: 1\n")
    holder = next(index for index in range(2) if Shard(index, 2).holds("broken"))
    (fleet / "groups").mkdir()
    (fleet / "groups" / "norway.yaml").write_text("fallback: {parent: group}\ntraining: {num_boost_round: -1}\n")
    write_city(fleet, "bergen", "city: bergen\ntemplate: ride_duration\ngroup: norway\n")
    parent = [str(e) for e in city_problems(fleet) if e.file.endswith("norway.yaml")]

    shards = [[str(e) for e in city_problems(fleet, Shard(index, 2))] for index in range(2)]

    assert any("broken.yaml" in e for e in shards[holder])
    assert not any("broken.yaml" in e for e in shards[1 - holder])
    assert parent
    assert all(e in shards[0] for e in parent)
    assert not any(e in shards[1] for e in parent)


def _cities_of(dags: dict[str, Any]) -> dict[str, list[str]]:
    """Each monitor or review DAG's cities, read from its task's arguments."""
    cities: dict[str, list[str]] = {}
    for dag_id, dag in dags.items():
        if dag_id.endswith(".monitor"):
            cities[dag_id] = sorted(dag.get_task("monitor").partial_kwargs["settings"])
        else:
            cities[dag_id] = sorted(dag.get_task("review").settings["cities"])
    return cities


def test_one_file_builds_the_monitor_and_drift_review_dags_each_over_the_cities_its_own_registration_takes(
    fleet: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A broken city (an unknown key) and a second file for berlin's id: the full load refuses both, and so does
    # the shared load, for both DAGs, with each error logged once.
    write_city(fleet, "broken", f"city: broken\ntemplate: ride_duration\nnot_a_field: 1\n{MONITORING}")
    (fleet / "cities" / "spain").mkdir()
    (fleet / "cities" / "spain" / "berlin.yaml").write_text("city: berlin\ntemplate: ride_duration\n", "utf-8")
    namespace: dict[str, Any] = {}

    with caplog.at_level(logging.ERROR):
        both = register_monitor_and_drift_review_dags(namespace, templates_root=fleet)
    messages = [r.getMessage() for r in caplog.records]

    separate = {
        **register_monitor_dags({}, templates_root=fleet),
        **register_drift_review_dags({}, templates_root=fleet),
    }
    assert (
        _cities_of(both)
        == _cities_of(separate)
        == {
            "ride_duration.drift_review": ["berlin", "lisbon", "oslo"],
            "ride_duration.monitor": ["berlin", "lisbon", "porto"],
        }
    )
    shards = register_dags({}, templates_root=fleet, expectations_dir=EXPECTATIONS)
    accepted = {dag_id.split(".")[1] for dag_id in shards}
    # Never a city whose file fails validation.
    assert {c for cities in _cities_of(both).values() for c in cities} <= accepted
    assert len(messages) == 2
    assert sum("broken.yaml" in m for m in messages) == sum("already given by" in m for m in messages) == 1
    monitor = both["ride_duration.monitor"]
    assert (
        monitor.get_task("monitor").partial_kwargs["settings"]
        == (separate["ride_duration.monitor"].get_task("monitor").partial_kwargs["settings"])
    )
    assert namespace["dag_ride_duration_monitor"] is monitor
    assert namespace["dag_ride_duration_drift_review"] is both["ride_duration.drift_review"]


@pytest.mark.parametrize("dag_id", ["ride_duration.monitor", "ride_duration.drift_review"])
def test_a_task_process_of_one_template_dag_builds_only_that_one(
    fleet: Path, dag_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", dag_id)

    assert list(register_monitor_and_drift_review_dags({}, templates_root=fleet)) == [dag_id]


def test_a_task_process_of_a_city_s_dag_reads_no_city_file_for_the_template_dags(
    fleet: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    write_city(fleet, "broken", "city: broken\ntemplate: ride_duration\nnot_a_field: 1\n")
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "ride_duration.berlin")

    with caplog.at_level(logging.ERROR):
        assert register_monitor_and_drift_review_dags({}, templates_root=fleet) == {}
    assert caplog.records == []
