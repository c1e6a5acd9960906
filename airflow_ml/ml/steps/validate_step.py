"""The validate step: run the city's suite on the snapshot, write the verdict and report, record them in MLflow."""

from __future__ import annotations

import dataclasses
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mlflow import MlflowClient
from mlflow.entities import Param

from airflow_ml.data.dask_snapshot import open_snapshot
from airflow_ml.data.snapshot import (
    Manifest,
    load_manifest,
    read_snapshot,
    read_snapshot_schema,
    write_json,
    write_text,
)
from airflow_ml.data.storage import StorageOptions
from airflow_ml.ml import model_registry as registry
from airflow_ml.ml.snapshot_dataset import log_snapshot_input
from airflow_ml.ml.steps.step_settings import ValidationSettings
from airflow_ml.ml.steps.xcom_payloads import REPORT_FILE, RESULT_FILE, VERDICT_FILE
from airflow_ml.validation.partitioned import DEFAULT_SAMPLE_ROWS, validate_partitions, warm_workers
from airflow_ml.validation.report import render_report
from airflow_ml.validation.runner import Verdict, plan_columns, run_suite
from airflow_ml.validation.suite_check import check_suite

#: The artifact folder of a validation run.
VALIDATION_ARTIFACTS = "validation"


class SuiteInvalid(ValueError):
    """The suite itself is broken (unknown expectations, columns the template does not know): no data was judged."""


@dataclass(frozen=True)
class Validation:
    """What the validate step found: the verdict, its record and the MLflow run it was logged as (if any)."""

    verdict: Verdict
    record: dict[str, Any]
    run: dict[str, str] | None = None


def validate(
    uri: str,
    settings: ValidationSettings,
    *,
    suite: dict[str, Any],
    suite_path: str,
    client: MlflowClient | None = None,
    artifact_root: str | None = None,
    tags: dict[str, str] | None = None,
    storage_options: StorageOptions | None = None,
    notes: list[str] | None = None,
    engine: Literal["local", "dask"] = "local",
    dask_client: Any = None,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
) -> Validation:
    """The validate task: check ``suite``, run it on the snapshot at ``uri``, log and write what it found.

    With ``engine`` local, only the columns the suite names are read from the snapshot (see
    :func:`airflow_ml.validation.runner.plan_columns`). The verdict, GX's full result and an HTML report
    are written beside the snapshot and, with a ``client``
    and ``settings.experiment``, logged as a validation run (:func:`log_validation`).

    Args:
        uri: The run's snapshot.
        settings: The city's validation settings.
        suite: The suite, the city's sibling file and expectations applied (``templates.suites.load_suite``).
        suite_path: The suite's file, named in the verdict.
        client: The MLflow client; None records nothing in MLflow.
        artifact_root: Artifacts of a new experiment.
        tags: Extra run tags (the Airflow lineage).
        storage_options: Options that open the snapshot (by protocol).
        notes: What the verdict should say was left out on purpose (a GX checkpoint's actions).
        engine: ``local`` reads the snapshot into this process; ``dask`` validates it partition by partition on
            ``dask_client``'s cluster and merges the results (:mod:`airflow_ml.validation.partitioned`).
        dask_client: A ``distributed.Client`` (``dask`` only); None runs on Dask's default scheduler.
        sample_rows: Rows of the seeded sample that distribution checks run on (``dask`` only).

    Raises:
        SuiteInvalid: naming each problem of the suite; nothing is written.
        PartitionedSuiteRefused: (``dask``) naming the expectations that cannot be merged; nothing is written.
    """
    if engine == "dask" and dask_client is not None:
        warm_workers(dask_client)  # they import GX while this process does (check_suite), not after it
    problems = check_suite(suite, known_columns=settings.known_columns)
    if problems:
        raise SuiteInvalid(
            f"suite {suite['name']!r} is invalid; fix it (airflow-ml lint shows the same):\n  - "
            + "\n  - ".join(problems)
        )
    if engine == "dask":
        rows, manifest = open_snapshot(uri, storage_options=storage_options)
        verdict, result = validate_partitions(
            rows, suite, suite_file=suite_path, part_rows=[p["rows"] for p in manifest.parts] or [manifest.row_count],
            sample_rows=sample_rows, client=dask_client,
        )  # fmt: skip
    elif engine == "local":
        # Only the columns the suite reads are read; the schema stands for the table in column set and count checks.
        schema = read_snapshot_schema(uri, storage_options=storage_options)
        columns = plan_columns(suite, list(schema.columns)).columns
        frame = read_snapshot(uri, columns, storage_options=storage_options)
        verdict, result = run_suite(frame, suite, suite_file=suite_path, schema=schema)
    else:
        raise ValueError(f"engine {engine!r} is not one of 'local', 'dask'")
    verdict = dataclasses.replace(verdict, notes=[*(notes or []), *verdict.notes])
    record = verdict.to_dict()
    report = render_report(record, result, title=f"Validation of {settings.city or uri}")
    run = None
    if client is not None and settings.experiment:
        files = {VERDICT_FILE: json.dumps(record, indent=1, default=str), REPORT_FILE: report}
        files[RESULT_FILE] = json.dumps(result, indent=1, default=str)
        run = log_validation(
            client,
            load_manifest(uri, storage_options=storage_options),
            experiment=settings.experiment,
            verdict=record,
            files=files,
            artifact_root=artifact_root,
            tags=tags,
        )
        record["mlflow_run_id"] = run["run_id"]
    # Beside the snapshot last, so that the verdict there names its MLflow run.
    write_json(uri, VERDICT_FILE, record, storage_options=storage_options)
    write_json(uri, RESULT_FILE, result, storage_options=storage_options)
    write_text(uri, REPORT_FILE, report, storage_options=storage_options)
    return Validation(verdict, record, run)


def log_validation(
    client: MlflowClient,
    manifest: Manifest,
    *,
    experiment: str,
    verdict: dict[str, Any],
    files: dict[str, str],
    artifact_root: str | None = None,
    tags: dict[str, str] | None = None,
) -> dict[str, str]:
    """Record a validation as its own MLflow run in the city's experiment: counts, status and the files.

    The counts (expectations, failed errors and warnings, rows) are params; the snapshot is the run's
    dataset input, in context ``validation``.

    The run ends FINISHED whatever the verdict (the validation itself ran); its ``airflow_ml.validation``
    tag says passed, warned or failed.

    Returns:
        ``run_id`` and ``experiment_id``.
    """
    experiment_id = registry.get_or_create_experiment(client, experiment, artifact_root)
    run_tags = {
        **(tags or {}),
        "airflow_ml.step": "validation",
        "airflow_ml.validation": verdict["status"],
        "airflow_ml.suite": verdict["suite"],
        "airflow_ml.snapshot_uri": manifest.uri,
        "airflow_ml.snapshot_hash": manifest.content_hash,
        "mlflow.runName": f"validate {manifest.city} {manifest.run_id}",
    }
    run_id = client.create_run(experiment_id, tags=run_tags).info.run_id
    counts = {
        "validation_expectations": verdict["evaluated"],
        "validation_failed_errors": verdict["failed_errors"],
        "validation_failed_warnings": verdict["failed_warnings"],
        "validation_rows": verdict["row_count"],
    }
    # Counts are params, not metrics: MLflow would draw a one-point chart of each.
    client.log_batch(run_id, params=[Param(k, str(int(v))) for k, v in counts.items()])
    log_snapshot_input(client, run_id, manifest, "validation")
    with tempfile.TemporaryDirectory(prefix="airflow-ml-validation-") as tmp:
        for name, text in files.items():
            Path(tmp, name).write_text(text, encoding="utf-8")
        client.log_artifacts(run_id, tmp, VALIDATION_ARTIFACTS)
    client.set_terminated(run_id, status="FINISHED")
    return {"run_id": run_id, "experiment_id": experiment_id}
