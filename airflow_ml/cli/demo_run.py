"""The end-to-end demo behind ``make demo``: every demo city retrained twice, its champion scoring, the monitor.

Round one trains on the initial batch of demo data; round two on the initial plus a later batch. Each
round runs every demo city's real DAG with ``dag.test()`` (so the demo's metadata database, MLflow store
and data root, in its own folder ``var/demo/``, are used exactly as a scheduler would use them), and the
table is read back from what the run left beside its snapshot (:mod:`airflow_ml.cli.run_summary`). Each
task logs to its own file, where the Airflow UI reads it, and the terminal gets a line as each task ends
(:mod:`airflow_ml.cli.demo_task_logs`).

Then the loop: each city's scoring DAG ``<template>.<city>.score`` scores three days of new trips with its
champion into the prediction log, the trips' outcomes arrive (one city's trips take 40% longer from the second
day on, :mod:`airflow_ml.data.demo_scoring`), and one run of the monitor DAG ``<template>.monitor`` compares
each champion's live error with its holdout error: the supervisor demotes the drifting city's champion and
keeps the others. A second table shows each city's newest window and the supervisor's decision.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path
from typing import Any, TextIO

from airflow_ml import settings
from airflow_ml.cli.run_summary import (
    LiveSummary,
    RunSummary,
    format_live_table,
    format_table,
    summarize,
    summarize_live,
)
from airflow_ml.factory import register_dags, register_score_dags
from airflow_ml.factory.monitor_dags import register_monitor_dags

ROUNDS = ("initial", "later")

__all__ = ["ROUNDS", "RunSummary", "format_table", "run_demo", "summarize"]


def run_demo(
    *, templates_root: Path, expectations_dir: Path, log_file: Path | None = None, out: TextIO | None = None
) -> int:
    """Generate demo data, run every city's DAG once per batch, then score and monitor; print the summary.

    Returns 0 when every run succeeded. Each task's log goes to its own file under Airflow's
    ``base_log_folder`` (the UI shows it), ``dag.test()``'s own lines to ``log_file`` (default
    ``<data root>/../demo.log``), so that ``out`` (default: standard output) shows a line per finished task,
    one per run and the tables.
    """
    from airflow_ml.cli.demo_task_logs import terminal_stream
    from airflow_ml.data.demo import DEMO_CITIES, write_demo_data

    data_root = settings.data_root()
    log_path = log_file or Path(data_root).parent / "demo.log"
    out = out or terminal_stream()
    every = register_dags({}, templates_root=templates_root, expectations_dir=expectations_dir)
    # A user's own cities have no demo data: they run with `airflow-ml run`, not here.
    dags = {dag_id: dag for dag_id, dag in every.items() if dag_id.split(".", 1)[1] in DEMO_CITIES}
    if len(dags) < len(every):
        print(f"not in the demo (no demo data): {', '.join(sorted(set(every) - set(dags)))}", file=out)
    if not dags:
        print(f"no demo city file under {templates_root}/cities; run `airflow-ml lint {templates_root}`", file=out)
        return 1
    rows: list[RunSummary] = []
    for batch in ROUNDS:
        files = write_demo_data(data_root, batch=batch)
        print(f"\n== batch {batch!r}: {len(files)} new partition file(s); retraining {len(dags)} cities ==", file=out)
        for dag_id, dag in dags.items():
            run = _run(dag, dag_id, log=log_path, out=out)
            template, city = dag_id.split(".", 1)
            rows.append(summarize(data_root, template, city, run.run_id, batch, str(run.state)))
    cities = sorted({_city(dag_id) for dag_id in dags})
    live, scored = _score_and_monitor(data_root, templates_root, cities=cities, log=log_path, out=out)
    print("\n" + format_table(rows), file=out)
    if live:
        print("\nLive, after scoring and one monitor run (the newest daily window of each champion):", file=out)
        print(format_live_table(live), file=out)
    from airflow.configuration import conf

    task_logs = _shown(Path(conf.get("logging", "base_log_folder")))
    print(f"\nTask logs: in the Airflow UI, files under {task_logs}/; the runs' lines: {_shown(log_path)}", file=out)
    passwords = Path(os.environ.get("AIRFLOW_HOME", "~/airflow")) / "simple_auth_manager_passwords.json.generated"
    print(
        "\nLook at the results: `make ui` serves the MLflow UI on http://127.0.0.1:5000 and Airflow on "
        f"http://127.0.0.1:8080 (user admin; password in {_shown(passwords)}).",
        file=out,
    )
    states = [r.state for r in rows] + [r.state for r in live] + scored
    return 0 if all(state == "success" for state in states) else 1


def _score_and_monitor(
    data_root: str, templates_root: Path, *, cities: list[str], log: Path, out: TextIO
) -> tuple[list[LiveSummary], list[str]]:
    """Score the scored days with each city's champion, let the outcomes arrive, run the monitor once.

    The scoring DAGs run once per city and day (``dag.test()`` with the day as logical date); the monitor DAG once,
    on the last day. One line per run, as the retraining rounds print. Returns the live rows of the template's
    cities and the scoring runs' states; nothing when the templates score or monitor nothing.
    """
    from airflow_ml.data.demo_scoring import (
        DRIFTING_CITY,
        drift_start,
        scored_days,
        write_outcomes,
        write_scoring_batch,
    )

    days = scored_days()
    scoring = {
        d: dag for d, dag in register_score_dags({}, templates_root=templates_root).items() if _city(d) in cities
    }
    monitors = register_monitor_dags({}, templates_root=templates_root)
    if not scoring or not monitors:  # a template without scoring: or monitoring: has no loop to show
        return [], []
    write_scoring_batch(data_root, cities=cities)
    print(f"\n== scoring {days[0]}..{days[-1]}: {len(scoring)} champions, one run per day ==", file=out)
    scored: list[str] = []
    for day in days:
        for dag_id in scoring:
            dag = register_score_dags({}, templates_root=templates_root)[dag_id]  # dag.test leaves its run's conf
            run = _run(dag, f"{dag_id} {day}", log=log, out=out, run_after=_midnight(day), logical_date=_midnight(day))
            scored.append(str(run.state))
    write_outcomes(data_root, cities=cities)
    drifting = f"; {DRIFTING_CITY}'s trips take 40% longer from {drift_start()}" if DRIFTING_CITY in cities else ""
    print(f"\n== the outcomes of those trips arrive{drifting}: monitoring ==", file=out)
    live: list[LiveSummary] = []
    for dag_id, dag in monitors.items():
        last = _midnight(days[-1])
        run = _run(dag, f"{dag_id} {days[-1]}", log=log, out=out, run_after=last, logical_date=last)
        template = dag_id.rsplit(".", 1)[0]
        for city in cities:
            live.append(summarize_live(data_root, template, city, days[-1].isoformat(), str(run.state)))
    return live, scored


def _city(dag_id: str) -> str:
    """The city of ``<template>.<city>`` or ``<template>.<city>.score``."""
    return dag_id.split(".")[1]


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), dt.UTC)


def _run(dag: Any, name: str, *, log: Path, out: TextIO, **when: Any) -> Any:
    """``dag.test(**when)`` with each task logged to its own file and a terminal line per finished task.

    The run ends with the line ``-- <name> <state> (<seconds> s)``.
    """
    from airflow_ml.cli.demo_task_logs import dag_test_with_task_logs

    began = time.monotonic()
    run = dag_test_with_task_logs(dag, terminal=out, between=log, **when)
    print(f"-- {name} {run.state} ({time.monotonic() - began:.0f} s)", file=out, flush=True)
    return run


def _shown(path: Path) -> str:
    """``path`` relative to the working folder when below it (as a person would type it)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
