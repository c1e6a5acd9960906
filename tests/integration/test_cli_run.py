"""``airflow-ml run`` and ``status`` in a user's project folder, on the embedded default the command sets up itself.

No Airflow variable is set: the command computes the embedded default for the working folder (``var/``), sets it
before importing Airflow, migrates the new SQLite database, runs the city's real DAG with ``dag.test()`` and prints
its summary row; ``status`` then reads the latest run back from the files beside the snapshots.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pandas as pd
import pytest

from airflow_ml.data.demo import batch_days, write_demo_data
from tests.support.documented import shell, with_venv
from tests.support.project import airflow_ml, make_project

pytestmark = pytest.mark.integration


def _row(stdout: str, city: str) -> list[str]:
    """The cells of ``city``'s row, cut where the table's dashed line puts its columns."""
    lines = stdout.splitlines()
    dashes = next(line for line in lines if line.startswith("---"))
    starts = [m.start() for m in re.finditer(r"-+", dashes)]
    line = next(line for line in lines if line.startswith(city + " "))
    return [line[a:b].strip() for a, b in zip(starts, [*starts[1:], len(line)], strict=True)]


#: Airflow's own log reader (what the UI's log pane asks for) on the latest run's tries, in the project's environment.
READ_TASK_LOGS = """
import json
from airflow.models.dagrun import DagRun
from airflow.utils.log.log_reader import TaskLogReader
from airflow.utils.session import create_session
with create_session() as session:
    run = session.query(DagRun).filter_by(dag_id="ride_duration.berlin").order_by(DagRun.id.desc()).first()
    logs = {}
    for ti in run.get_task_instances(session=session):
        chunks, _ = TaskLogReader().read_log_chunks(ti, ti.try_number, {})
        logs[ti.task_id] = [str(ti.state), "\\n".join(str(getattr(m, "event", m)) for m in chunks)]
print(json.dumps(logs))
"""


def _assert_task_logs_readable(project: Path, stderr: str) -> None:
    """Each task of the run left its own log where Airflow's reader finds it; stderr had a line per task."""
    read = shell(f'eval "$(.venv/bin/airflow-ml env)"\n.venv/bin/python -c {shlex.quote(READ_TASK_LOGS)}', cwd=project)
    assert read.returncode == 0, read.stderr[-3000:]
    logs = json.loads(read.stdout.splitlines()[-1])
    assert {"snapshot", "validate", "train", "gate"} <= set(logs), logs.keys()
    for task_id, (state, text) in logs.items():
        assert "Log file not found" not in text, (task_id, text)
        assert re.search(rf"^   berlin\s+{task_id}\s+\d+\.\d s  {state}$", stderr, re.M), (task_id, stderr)
        assert not re.search(r"\[error\s*\]|\bERROR\b", text), (task_id, text)
    assert "trained run" in logs["train"][1], logs["train"][1]
    assert "trained run" not in logs["snapshot"][1]  # each try's own output
    logs = project.resolve() / "var" / "airflow" / "logs"  # as docs/guides/cli.md says
    assert f"task logs: in the Airflow UI, files under {logs}/dag_id=ride_duration.berlin/" in stderr
    assert list(logs.glob("dag_id=ride_duration.berlin/run_id=*/task_id=train/attempt=1.log"))
    assert (logs / "airflow-ml-run.log").is_file()


def test_run_one_city_then_read_the_fleets_status(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    project = with_venv(make_project(tmp_path / "project"))
    data_root = project / "var" / "data"
    # The commands of docs/guides/cli.md, as typed in a checkout after `make demo`.
    data = shell(".venv/bin/airflow-ml demo-data --root var/data --cities berlin", cwd=project)
    assert data.returncode == 0, data.stderr
    days = batch_days("initial")
    assert (days[0].isoformat(), days[44].isoformat()) == ("2026-01-05", "2026-02-18")
    first = shell(
        """.venv/bin/airflow-ml run ride_duration.berlin --conf '{"num_boost_round": 60}' """
        "--window-start 2026-01-05 --window-end 2026-02-18",
        cwd=project,
        timeout=900,
    )
    assert first.returncode == 0, first.stderr[-4000:]
    assert "migrating Airflow's SQLite database" in first.stderr
    assert (project / "var" / "airflow" / "airflow.db").is_file()
    header, _, only = first.stdout.splitlines()  # the summary is the only output on stdout
    assert header.split()[:3] == ["city", "data", "run"]
    assert only.startswith("berlin ")
    _, window, state, rows, validation, challenger, champion, version, decision, reason = _row(first.stdout, "berlin")
    assert (window, state, validation, version, decision) == (
        f"{days[0]}..{days[44]}",
        "success",
        "passed",
        "1",
        "promoted",
    )
    assert int(rows.replace(",", "")) > 0
    _assert_task_logs_readable(project, first.stderr)
    assert float(challenger) > 0
    assert champion == "-"
    assert "no champion yet" in reason
    store = f"sqlite:///{project.resolve()}/var/mlflow/mlflow.db"
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    assert str(client.get_model_version_by_alias("ride_duration.berlin", "champion").version) == "1"

    # Airflow validates the conf against the DAG's params: out of bounds is bad input, and nothing runs.
    bounded = airflow_ml("run", "ride_duration.berlin", "--conf", '{"num_leaves": 1}', cwd=project)
    assert bounded.returncode == 2, bounded.stderr[-3000:]
    assert "num_leaves" in bounded.stderr
    assert bounded.stdout == ""

    # A run whose data fails validation: exit 1, its row says why, and the champion stays.
    # The broken batch also renames distance_km, which the snapshot's dataset contract refuses before
    # validation runs; put the column back so that this run reaches validation and fails there.
    for path in write_demo_data(data_root, cities=["berlin"], batch="broken", scale=0.3):
        pd.read_parquet(path).rename(columns={"distance": "distance_km"}).to_parquet(path, index=False)
    broken_days = batch_days("broken")
    second = airflow_ml(
        "run",
        "ride_duration.berlin",
        "--window-start",
        broken_days[0].isoformat(),
        "--window-end",
        broken_days[-1].isoformat(),
        cwd=project,
        timeout=900,
    )
    assert second.returncode == 1, second.stderr[-4000:]
    failed = _row(second.stdout, "berlin")
    assert failed[1:3] == [f"{broken_days[0]}..{broken_days[-1]}", "failed"]
    assert failed[4].startswith("failed")
    assert failed[8] == "not reached"
    assert failed[9].startswith("validation failed: ")
    assert str(client.get_model_version_by_alias("ride_duration.berlin", "champion").version) == "1"

    # status: no Airflow, the latest run of each city from its files.
    status = shell(".venv/bin/airflow-ml status --template ride_duration", cwd=project)
    assert status.returncode == 0, status.stderr[-3000:]
    latest = _row(status.stdout, "berlin")
    assert latest[1:3] == [f"{broken_days[0]}..{broken_days[-1]}", "failed"]
    assert latest[9].startswith("validation failed: ")
    assert "no run yet" in next(line for line in status.stdout.splitlines() if line.startswith("lisbon "))

    # A run the dataset contract refuses at its first task: no snapshot, yet its row and status's say why.
    for path in (data_root / "raw" / "trips" / "berlin").glob("date=*/*.parquet"):
        pd.read_parquet(path).drop(columns=["temperature_c"]).to_parquet(path, index=False)
    window = ("--window-start", broken_days[0].isoformat(), "--window-end", broken_days[-1].isoformat())
    third = airflow_ml("run", "ride_duration.berlin", *window, cwd=project, timeout=900)
    assert third.returncode == 1, third.stderr[-4000:]
    refused = _row(third.stdout, "berlin")
    assert refused[1:9] == [f"{broken_days[0]}..{broken_days[-1]}", "failed", "-", "-", "-", "-", "-", "not reached"]
    assert refused[9].startswith("snapshot refused: the data does not match the dataset contract")
    assert "column 'temperature_c' is not in the data" in refused[9]
    status = airflow_ml("status", "--template", "ride_duration", cwd=project)
    assert _row(status.stdout, "berlin") == refused  # the latest run, though it left no manifest
    assert str(client.get_model_version_by_alias("ride_duration.berlin", "champion").version) == "1"

    # The registry's answers on the embedded default, as docs/guides/after-promotion.md and data.md show them.
    serving = shell('eval "$(.venv/bin/airflow-ml env)"\n.venv/bin/airflow-ml serving berlin', cwd=project)
    assert serving.returncode == 0, serving.stderr[-3000:]
    assert serving.stdout.splitlines() == [
        "berlin: ride_duration.berlin v1 (models:/ride_duration.berlin@champion)",
        "why: its own champion v1 serves it",
    ]
    as_json = shell('eval "$(.venv/bin/airflow-ml env)"\n.venv/bin/airflow-ml serving berlin --json', cwd=project)
    assert json.loads(as_json.stdout)["model_uri"] == "models:/ride_duration.berlin@champion"
    pruned = shell(
        'eval "$(.venv/bin/airflow-ml env)"\n'
        ".venv/bin/airflow-ml snapshots prune --dry-run\n"
        ".venv/bin/airflow-ml snapshots prune",
        cwd=project,
    )
    assert pruned.returncode == 0, pruned.stderr[-3000:]
    dry, real = pruned.stdout.split("(dry run: nothing deleted)")
    # Three folders of berlin, fewer than retention.keep_last (10): every one is kept, the champion's as registered.
    assert "3 snapshot(s): kept 3, would delete 0" in dry
    assert "registered: ride_duration.berlin v1 (challenger, champion)" in dry
    assert "3 snapshot(s): kept 3, deleted 0" in real
