"""The end-to-end demo behind ``make demo``: every demo city retrained twice with real Airflow, then a summary.

Round one trains on the initial batch of demo data; round two on the initial plus a later batch. Each
round runs every city's real DAG with ``dag.test()`` (so the embedded metadata database, MLflow store
and data root are used exactly as a scheduler would use them), and the table is read back from what
the run left beside its snapshot: the manifest, the validation verdict and the gate's decision.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any

from airflow_ml import settings
from airflow_ml.data.snapshot import MANIFEST, snapshot_location
from airflow_ml.factory import register_dags
from airflow_ml.operators.gate import DECISION_FILE
from airflow_ml.operators.validate import VERDICT_FILE
from airflow_ml.validation.runner import headline

ROUNDS = ("initial", "later")


@dataclass(frozen=True)
class RunSummary:
    """One row of the demo's table."""

    city: str
    batch: str
    state: str
    rows: str
    validation: str
    challenger: str
    champion: str
    version: str
    decision: str
    reason: str


def run_demo(*, templates_root: Path, expectations_dir: Path, log_file: Path | None = None) -> int:
    """Generate demo data, run every city's DAG once per batch, print the summary; 0 when all ran.

    Airflow's and the tasks' logs go to ``log_file`` (default ``<data root>/../demo.log``) so that the
    terminal shows progress and the table.
    """
    from airflow_ml.data.demo import write_demo_data

    data_root = settings.data_root()
    log_path = log_file or Path(data_root).parent / "demo.log"
    out = sys.stdout
    dags = register_dags({}, templates_root=templates_root, expectations_dir=expectations_dir)
    if not dags:
        print(f"no valid city file under {templates_root}/cities; run `airflow-ml lint {templates_root}`", file=out)
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
    print(
        "\nLook at the results: `make ui` serves the MLflow UI on http://127.0.0.1:5000 and Airflow on "
        "http://127.0.0.1:8080 (user admin; password in var/airflow/simple_auth_manager_passwords.json.generated).",
        file=out,
    )
    return 0 if all(r.state == "success" for r in rows) else 1


def summarize(data_root: str, template: str, city: str, run_id: str, batch: str, state: str) -> RunSummary:
    """Read back what a run left beside its snapshot."""
    folder = Path(snapshot_location(f"{data_root}/snapshots", template, city, run_id))
    manifest = _read(folder / MANIFEST)
    verdict = _read(folder / VERDICT_FILE)
    decision = _read(folder / DECISION_FILE)
    failures = verdict.get("failures") or []
    validation = verdict.get("status", "-")
    if failures:
        validation += f" ({len(failures)} failed)"
    return RunSummary(
        city=city,
        batch=batch,
        state=state,
        rows=_rows(manifest),
        validation=validation,
        challenger=_score(decision.get("challenger_score")),
        champion=_score(decision.get("champion_score")),
        version=str(decision.get("challenger_version", "-")),
        decision=decision.get("decision", "not reached"),
        reason=decision.get("reason") or (headline(verdict) if failures else "") or "see the task logs",
    )


def format_table(rows: list[RunSummary]) -> str:
    """A fixed-width text table of the summaries."""
    header = ("city", "batch", "run", "rows", "validation", "challenger", "champion", "version", "decision", "reason")
    cells = [header, *(astuple(r) for r in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header) - 1)]
    lines = []
    for index, row in enumerate(cells):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])
        if index == 0:
            lines.append("  ".join("-" * width for width in widths) + "  " + "-" * 6)
    return "\n".join(lines)


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


def _read(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return data


def _rows(manifest: dict[str, Any]) -> str:
    """The snapshot's rows, with those its row filters dropped: ``9,362 (-120 filtered)``."""
    count = manifest.get("row_count")
    if not isinstance(count, int):
        return "-"
    dropped = sum(int(f.get("dropped", 0)) for f in manifest.get("filters") or [])
    return f"{count:,} (-{dropped:,} filtered)" if dropped else f"{count:,}"


def _score(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "-"
