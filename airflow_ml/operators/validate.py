"""Validate a snapshot with its Great Expectations suite; stop the run with a readable summary on failure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowFailException

VERDICT_FILE = "validation.json"


class ValidateDataOperator(BaseOperator):
    """Run suite ``suite`` from ``expectations_dir`` on the snapshot.

    A failed ``error`` expectation fails the task without retries (the data will not fix itself);
    ``warn`` expectations are recorded and the run goes on. The verdict is written beside the snapshot.

    Args:
        snapshot: The snapshot task's XCom (a dict with ``uri``) or a snapshot URI; templated.
        suite: Name of the suite, the file ``<expectations_dir>/<suite>.json``.
        expectations_dir: Folder of the suites.

    Returns (XCom): the verdict: ``status``, counts and failed expectations.
    """

    template_fields: Sequence[str] = ("snapshot", "suite")
    ui_color = "#fdf3e1"

    def __init__(self, *, snapshot: Any, suite: str, expectations_dir: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.snapshot = snapshot
        self.suite = suite
        self.expectations_dir = expectations_dir

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_ml.data.snapshot import read_snapshot, write_json
        from airflow_ml.validation.runner import validate_frame
        from airflow_ml.validation.suites import load_suite, suite_path

        uri = snapshot_uri(self.snapshot)
        suite = load_suite(self.expectations_dir, self.suite)
        verdict = validate_frame(
            read_snapshot(uri), suite, suite_file=str(suite_path(self.expectations_dir, self.suite))
        )
        write_json(uri, VERDICT_FILE, verdict.to_dict())
        self.log.info("%s", verdict.summary())
        if not verdict.ok:
            raise AirflowFailException(verdict.summary())
        return verdict.to_dict()


def snapshot_uri(snapshot: Any) -> str:
    """The snapshot URI from a snapshot task's XCom (dict) or a plain URI."""
    if isinstance(snapshot, dict):
        return str(snapshot["uri"])
    if isinstance(snapshot, str) and snapshot:
        return snapshot
    raise ValueError(f"snapshot must be the snapshot task's XCom or a URI, got {snapshot!r}")
