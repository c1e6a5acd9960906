"""A model version's description: the decision, its reason and the Airflow run that decided, as inert Markdown.

Also where a decision's records are logged on the version's training run (:data:`DECISION_ARTIFACT`,
:data:`SHADOW_ARTIFACT`), which the description names.
"""

from __future__ import annotations

from typing import Any

from airflow_ml.ml.markdown_cells import md_cell

#: Where the gate logs its decision record on the challenger's training run.
DECISION_ARTIFACT = "gate/decision.json"
#: Where a shadow promotion logs its record (the live comparison's figures) on the version's training run.
SHADOW_ARTIFACT = "gate/shadow_promotion.json"
#: A description is cut to this length (a rollback note is later written above it).
DESCRIPTION_LIMIT = 4000


def decision_description(record: dict[str, Any]) -> str:
    """The version's description (Markdown): the decision, its reason, and the Airflow run that decided.

    The run is ``airflow_dag_id`` and ``airflow_run_id`` of the record, with a link when the record holds
    ``airflow_run_url`` (the operator sets it when Airflow's ``[api] base_url`` is configured). The decision
    and the reason are inert text (:func:`~airflow_ml.ml.markdown_cells.md_cell`): a slice value or a typed
    reason adds no paragraph, link or image; the run and DAG ids stay code spans.
    """
    decision, reason = md_cell(record.get("decision", "decided")), md_cell(record.get("reason", ""), limit=None)
    lines = [f"**{decision}**: {reason}"]
    dag_id, run_id, url = record.get("airflow_dag_id"), record.get("airflow_run_id"), record.get("airflow_run_url")
    if run_id:
        run = f"run `{_code(run_id)}`" + (f" of DAG `{_code(dag_id)}`" if dag_id else "")
        lines.append(f"Decided by the Airflow {run}" + (f": [open in Airflow]({url})" if url else "") + ".")
    lines.append(f"The whole decision record is `{DECISION_ARTIFACT}` of this version's training run.")
    if record.get("shadow"):
        lines.append(f"The live comparison that promoted it is `{SHADOW_ARTIFACT}` of the same run.")
    text = "\n\n".join(lines)
    return text if len(text) <= DESCRIPTION_LIMIT else text[: DESCRIPTION_LIMIT - 1] + "…"


def _code(value: Any) -> str:
    """``value`` for a code span: one line, no backtick to close it."""
    return " ".join(str(value).split()).replace("`", "'")
