"""The end-to-end demo behind ``make demo``: every demo city retrained twice with real Airflow, then a summary.

Round one trains on the initial batch of demo data; round two on the initial plus a later batch. Each
round runs every demo city's real DAG with ``dag.test()`` (so the demo's metadata database, MLflow store
and data root, in its own folder ``var/demo/``, are used exactly as a scheduler would use them), and the
table is read back from what the run left beside its snapshot (:mod:`airflow_ml.cli.run_summary`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from airflow_ml import settings
from airflow_ml.cli.run_summary import RunSummary, format_table, summarize
from airflow_ml.factory import register_dags

ROUNDS = ("initial", "later")

__all__ = ["ROUNDS", "RunSummary", "format_table", "run_demo", "summarize"]


def run_demo(*, templates_root: Path, expectations_dir: Path, log_file: Path | None = None) -> int:
    """Generate demo data, run every city's DAG once per batch, print the summary; 0 when all ran.

    Airflow's and the tasks' logs go to ``log_file`` (default ``<data root>/../demo.log``) so that the
    terminal shows progress and the table.
    """
    from airflow_ml.data.demo import DEMO_CITIES, write_demo_data

    data_root = settings.data_root()
    log_path = log_file or Path(data_root).parent / "demo.log"
    out = sys.stdout
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
            print(f"-- {dag_id}", end=" ", file=out, flush=True)
            with _output_to(log_path):
                run = dag.test()
            print(run.state, file=out, flush=True)
            template, city = dag_id.split(".", 1)
            rows.append(summarize(data_root, template, city, run.run_id, batch, str(run.state)))
    print("\n" + format_table(rows), file=out)
    print(f"\nTask logs: {log_path}", file=out)
    passwords = Path(os.environ.get("AIRFLOW_HOME", "~/airflow")) / "simple_auth_manager_passwords.json.generated"
    print(
        "\nLook at the results: `make ui` serves the MLflow UI on http://127.0.0.1:5000 and Airflow on "
        f"http://127.0.0.1:8080 (user admin; password in {_shown(passwords)}).",
        file=out,
    )
    return 0 if all(r.state == "success" for r in rows) else 1


@contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """Send everything written to stdout and stderr (Python and C level alike) to ``path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with path.open("a", encoding="utf-8") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _shown(path: Path) -> str:
    """``path`` relative to the working folder when below it (as a person would type it)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
