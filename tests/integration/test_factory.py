"""The factory in Airflow: schedules (cron, Assets), timeouts, notifiers, and isolation of a broken city."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from airflow_ml.exceptions import ConfigError
from airflow_ml.templates import load_city_configs
from tests.support import REPO

pytestmark = pytest.mark.integration


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "templates").mkdir()
    (tmp_path / "cities").mkdir()
    shutil.copy(REPO / "dag_templates" / "templates" / "ride_duration.yaml", tmp_path / "templates")
    return tmp_path


def _city(root: Path, name: str, extra: str = ""):
    (root / "cities" / f"{name}.yaml").write_text(f"city: {name}\ntemplate: ride_duration\n{extra}", encoding="utf-8")
    configs, errors = load_city_configs(root)
    assert errors == []
    return next(c for c in configs if c.city == name)


def _build(config):
    from airflow_ml.factory import build_dag

    return build_dag(config, expectations_dir=REPO / "expectations")


def test_cron_schedule_timeouts_and_failure_notifier_come_from_config(root: Path) -> None:
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    extra = (
        'dag:\n  schedule: "15 3 * * 1-5"\n  task_timeout_minutes: 30\n  run_timeout_minutes: 120\n'
        "  on_failure:\n    - kind: smtp\n      to: [ml-oncall@example.com]\n"
    )
    dag = _build(_city(root, "porto", extra))

    assert dag.timetable.expression == "15 3 * * 1-5"
    assert dag.dagrun_timeout.total_seconds() == 7200
    task = dag.get_task("train")
    assert task.execution_timeout.total_seconds() == 1800
    notifiers = task.on_failure_callback
    assert len(notifiers) == 1
    assert isinstance(notifiers[0], SmtpNotifier)
    assert notifiers[0].to == ["ml-oncall@example.com"]


def test_a_city_can_run_when_its_data_asset_is_updated(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk import Asset

    monkeypatch.setenv("AIRFLOW_ML_DATA_ROOT", "s3://lake/ml")
    dag = _build(_city(root, "porto", "dag:\n  schedule: null\n  on_new_data: true\n"))

    assets = list(dag.timetable.asset_condition.objects)
    assert assets == [Asset(uri="s3://lake/ml/raw/trips/porto", name="ride_duration.porto.data", group="airflow-ml")]


def test_cron_or_new_data(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_ML_DATA_ROOT", "/srv/data")
    dag = _build(_city(root, "porto", 'dag:\n  schedule: "0 4 * * *"\n  on_new_data: true\n'))

    assert dag.timetable.timetable.expression == "0 4 * * *"
    assert [a.uri for a in dag.timetable.asset_condition.objects] == ["file:///srv/data/raw/trips/porto"]


def test_data_aware_schedule_needs_a_data_root_and_a_cron(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_ML_DATA_ROOT", raising=False)
    with pytest.raises(ConfigError, match="AIRFLOW_ML_DATA_ROOT"):
        _build(_city(root, "porto", "dag:\n  schedule: null\n  on_new_data: true\n"))
    monkeypatch.setenv("AIRFLOW_ML_DATA_ROOT", "/srv/data")
    with pytest.raises(ConfigError, match="needs a cron expression"):
        _build(_city(root, "lisbon", "dag:\n  schedule: '@daily'\n  on_new_data: true\n"))


def _fleet_with_one_broken_city(root: Path, tmp_path: Path) -> Path:
    """Three cities, porto broken, and a copy of the shipped dags/ loaders pointed at them.

    The repo's template scores and monitors: berlin and lisbon each get a scoring DAG, the template its monitor.
    """
    for name in ("berlin", "lisbon"):
        (root / "cities" / f"{name}.yaml").write_text(f"city: {name}\ntemplate: ride_duration\n", encoding="utf-8")
    (root / "cities" / "porto.yaml").write_text(
        "city: porto\ntemplate: ride_duration\ntraining:\n  params:\n    learnin_rate: 0.1\n", encoding="utf-8"
    )
    dags = tmp_path / "dags"
    dags.mkdir()
    for source in sorted((REPO / "dags").glob("*.py")):
        text = source.read_text().replace('Path(__file__).resolve().parent.parent / "dag_templates"', repr(str(root)))
        (dags / source.name).write_text(text.replace('_REPO / "dag_templates"', repr(str(root))), encoding="utf-8")
    return dags


def test_a_broken_city_hides_no_other_city_and_is_listed_as_an_import_error(root: Path, tmp_path: Path) -> None:
    dags = _fleet_with_one_broken_city(root, tmp_path)
    script = textwrap.dedent(
        f"""
        import json
        from airflow.dag_processing.dagbag import DagBag
        bag = DagBag(dag_folder={str(dags)!r})
        print(json.dumps({{"dags": sorted(bag.dags), "errors": {{k: str(v) for k, v in bag.import_errors.items()}}}}))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True)
    parsed = json.loads(result.stdout.strip().splitlines()[-1])

    assert parsed["dags"] == [
        "airflow_ml.rollback",
        "airflow_ml.snapshot_retention",
        "ride_duration.berlin",
        "ride_duration.berlin.score",
        "ride_duration.drift_review",
        "ride_duration.lisbon",
        "ride_duration.lisbon.score",
        "ride_duration.monitor",
    ]
    assert list(parsed["errors"]) == [str(dags / "retrain_errors.py")]
    message = parsed["errors"][str(dags / "retrain_errors.py")]
    assert "porto.yaml" in message
    assert "did you mean 'learning_rate'?" in message


def test_a_list_of_crons_runs_at_each(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk import MultipleCronTriggerTimetable

    dag = _build(_city(root, "porto", 'dag:\n  schedule: ["0 2 * * 1-5", "0 6 * * 6,0"]\n'))
    assert isinstance(dag.timetable, MultipleCronTriggerTimetable)
    assert [t.expression for t in dag.timetable.timetables] == ["0 2 * * 1-5", "0 6 * * 6,0"]

    monkeypatch.setenv("AIRFLOW_ML_DATA_ROOT", "/srv/data")
    both = _build(_city(root, "lisbon", 'dag:\n  schedule: ["0 2 * * *"]\n  on_new_data: true\n'))
    assert isinstance(both.timetable.timetable, MultipleCronTriggerTimetable)


def test_airflow_dags_list_import_errors_shows_the_lint_message(root: Path, tmp_path: Path) -> None:
    # The real CLI on a metadata database of its own: reserialize parses the dags folder as the DAG
    # processor does and stores DAGs and import errors; list-import-errors reads them back.
    dags = _fleet_with_one_broken_city(root, tmp_path)
    home = tmp_path / "airflow_home"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
    }
    home.mkdir()
    airflow = [sys.executable, "-m", "airflow"]
    for command in (["db", "migrate"], ["dags", "reserialize"]):
        done = subprocess.run([*airflow, *command], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]

    listed = subprocess.run(
        [*airflow, "dags", "list-import-errors", "--output", "json"], env=env, capture_output=True, text=True
    )
    dag_list = subprocess.run([*airflow, "dags", "list", "--output", "json"], env=env, capture_output=True, text=True)

    errors = _json_list(listed.stdout)
    assert [Path(e["filepath"]).name for e in errors] == ["retrain_errors.py"]
    assert "porto.yaml" in errors[0]["error"]
    assert "did you mean 'learning_rate'?" in errors[0]["error"]
    listed_dags = _json_list(dag_list.stdout)
    dag_ids = sorted(d["dag_id"] for d in listed_dags)
    assert dag_ids == [
        "airflow_ml.rollback",
        "airflow_ml.snapshot_retention",
        "ride_duration.berlin",
        "ride_duration.berlin.score",
        "ride_duration.drift_review",
        "ride_duration.lisbon",
        "ride_duration.lisbon.score",
        "ride_duration.monitor",
    ]


def _json_list(output: str) -> list[dict]:
    # The CLI may log warnings before its JSON line.
    return json.loads(next(line for line in reversed(output.splitlines()) if line.startswith("[")))
