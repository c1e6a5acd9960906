"""What the tasks of a run hand each other through XCom: small typed payloads, never frames.

Pure Python (operators import it at parse time). The files a step writes beside the snapshot are named here
too: :mod:`airflow_ml.cli.run_summary` reads them by these names.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

#: Files a run writes beside its snapshot.
VERDICT_FILE = "validation.json"
RESULT_FILE = "validation_result.json"
REPORT_FILE = "validation_report.html"
DRIFT_FILE = "drift.json"
DECISION_FILE = "decision.json"
APPROVAL_FILE = "approval.json"
HEALTH_FILE = "health.json"

#: The XCom key of the drift task's short verdict, pushed even when the check fails.
DRIFT_VERDICT_KEY = "drift_verdict"


class SnapshotPayload(TypedDict):
    """The snapshot task's XCom: where the run's snapshot lies and what it holds."""

    uri: str
    row_count: int
    content_hash: str
    partitions: list[str]


class TrainingPayload(TypedDict):
    """The train task's XCom: the MLflow run, the model it logged and its metrics."""

    run_id: str
    experiment_id: str
    model_uri: str
    metrics: dict[str, float]
    warm_start: str | None
    #: The holdout's charts logged on the run (``holdout/charts/*.png``).
    charts: list[str]


class RegistrationPayload(TypedDict):
    """The register task's XCom: the new version of the city's registered model."""

    name: str
    version: str


class DriftVerdict(TypedDict):
    """The drift task's short verdict (XCom key :data:`DRIFT_VERDICT_KEY`), for the fleet view."""

    status: str
    detail: str | None
    champion_version: str | None
    #: The features flagged after the fleet's adjustment, each with its q-value (empty: none, or not calibrated).
    flagged: dict[str, float]


class DecisionRecord(TypedDict, total=False):
    """The gate task's XCom (and ``decision.json``): the decision, its evidence and what triggered the run.

    It holds :meth:`~airflow_ml.ml.gate.records.GateDecision.to_dict`'s keys and the ones below.
    """

    decision: str
    reason: str
    gate_reason: str
    mode: str
    trigger_reason: str
    metric: str
    model_name: str
    challenger_version: str
    baseline_version: str | None
    snapshot_hash: str
    snapshot_uri: str
    parent_baseline: dict[str, str] | None
    champion_deleted: str | None
    approved_by: NotRequired[str]
    #: The after-demotion rule that changed the outcome (``ml/demotion_guard.py``), or None.
    after_demotion: str | None
    #: The gate's charts: ``run_id`` (the challenger's run), ``experiment_id``, ``artifacts`` (paths); or None.
    charts: dict[str, Any] | None


class HealthRecord(TypedDict, total=False):
    """The health task's XCom (and ``health.json``): ``passed``, the problems found and the figures behind them."""

    passed: bool | None
    problems: list[str]
    champion_version: str
    airflow_run_id: str


class ResolvedModelPayload(TypedDict):
    """The resolve task's XCom of a scoring DAG: the one version the whole run scores with, or why it scores none.

    ``status`` is ``serve``, ``disabled`` (the kill switch), ``no_model`` (nothing serves the city yet) or
    ``refused`` (its champion was trained for another city; the resolve task fails with the reason);
    ``source`` is ``own`` or ``parent`` (:func:`airflow_ml.ml.fallback.which_model_serves`). The challenger is
    the one the run shadow-scores, when there is one that is not the serving version.
    """

    status: str
    reason: str
    model_name: str | None
    version: str | None
    source: str
    challenger_name: str | None
    challenger_version: str | None


class ScoringPayload(TypedDict):
    """The score task's XCom of a scoring DAG: the day scored, the version that scored it and where rows went."""

    status: str
    reason: str
    day: str
    model_name: str | None
    model_version: str | None
    source: str
    uri: str | None
    row_count: int
    input_hash: str | None
    shadow_uri: str | None
    shadow_version: str | None
    #: Why the challenger was not shadowed although there is one (its signature does not fit the rows).
    shadow_refused: str | None
    #: Integer columns widened to the ``double`` the model's signature reads (``ml/signature_check.py``).
    widened_columns: list[str]
    stored_rows: int | None


class MonitorPayload(TypedDict):
    """The monitor task's XCom, one per city: the supervisor's verdict, the figures and where the record is."""

    model_name: str
    city: str
    status: str
    reason: str
    champion_version: str | None
    holdout_score: float | None
    live_score: float | None
    labels: int
    demoted: bool
    restored_version: str | None
    shadow: str | None
    promoted_version: str | None
    #: ``disabled: <reason>`` when the kill switch disabled the city (the supervisor then only alerts), or None.
    disabled: str | None
    record_uri: str


def snapshot_uri(snapshot: Any) -> str:
    """The snapshot URI from a snapshot task's XCom (:class:`SnapshotPayload`) or a plain URI.

    Raises:
        ValueError: for anything else.
    """
    if isinstance(snapshot, dict):
        return str(snapshot["uri"])
    if isinstance(snapshot, str) and snapshot:
        return snapshot
    raise ValueError(f"snapshot must be the snapshot task's XCom or a URI, got {snapshot!r}")
