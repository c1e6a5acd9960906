"""Validate a snapshot with its Great Expectations suite; stop the run with a readable summary on failure."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import Context
from airflow.sdk.exceptions import AirflowFailException

from airflow_ml.hooks.storage_credentials import storage_options
from airflow_ml.links.mlflow_links import ValidationReportLink, artifact_url
from airflow_ml.ml.steps.xcom_payloads import REPORT_FILE, snapshot_uri
from airflow_ml.operators.base_operator import SnapshotStepOperator, airflow_lineage
from airflow_ml.operators.dask_engine import engine_client

if TYPE_CHECKING:
    from airflow_ml.ml.steps.step_settings import ValidationSettings


class ValidateDataOperator(SnapshotStepOperator):
    """Run the city's suite on the snapshot.

    The suite is ``<expectations_dir>/<suite>.yaml`` or ``.json``, with the city's sibling file
    ``<suite>.<city>.yaml`` and the city file's ``expectations`` applied (see ``airflow_ml.templates.suite_files``),
    then the checks of the YAML's ``gx_context`` (a checkpoint or suite of a file-based GX context, read as
    data: its actions never run; see ``airflow_ml.templates.gx_context_files``).
    A failed ``error`` expectation fails the task without retries (the data will not fix itself); ``warn``
    expectations are recorded and the run goes on. The verdict, GX's full result and an HTML report are
    written beside the snapshot and, when ``experiment`` is set, logged as a validation run in MLflow,
    with a "Validation report" link on the task (see :mod:`airflow_ml.ml.steps.validate_step`). With
    ``engine: dask`` (``training.engine``) the suite runs on groups of parts on the city's Dask cluster, whose client
    is made here, at execute, and the results are merged into one verdict (:mod:`airflow_ml.validation.partitioned`).

    Args:
        snapshot: The snapshot task's XCom (a dict with ``uri``) or a snapshot URI; templated.
        settings: :meth:`ValidationSettings.to_dict <airflow_ml.ml.steps.step_settings.ValidationSettings.to_dict>`:
            the suite's name and folder, the city, its own expectations, the columns the template knows (a
            suite naming another fails before GX runs) and the experiment (None records nothing in MLflow).
        aws_conn_id: Airflow connection (type ``aws``) for a snapshot on ``s3://``.

    Returns (XCom): the verdict: ``status`` (passed, warned, failed), counts and failed expectations.
    """

    operator_extra_links = (ValidationReportLink(),)
    ui_color = "#fdf3e1"

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_ml.exceptions import ConfigError
        from airflow_ml.ml.steps.step_settings import ValidationSettings
        from airflow_ml.ml.steps.validate_step import VALIDATION_ARTIFACTS, SuiteInvalid, validate
        from airflow_ml.validation.partitioned import PartitionedSuiteRefused
        from airflow_ml.validation.runner import headline

        settings = ValidationSettings.from_dict(self.settings)
        uri = snapshot_uri(self.snapshot)
        try:
            suite, suite_path, notes = _checks(settings)
        except ConfigError as exc:
            # A missing suite, context or checkpoint is a configuration error: retrying cannot help.
            raise AirflowFailException(str(exc)) from None
        for note in notes:
            self.log.info("%s", note)
        # Without an experiment nothing goes to MLflow: the connection is not even looked up.
        client, root = (self.hook.get_conn(), self.hook.artifact_root) if settings.experiment else (None, None)
        try:
            with engine_client(settings.engine, settings.dask, what="validating the snapshot") as cluster:
                found = validate(
                    uri,
                    settings,
                    suite=suite,
                    suite_path=suite_path,
                    client=client,
                    artifact_root=root,
                    tags=airflow_lineage(context),
                    storage_options=storage_options(uri, aws_conn_id=self.aws_conn_id),
                    notes=notes,
                    engine=settings.engine,
                    dask_client=cluster,
                )
        except (SuiteInvalid, PartitionedSuiteRefused) as exc:
            # A broken suite (or one Dask cannot merge) is a configuration error: retrying cannot help, and no
            # data was judged.
            raise AirflowFailException(str(exc)) from None
        if found.run is not None:
            path = f"{VALIDATION_ARTIFACTS}/{REPORT_FILE}"
            url = artifact_url(self.hook.tracking_uri, found.run["experiment_id"], found.run["run_id"], path)
            ValidationReportLink.persist(context, url)
        self.log.info("%s", found.verdict.summary())
        if not found.verdict.ok:
            # The first line is the run's reason in one line; the summary below it says what to fix.
            raise AirflowFailException(f"{headline(found.record)}\n{found.verdict.summary()}")
        return found.record


def _checks(settings: ValidationSettings) -> tuple[dict[str, Any], str, list[str]]:
    """The run's suite (the project's suite files, then the GX context's checks), where it is defined, notes."""
    from airflow_ml.templates.gx_context_files import load_gx_checks, with_gx_checks
    from airflow_ml.templates.suite_files import load_suite, suite_file

    project, where = None, []
    if settings.suite is not None:
        expectations = [dict(e) for e in settings.expectations]
        project = load_suite(settings.expectations_dir, settings.suite, city=settings.city, overrides=expectations)
        where.append(str(suite_file(settings.expectations_dir, settings.suite)))
    checks = None
    if settings.gx_context is not None:
        spec = settings.gx_context
        checks = load_gx_checks(spec.project_root, spec.path, checkpoint=spec.checkpoint, suite=spec.suite)
        where.append(checks.where)
    return with_gx_checks(project, checks), ", ".join(where), list(checks.notes if checks else [])
