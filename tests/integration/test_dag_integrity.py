"""Every city yields its DAGs with the designed task order, and parsing dags/ stays light.

The repo's template has ``scoring:`` and ``monitoring:``: each city gets its retraining DAG ``<template>.<city>``
and its scoring DAG ``<template>.<city>.score``; the template gets one monitor DAG ``<template>.monitor``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support import REPO

HEAVY = ("pandas", "numpy", "mlflow", "great_expectations", "lightgbm", "pyarrow", "sklearn", "matplotlib")
pytestmark = pytest.mark.integration


def _parse_in_fresh_process() -> dict:
    # A fresh interpreter, as the DAG processor has: what parsing imports shows in sys.modules.
    script = textwrap.dedent(
        f"""
        import json, sys
        from airflow.dag_processing.dagbag import DagBag
        bag = DagBag(dag_folder={str(REPO / "dags")!r})
        print(json.dumps({{
            "errors": {{str(k): str(v) for k, v in bag.import_errors.items()}},
            "dags": {{dag_id: {{
                "order": [t.task_id for t in dag.topological_sort()],
                "edges": sorted((u, d) for t in dag.tasks for u in [t.task_id] for d in t.downstream_task_ids),
                "tags": sorted(dag.tags), "owner": dag.default_args.get("owner"),
                "retries": dag.default_args.get("retries"), "params": sorted(dag.params.keys()),
                "doc": dag.doc_md or "", "max_active_runs": dag.max_active_runs, "catchup": dag.catchup,
                "timetable": type(dag.timetable).__name__, "display": dag.dag_display_name,
            }} for dag_id, dag in bag.dags.items()}},
            "heavy": sorted(m for m in {list(HEAVY)!r} if m in sys.modules),
        }}))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def parsed() -> dict:
    return _parse_in_fresh_process()


def test_every_city_file_yields_a_dag_without_import_errors(parsed: dict) -> None:
    cities = sorted(p.stem for p in (REPO / "dag_templates" / "cities").glob("*.yaml"))
    assert parsed["errors"] == {}
    fleet = ["airflow_ml.rollback", "airflow_ml.snapshot_retention"]
    per_city = [f"ride_duration.{city}{kind}" for city in cities for kind in ("", ".score")]
    templates = ["ride_duration.monitor", "ride_duration.drift_review"]
    assert sorted(parsed["dags"]) == sorted([*fleet, *per_city, *templates])


def test_every_dag_carries_a_display_name_and_cities_show_their_own(parsed: dict) -> None:
    displays = {dag_id: dag["display"] for dag_id, dag in parsed["dags"].items()}

    assert [dag_id for dag_id, shown in displays.items() if shown == dag_id] == []
    assert displays["ride_duration.sao_paulo"] == "São Paulo · ride_duration"
    assert displays["ride_duration.sao_paulo.score"] == "São Paulo · ride_duration · scoring"
    assert displays["ride_duration.monitor"] == "ride_duration · monitor"
    assert displays["ride_duration.drift_review"] == "ride_duration · drift review"
    assert displays["airflow_ml.rollback"] == "airflow-ml · rollback"


def test_one_manual_rollback_dag_serves_the_fleet(parsed: dict) -> None:
    rollback = parsed["dags"]["airflow_ml.rollback"]
    assert rollback["order"] == ["rollback"]
    assert rollback["params"] == ["model", "reason"]
    assert rollback["timetable"] == "NullTimetable"  # manual only


def test_one_daily_retention_dag_prunes_the_fleets_snapshots(parsed: dict) -> None:
    retention = parsed["dags"]["airflow_ml.snapshot_retention"]
    assert retention["order"] == ["prune_snapshots"]
    assert retention["params"] == ["dry_run", "template"]
    assert retention["timetable"] == "CronTriggerTimetable"
    assert retention["catchup"] is False


def test_dags_have_the_designed_task_order(parsed: dict) -> None:
    retraining = [d for d in parsed["dags"] if not d.startswith("airflow_ml.") and d.count(".") == 1]
    retraining.remove("ride_duration.monitor")  # the template's monitor DAG (below)
    retraining.remove("ride_duration.drift_review")  # and its drift review (below)
    assert retraining
    for dag_id in retraining:
        dag = parsed["dags"][dag_id]
        order = ["snapshot", "validate", "drift", "train", "register", "gate", "approve", "health_check"]
        assert dag["order"] == order, dag_id
        chain = [["snapshot", "validate"], ["validate", "drift"], ["drift", "train"], ["train", "register"]]
        chain += [["register", "gate"], ["gate", "approve"], ["approve", "health_check"]]
        # Extra edges carry XComs (snapshot feeds drift, train, register and gate) but never skip validation.
        assert all(edge in dag["edges"] for edge in chain), dag_id
        # The health check follows the gate when the gate skipped the approval (no person asked).
        assert ["gate", "health_check"] in dag["edges"], dag_id
        assert ["validate", "train"] not in dag["edges"], dag_id  # training waits for the drift check


def test_score_dags_resolve_the_serving_version_once_then_score(parsed: dict) -> None:
    scoring = sorted(d for d in parsed["dags"] if d.endswith(".score"))
    assert scoring
    for dag_id in scoring:
        dag = parsed["dags"][dag_id]
        assert dag["order"] == ["resolve", "score"], dag_id
        assert dag["edges"] == [["resolve", "score"]], dag_id
        assert {"airflow-ml", "scoring", "ride_duration"} <= set(dag["tags"]), dag_id
        assert dag["max_active_runs"] == 1, dag_id
        assert dag["catchup"] is False, dag_id


def test_one_nightly_drift_review_dag_adjusts_the_templates_cities_together(parsed: dict) -> None:
    review = parsed["dags"]["ride_duration.drift_review"]
    assert review["order"] == ["review"]
    assert {"airflow-ml", "ride_duration", "drift"} <= set(review["tags"])
    assert review["timetable"] == "CronTriggerTimetable"
    assert review["catchup"] is False


def test_one_daily_monitor_dag_watches_the_templates_cities(parsed: dict) -> None:
    monitor = parsed["dags"]["ride_duration.monitor"]
    assert monitor["order"] == ["monitor"]  # one task, mapped over the cities at run time
    assert monitor["edges"] == []
    assert {"airflow-ml", "ride_duration", "monitor"} <= set(monitor["tags"])
    assert monitor["timetable"] == "CronTriggerTimetable"
    assert monitor["catchup"] is False


def test_dags_carry_tags_owner_retries_docs_and_typed_params(parsed: dict) -> None:
    berlin = parsed["dags"]["ride_duration.berlin"]
    assert {"airflow-ml", "ride_duration", "city:berlin", "ride-hailing"} <= set(berlin["tags"])
    assert berlin["owner"] == "ml-platform"
    assert berlin["retries"] == 1
    assert berlin["max_active_runs"] == 1
    assert berlin["catchup"] is False
    expected = {"num_boost_round", "learning_rate", "num_leaves", "min_data_in_leaf", "promotion_mode", "reason"}
    assert expected <= set(berlin["params"])
    assert '"num_leaves"' in berlin["doc"]  # the merged config is shown in the DAG docs


def test_parsing_dags_imports_no_heavy_library(parsed: dict) -> None:
    assert parsed["heavy"] == []


def test_airflow_lists_the_provider_with_its_hook_and_connection_type() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert "airflow-ml" in manager.providers
    hook = manager.hooks["mlflow"]
    assert hook is not None
    assert hook.hook_class_name == "airflow_ml.hooks.mlflow.MlflowHook"
    assert hook.connection_id_attribute_name == "mlflow_conn_id"
    assert "airflow_ml.links.mlflow_links.MlflowRunLink" in manager.extra_links_class_names


def _built_in_a_task_process(dag_id: str, files: list[Path]) -> list[str]:
    """The DAG ids the DAG files ``files`` build in a task process of ``dag_id`` (Airflow's parsing context)."""
    script = (
        "import runpy, json, sys\n"
        "built = []\n"
        "for path in sys.argv[1:]:\n"
        "    ns = runpy.run_path(path)\n"
        "    built += [getattr(v, 'dag_id', '') for k, v in ns.items() if k.startswith('dag_')]\n"
        "print(json.dumps(sorted(built)))\n"
    )
    env = {**os.environ, "_AIRFLOW_PARSING_CONTEXT_DAG_ID": dag_id}
    paths = [str(path) for path in files]
    result = subprocess.run([sys.executable, "-c", script, *paths], capture_output=True, text=True, env=env, check=True)
    return list(json.loads(result.stdout.strip().splitlines()[-1]))


def test_a_task_process_builds_only_its_own_dag() -> None:
    # Airflow sets the parsing context when a worker parses the DAG's file to run one of its tasks.
    shards = sorted((REPO / "dags").glob("retrain_shard_*.py"))
    assert _built_in_a_task_process("ride_duration.lisbon", shards) == ["ride_duration.lisbon"]


def test_a_scoring_task_process_builds_only_its_own_dag() -> None:
    every_file = sorted((REPO / "dags").glob("*.py"))
    assert _built_in_a_task_process("ride_duration.lisbon.score", every_file) == ["ride_duration.lisbon.score"]
