"""Validate a snapshot with its Great Expectations suite; stop the run with a readable summary on failure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import Context
from airflow.sdk.exceptions import AirflowFailException

from airflow_ml.hooks.storage_credentials import DEFAULT_AWS_CONN_ID, storage_options
from airflow_ml.links.mlflow_links import ValidationReportLink, artifact_url
from airflow_ml.operators.base import MlflowBaseOperator, airflow_lineage

VERDICT_FILE = "validation.json"
RESULT_FILE = "validation_result.json"
REPORT_FILE = "validation_report.html"


class ValidateDataOperator(MlflowBaseOperator):
    """Run the city's suite on the snapshot.

    The suite is ``<expectations_dir>/<suite>.yaml`` or ``.json``, with the city's sibling file
    ``<suite>.<city>.yaml`` and the city file's ``expectations`` applied (see ``airflow_ml.templates.suite_files``).
    A failed ``error`` expectation fails the task without retries (the data will not fix itself); ``warn``
    expectations are recorded and the run goes on. The verdict, GX's full result and an HTML report are
    written beside the snapshot and, when ``experiment`` is set, logged as a validation run in MLflow,
    with a "Validation report" link on the task.

    Args:
        snapshot: The snapshot task's XCom (a dict with ``uri``) or a snapshot URI; templated.
        suite: Name of the suite.
        expectations_dir: Folder of the suites.
        city: The city, whose sibling suite file applies.
        expectations: The city's own added or overriding expectations (YAML form).
        known_columns: The columns the template knows; a suite naming another fails before GX runs.
        experiment: The city's MLflow experiment; None records nothing in MLflow.
        aws_conn_id: Airflow connection (type ``aws``) for a snapshot on ``s3://``.

    Returns (XCom): the verdict: ``status`` (passed, warned, failed), counts and failed expectations.
    """

    # Only the XCom: the suite's name comes from YAML and is never rendered by Jinja.
    template_fields: Sequence[str] = ("snapshot",)
    operator_extra_links = (ValidationReportLink(),)
    ui_color = "#fdf3e1"

    def __init__(
        self,
        *,
        snapshot: Any,
        suite: str,
        expectations_dir: str,
        city: str | None = None,
        expectations: Sequence[dict[str, Any]] = (),
        known_columns: Sequence[str] | None = None,
        experiment: str | None = None,
        aws_conn_id: str | None = DEFAULT_AWS_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.snapshot = snapshot
        self.suite = suite
        self.expectations_dir = expectations_dir
        self.city = city
        self.expectations = list(expectations)
        self.known_columns = None if known_columns is None else list(known_columns)
        self.experiment = experiment
        self.aws_conn_id = aws_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        import json

        from airflow_ml.data.snapshot import load_manifest, read_snapshot, write_json, write_text
        from airflow_ml.templates.suite_files import load_suite, suite_file
        from airflow_ml.validation.report import render_report
        from airflow_ml.validation.runner import headline, run_suite
        from airflow_ml.validation.suite_check import check_suite

        uri = snapshot_uri(self.snapshot)
        options = storage_options(uri, aws_conn_id=self.aws_conn_id)
        suite = load_suite(self.expectations_dir, self.suite, city=self.city, overrides=self.expectations)
        problems = check_suite(suite, known_columns=self.known_columns)
        if problems:
            # A broken suite is a configuration error: retrying cannot help, and no data was judged.
            raise AirflowFailException(
                f"suite {self.suite!r} is invalid; fix it (airflow-ml lint shows the same):\n  - "
                + "\n  - ".join(problems)
            )
        verdict, result = run_suite(
            read_snapshot(uri, storage_options=options),
            suite,
            suite_file=str(suite_file(self.expectations_dir, self.suite)),
        )
        record = verdict.to_dict()
        report = render_report(record, result, title=f"Validation of {self.city or uri}")
        if self.experiment:
            from airflow_ml.ml.pipeline import VALIDATION_ARTIFACTS, log_validation

            files = {VERDICT_FILE: json.dumps(record, indent=1, default=str), REPORT_FILE: report}
            files[RESULT_FILE] = json.dumps(result, indent=1, default=str)
            run = log_validation(
                self.hook.get_conn(),
                load_manifest(uri, storage_options=options),
                experiment=self.experiment,
                verdict=record,
                files=files,
                artifact_root=self.hook.artifact_root,
                tags=airflow_lineage(context),
            )
            record["mlflow_run_id"] = run["run_id"]
            url = artifact_url(
                self.hook.tracking_uri, run["experiment_id"], run["run_id"], f"{VALIDATION_ARTIFACTS}/{REPORT_FILE}"
            )
            ValidationReportLink.persist(context, url)
        # Beside the snapshot last, so that the verdict there names its MLflow run.
        write_json(uri, VERDICT_FILE, record, storage_options=options)
        write_json(uri, RESULT_FILE, result, storage_options=options)
        write_text(uri, REPORT_FILE, report, storage_options=options)
        self.log.info("%s", verdict.summary())
        if not verdict.ok:
            # The first line is the run's reason in one line; the summary below it says what to fix.
            raise AirflowFailException(f"{headline(record)}\n{verdict.summary()}")
        return record


def snapshot_uri(snapshot: Any) -> str:
    """The snapshot URI from a snapshot task's XCom (dict) or a plain URI."""
    if isinstance(snapshot, dict):
        return str(snapshot["uri"])
    if isinstance(snapshot, str) and snapshot:
        return snapshot
    raise ValueError(f"snapshot must be the snapshot task's XCom or a URI, got {snapshot!r}")
