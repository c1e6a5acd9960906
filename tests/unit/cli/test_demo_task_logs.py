"""The demo's task listener: a task's output goes to its try's log file, and the terminal gets its line."""

from __future__ import annotations

import io
import os
from pathlib import Path
from types import SimpleNamespace

from airflow_ml.cli.demo_task_logs import demo_task_logs, task_city, task_line


def test_a_task_writes_to_its_tries_file_and_the_output_around_it_to_the_demo_log(
    tmp_path: Path, airflow_db: Path
) -> None:
    from airflow.configuration import conf

    terminal, between = io.StringIO(), tmp_path / "demo.log"
    ti = SimpleNamespace(dag_id="ride_duration.berlin", run_id="manual__1", task_id="train", map_index=-1, try_number=2)

    with demo_task_logs(terminal=terminal, between=between) as listener:
        os.write(1, b"before the task\n")
        listener.on_task_instance_running(previous_state=None, task_instance=ti)
        os.write(1, b"the task's stdout\n")
        os.write(2, b"the task's stderr\n")  # C-level writes too (LightGBM prints so)
        listener.on_task_instance_success(previous_state=None, task_instance=ti)
        os.write(2, b"after the task\n")

    expected = Path(conf.get("logging", "base_log_folder")) / (
        "dag_id=ride_duration.berlin/run_id=manual__1/task_id=train/attempt=2.log"
    )
    assert listener.files == [expected]
    assert expected.read_text(encoding="utf-8") == "the task's stdout\nthe task's stderr\n"
    assert between.read_text(encoding="utf-8") == "before the task\nafter the task\n"
    assert terminal.getvalue().startswith("   berlin             train                 ")
    assert terminal.getvalue().endswith(" s  success\n")


def test_the_line_names_city_task_seconds_and_state_in_columns() -> None:
    scoring = SimpleNamespace(dag_id="ride_duration.sao_paulo.score", task_id="score", map_index=-1)
    # The monitor DAG's one task is mapped over the cities; each map index renders as its city.
    monitoring = SimpleNamespace(dag_id="ride_duration.monitor", map_index=1, rendered_map_index="lisbon")

    scored = task_line(task_city(scoring), "score", 12.345, "failed")
    monitored = task_line(task_city(monitoring), "monitor", 0.04, "skipped")

    assert scored.split() == ["sao_paulo.score", "score", "12.3", "s", "failed"]
    assert monitored.split() == ["lisbon", "monitor", "0.0", "s", "skipped"]
    assert scored[22:].startswith("score ")  # the task column lines up
    assert monitored[22:].startswith("monitor ")
    assert scored.index(" s  ") == monitored.index(" s  ")


def test_a_failed_task_shows_the_end_of_its_log_on_the_terminal(tmp_path: Path, airflow_db: Path) -> None:
    terminal, between = io.StringIO(), tmp_path / "run.log"
    ti = SimpleNamespace(dag_id="ride_duration.lisbon", run_id="manual__2", task_id="train", map_index=-1, try_number=1)
    done = SimpleNamespace(dag_id="ride_duration.lisbon", run_id="manual__2", task_id="snapshot", map_index=-1)

    with demo_task_logs(terminal=terminal, between=between) as listener:
        listener.on_task_instance_running(
            previous_state=None, task_instance=SimpleNamespace(**vars(done), try_number=1)
        )
        os.write(1, b"snapshot written\n")
        listener.on_task_instance_success(previous_state=None, task_instance=done)
        listener.on_task_instance_running(previous_state=None, task_instance=ti)
        os.write(2, b"".join(b"line %d\n" % n for n in range(40)) + b"ValueError: no rows in the window\n")
        ti.state = "failed"
        listener.on_task_instance_failed(previous_state=None, task_instance=ti, error=None)

    shown = terminal.getvalue().splitlines()
    assert shown[1].split()[-1] == "failed"
    assert shown[2].startswith("      the end of its log (")
    assert shown[2].endswith("attempt=1.log):")
    assert shown[-1] == "      | ValueError: no rows in the window"
    assert len(shown) == 3 + 25  # the success line shows no log; the failure its last 25 lines
    assert "snapshot written" not in terminal.getvalue()
