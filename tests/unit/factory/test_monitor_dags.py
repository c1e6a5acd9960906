"""The monitor DAG per template (factory/monitor_dags.py): one task mapped over the monitored cities, built at parse."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_ml.factory.failure_mail import NOTICE_SUBJECT, LiteralSmtpNotifier
from airflow_ml.factory.monitor_dags import monitor_dag_id, monitor_settings, register_monitor_dags
from airflow_ml.ml.steps.step_settings import MonitorSettings
from airflow_ml.operators.monitor_operator import MonitorOperator
from airflow_ml.templates import load_city_file
from tests.support import REPO
from tests.support.city_files import templates_folder, write_city
from tests.support.monitoring_worlds import MONITORING


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Three cities: two monitored (porto overrides the supervisor and mails), oslo without monitoring."""
    root = templates_folder(tmp_path)
    write_city(root, "lisbon", f"city: lisbon\ntemplate: ride_duration\n{MONITORING}")
    mail = "dag:\n  on_failure: [{kind: smtp, to: [ops@example.com]}]\n"
    write_city(root, "porto", f"city: porto\ntemplate: ride_duration\n{MONITORING}{mail}")
    write_city(root, "oslo", "city: oslo\ntemplate: ride_duration\n")
    return root


def _dags(root: Path) -> dict[str, Any]:
    return register_monitor_dags({}, templates_root=root)


def test_one_monitor_dag_per_template_with_one_task_mapped_over_its_monitored_cities(root: Path) -> None:
    dag = _dags(root)["ride_duration.monitor"]

    task = dag.get_task("monitor")
    assert task.operator_class is MonitorOperator
    assert task.expand_input.value == {"city": ["lisbon", "porto"]}
    assert sorted(task.partial_kwargs["settings"]) == ["lisbon", "porto"]
    assert dag.schedule == "@daily"
    assert task.partial_kwargs["map_index_template"] == "{{ task.city }}"
    assert [alias.name for alias in task.partial_kwargs["outlets"]] == ["airflow-ml.champion-changed"]


def test_the_monitor_dag_runs_on_the_template_s_monitoring_schedule(root: Path) -> None:
    template = root / "templates" / "ride_duration.yaml"
    scoring = "scoring:\n  source: '{data_root}/incoming/{city}'\n  key_columns: [trip_id]\n"
    monitoring = "monitoring:\n  schedule: '0 6 * * *'\n"
    template.write_text(template.read_text(encoding="utf-8") + scoring + monitoring, "utf-8")

    assert _dags(root)["ride_duration.monitor"].schedule == "0 6 * * *"


def test_the_repositorys_template_monitors_every_city_with_the_demos_supervisor() -> None:
    cities = sorted(path.stem for path in (REPO / "dag_templates" / "cities").glob("*.yaml"))

    dag = _dags(REPO / "dag_templates")["ride_duration.monitor"]

    task = dag.get_task("monitor")
    assert task.expand_input.value == {"city": cities}
    lisbon = MonitorSettings.from_dict(task.partial_kwargs["settings"]["lisbon"])
    # Daily windows; a city demoted after 2 windows in a row 20% worse than its holdout, each with 300+ labels:
    # what `make demo`'s drifting city shows within its 3 scored days (the docs' default mode stays alert).
    assert lisbon.labels_source == "{data_root}/raw/outcomes/{city}"
    assert (lisbon.window_days, lisbon.key_columns) == (1, ["trip_id"])
    supervisor = lisbon.supervisor
    assert (supervisor.mode, supervisor.tolerance, supervisor.consecutive_windows, supervisor.min_labels) == (
        "auto",
        0.2,
        2,
        300,
    )


def test_each_city_s_settings_come_from_its_own_merged_config(root: Path) -> None:
    config = load_city_file(root / "cities" / "lisbon.yaml", root / "templates")

    settings = monitor_settings(config)

    assert settings == MonitorSettings.from_dict(
        _dags(root)["ride_duration.monitor"].get_task("monitor").partial_kwargs["settings"]["lisbon"]
    )
    assert (settings.model_name, settings.metric, settings.target) == ("ride_duration.lisbon", "rmse", "duration_min")
    assert (settings.labels_source, settings.labels_format, settings.join) == (
        "{data_root}/labels/{city}",
        "parquet",
        "key",
    )
    assert (settings.predictions_root, list(settings.key_columns)) == ("{data_root}", ["trip_id"])
    assert (settings.windows, settings.resamples, settings.supervisor.mode) == (5, 200, "auto")
    assert settings.parent_model is None
    assert settings.shadow is not None
    assert (settings.shadow.min_labels, settings.shadow.min_days, settings.shadow.resamples) == (1000, 7, 200)
    assert (settings.predictions_conn_id, settings.labels_conn_id) == ("aws_default", "aws_default")


def test_a_city_s_failure_recipients_also_hear_of_its_demotions(root: Path) -> None:
    notifiers = _dags(root)["ride_duration.monitor"].get_task("monitor").partial_kwargs["notifiers"]

    assert sorted(notifiers) == ["porto"]
    (mail,) = notifiers["porto"]
    assert isinstance(mail, LiteralSmtpNotifier)
    assert (mail.subject, mail.to) == (NOTICE_SUBJECT, ["ops@example.com"])
    # lisbon names no recipients: porto's must not hear of lisbon's failures.
    assert "on_failure_callback" not in _dags(root)["ride_duration.monitor"].default_args


def test_a_city_with_scoring_off_is_left_out_and_a_template_without_monitored_cities_has_no_dag(root: Path) -> None:
    scoring_off = MONITORING.replace("scoring:\n", "scoring:\n  enabled: false\n")
    write_city(root, "porto", f"city: porto\ntemplate: ride_duration\n{scoring_off}")
    write_city(root, "lisbon", "city: lisbon\ntemplate: ride_duration\n")

    assert _dags(root) == {}


def test_a_task_process_of_another_dag_builds_no_monitor_dag(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "ride_duration.lisbon")
    assert _dags(root) == {}

    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", monitor_dag_id("ride_duration"))
    assert list(_dags(root)) == ["ride_duration.monitor"]


def test_recipients_every_city_shares_hear_of_any_failed_task(root: Path) -> None:
    mail = "dag:\n  on_failure: [{kind: smtp, to: [ops@example.com]}]\n"
    write_city(root, "lisbon", f"city: lisbon\ntemplate: ride_duration\n{MONITORING}{mail}")

    (callback,) = _dags(root)["ride_duration.monitor"].default_args["on_failure_callback"]

    assert isinstance(callback, LiteralSmtpNotifier)
    assert callback.to == ["ops@example.com"]


def test_building_a_monitor_dag_imports_nothing_heavy(root: Path) -> None:
    # A fresh interpreter, as the DAG processor has: what building imports shows in sys.modules.
    script = (
        "import sys\n"
        "from airflow_ml.factory.monitor_dags import register_monitor_dags\n"
        f"assert list(register_monitor_dags({{}}, templates_root={str(root)!r})) == ['ride_duration.monitor']\n"
        "print(sorted(m for m in ('pandas', 'numpy', 'mlflow', 'lightgbm', 'pyarrow') if m in sys.modules))\n"
    )

    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False)

    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
