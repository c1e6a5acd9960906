"""Every city yields a DAG with the designed task order, and parsing dags/ stays light."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.support import REPO

HEAVY = ("pandas", "numpy", "mlflow", "great_expectations", "lightgbm", "pyarrow", "sklearn")
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
                "timetable": type(dag.timetable).__name__,
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
    assert sorted(parsed["dags"]) == [*fleet, *(f"ride_duration.{city}" for city in cities)]


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
    for dag_id, dag in parsed["dags"].items():
        if dag_id.startswith("airflow_ml."):
            continue
        order = ["snapshot", "validate", "drift", "train", "register", "gate", "approve", "health_check"]
        assert dag["order"] == order, dag_id
        chain = [["snapshot", "validate"], ["validate", "drift"], ["drift", "train"], ["train", "register"]]
        chain += [["register", "gate"], ["gate", "approve"], ["approve", "health_check"]]
        # Extra edges carry XComs (snapshot feeds drift, train, register and gate) but never skip validation.
        assert all(edge in dag["edges"] for edge in chain), dag_id
        assert ["validate", "train"] not in dag["edges"], dag_id  # training waits for the drift check


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


def test_a_task_process_builds_only_its_own_dag() -> None:
    # Airflow sets the parsing context when a worker parses the DAG's file to run one of its tasks.
    script = (
        "import runpy, json, sys\n"
        "built = {}\n"
        "for path in sys.argv[1:]:\n"
        "    ns = runpy.run_path(path)\n"
        "    built[path] = sorted(getattr(v, 'dag_id', '') for k, v in ns.items() if k.startswith('dag_'))\n"
        "print(json.dumps(built))\n"
    )
    shards = [str(path) for path in sorted((REPO / "dags").glob("retrain_shard_*.py"))]
    env = {**os.environ, "_AIRFLOW_PARSING_CONTEXT_DAG_ID": "ride_duration.lisbon"}
    result = subprocess.run(
        [sys.executable, "-c", script, *shards], capture_output=True, text=True, env=env, check=True
    )
    built = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted(dag_id for dags in built.values() for dag_id in dags) == ["ride_duration.lisbon"]
