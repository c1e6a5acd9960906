"""docs/architecture.md's XCom table matches ``airflow_ml/ml/steps/xcom_payloads.py``, and its tasks are the DAGs'.

Every ``TypedDict`` of the module has one row, whose fields are the payload's own, in order; the producing and
consuming tasks it names are tasks ``build_dag`` creates (or one of the readers outside the DAG it names).
"""

from __future__ import annotations

import re
import typing

from airflow_ml.ml.steps import xcom_payloads
from tests.support import REPO

DOC = REPO / "docs" / "architecture.md"
START, END = "<!-- xcom-payloads:", "<!-- end xcom-payloads -->"
#: Readers of a payload that are not tasks of the retraining DAG.
OUTSIDE_READERS = {"the fleet view", "`airflow-ml status` (from `health.json`)", "the Airflow UI"}


def _payloads() -> dict[str, list[str]]:
    return {
        name: list(value.__annotations__)
        for name, value in vars(xcom_payloads).items()
        if typing.is_typeddict(value) and value.__module__ == xcom_payloads.__name__
    }


def _rows() -> dict[str, list[list[str]]]:
    text = DOC.read_text(encoding="utf-8")
    table = text[text.index(START) : text.index(END)].splitlines()[3:]  # the marker, the header, the rule
    rows = {}
    for line in table:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        name = cells[0].strip("`")
        rows[name] = [[part.strip() for part in cell.split(", ")] for cell in cells[1:]]
    return rows


#: The factory modules whose DAGs' tasks produce or read payloads.
DAG_BUILDERS = ("builder.py", "score_dags.py", "monitor_dags.py")


def _task_ids() -> set[str]:
    # A task id is written `task_id="x"`, or as a constant `X_TASK_ID = "x"` when another task names it too.
    sources = [(REPO / "airflow_ml" / "factory" / name).read_text(encoding="utf-8") for name in DAG_BUILDERS]
    return {task for source in sources for task in re.findall(r'(?:task_id=|_TASK_ID = )"([a-z_]+)"', source)}


def test_every_payload_has_a_row_with_its_fields_in_order() -> None:
    payloads, rows = _payloads(), _rows()
    assert sorted(rows) == sorted(payloads), "one row per TypedDict of ml/steps/xcom_payloads.py, and no other"
    for name, fields in payloads.items():
        shown = [field.strip("`") for field in rows[name][0]]
        assert shown == fields, f"{name}: the table shows {shown}, the payload has {fields}"


def test_the_producers_and_consumers_are_the_dags_tasks() -> None:
    tasks = _task_ids()
    assert {"snapshot", "validate", "gate", "health_check"} <= tasks
    for name, (_fields, produced_by, consumed_by) in _rows().items():
        producer = produced_by[0].split()[0].strip("`")
        assert producer in tasks, f"{name} is produced by {producer!r}, which is no task of the factory's DAGs"
        for consumer in consumed_by:
            assert consumer.strip("`") in tasks or consumer in OUTSIDE_READERS, f"{name}: unknown reader {consumer!r}"
