"""ValidateDataOperator: its settings, its template fields, and ``execute`` with GX on a real MLflow store."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import pytest

from airflow_ml.ml.steps.step_settings import GxContextSettings, ValidationSettings
from airflow_ml.ml.steps.xcom_payloads import REPORT_FILE
from airflow_ml.operators.validate_operator import ValidateDataOperator
from tests.support.gx_contexts import data_docs_index, make_gx_context, recording_webhook
from tests.support.task_runs import OperatorWorld, templated_yaml


def test_init_takes_the_factorys_validation_settings_as_one_dict(world: OperatorWorld) -> None:
    task = world.task("validate")

    assert isinstance(task, ValidateDataOperator)
    settings = ValidationSettings.from_dict(task.settings)
    assert (settings.suite, settings.city, settings.experiment) == ("ride_trips", "lisbon", "ride_duration.lisbon")
    assert (task.mlflow_conn_id, task.aws_conn_id) == ("mlflow_default", "aws_default")


def test_template_fields_hold_only_the_snapshot_xcom(world: OperatorWorld) -> None:
    assert ValidateDataOperator.template_fields == ("snapshot",)
    assert templated_yaml(world.task("validate")) == {}


def test_a_bad_settings_dict_is_refused_naming_the_key(world: OperatorWorld, snapshot: dict[str, Any]) -> None:
    task = ValidateDataOperator(task_id="validate", snapshot=snapshot, settings={"suit": "trips"})

    with pytest.raises(ValueError, match=r"unknown ValidationSettings key\(s\) \['suit'\]"):
        task.execute(world.context("validate"))  # type: ignore[arg-type]


def test_execute_validates_the_snapshot_and_links_the_report(world: OperatorWorld, snapshot: dict[str, Any]) -> None:
    record, ti = world.run("validate", snapshot=snapshot)

    assert record["status"] in ("passed", "warned"), record
    assert list(ti.pushed) == ["_link_ValidationReportLink"]
    assert world.client.get_experiment_by_name("ride_duration.lisbon") is not None


def _with_gx_context(world: OperatorWorld, project: Path, **gx_context: str | None) -> ValidateDataOperator:
    """The factory's validate task, its settings naming a GX context of ``project`` (the project folder)."""
    task = world.task("validate")
    settings = ValidationSettings.from_dict(task.settings)
    spec = GxContextSettings(path="gx", project_root=str(project), **gx_context)
    task.settings = dataclasses.replace(settings, gx_context=spec).to_dict()
    return task


def test_a_gx_checkpoint_validates_the_snapshot_besides_the_suite_and_its_actions_never_run(
    world: OperatorWorld, snapshot: dict[str, Any], tmp_path: Path
) -> None:
    import pandas as pd

    from airflow_ml.data.snapshot import read_snapshot

    with recording_webhook() as (url, calls):
        context = make_gx_context(tmp_path, webhook=url)
        # The control: GX running its own checkpoint posts to the webhook and builds data docs.
        context.checkpoints.get("nightly").run(batch_parameters={"dataframe": pd.DataFrame({"duration_min": [3.0]})})
        assert calls == ["/hook"]
        assert data_docs_index(tmp_path).is_file()
        shutil.rmtree(data_docs_index(tmp_path).parent)
        calls.clear()

        task = _with_gx_context(world, tmp_path, checkpoint="nightly")
        task.snapshot = snapshot
        context_ = world.context("validate")
        record = task.execute(context_)  # type: ignore[arg-type]

        assert calls == []  # no notification
    assert not data_docs_index(tmp_path).exists()  # no data docs
    project_suite = ValidationSettings.from_dict(task.settings).suite
    assert record["suite"] == f"{project_suite} + trips"
    rows = len(read_snapshot(snapshot["uri"]))
    assert record["row_count"] == rows
    assert record["status"] in ("passed", "warned"), record
    from airflow_ml.templates.suite_files import load_suite

    settings = ValidationSettings.from_dict(task.settings)
    project = load_suite(settings.expectations_dir, project_suite, city=settings.city, overrides=settings.expectations)
    assert record["evaluated"] == len(project["expectations"]) + 2  # the context's two ran besides the project's
    assert not [f for f in record["failures"] if "trips.json" in (f["source"] or "")]  # and passed on sound data
    assert "checkpoint 'nightly': 2 action(s) not run" in record["notes"][0]
    report = (Path(snapshot["uri"].removeprefix("file://")) / REPORT_FILE).read_text(encoding="utf-8")
    assert str(tmp_path / "gx" / "expectations" / "trips.json") in report  # where the context's checks are defined
    assert "2 action(s) not run" in report


def test_a_missing_gx_checkpoint_fails_the_task_without_retry_naming_the_field(
    world: OperatorWorld, snapshot: dict[str, Any], tmp_path: Path
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    make_gx_context(tmp_path, webhook="http://127.0.0.1:9/never")
    task = _with_gx_context(world, tmp_path, checkpoint="weekly")
    task.snapshot = snapshot

    missing = r"gx_context.checkpoint: no checkpoint 'weekly'.*known: \['nightly'\]"
    with pytest.raises(AirflowFailException, match=missing):
        task.execute(world.context("validate"))  # type: ignore[arg-type]


def test_the_validation_run_has_counts_as_params_and_the_snapshot_as_dataset_input(
    world: OperatorWorld, snapshot: dict[str, Any]
) -> None:
    world.run("validate", snapshot=snapshot)

    experiment = world.client.get_experiment_by_name("ride_duration.lisbon")
    (run, *_) = world.client.search_runs(
        [experiment.experiment_id], "tags.`airflow_ml.step` = 'validation'", order_by=["attributes.start_time DESC"]
    )
    counts = {"validation_expectations", "validation_failed_errors", "validation_failed_warnings", "validation_rows"}
    assert counts <= set(run.data.params)
    assert not counts & set(run.data.metrics)
    assert run.data.params["validation_rows"] == str(snapshot["row_count"])
    (dataset_input,) = run.inputs.dataset_inputs
    assert dataset_input.dataset.digest == snapshot["content_hash"][:12]
    assert {t.key: t.value for t in dataset_input.tags}["mlflow.data.context"] == "validation"


@pytest.mark.slow
def test_with_engine_dask_the_suite_runs_in_groups_of_parts_on_a_cluster_the_task_starts(
    world: OperatorWorld, snapshot: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    import dask

    from airflow_ml.data.dask_snapshot import take_partitioned_snapshot
    from tests.support.dask_clusters import LOCAL_CLUSTER

    with dask.config.set(scheduler="synchronous"):
        parts = take_partitioned_snapshot(
            str(world.data_root / "raw/trips/lisbon"), str(world.data_root / "snapshots"),
            template="ride_duration", city="lisbon", run_id="parts",
        )  # fmt: skip
    local, _ = world.run("validate", snapshot=parts.uri)
    task = world.task("validate")
    settings = ValidationSettings.from_dict(task.settings)
    task.settings = dataclasses.replace(settings, engine="dask", dask=LOCAL_CLUSTER).to_dict()
    task.snapshot = {"uri": parts.uri}

    with caplog.at_level(logging.INFO, logger="airflow_ml.ml.dask_client"):
        record = task.execute(world.context("validate"))  # type: ignore[arg-type]

    assert [m for m in caplog.messages if m.startswith("Dask cluster: local, 2 workers (a LocalCluster started")]
    # Two workers, a few thousand rows: two checks of neighbouring partitions (partition_groups).
    assert f"validated on Dask in 2 check(s) of {len(parts.parts)} partition(s)" in " ".join(record["notes"])
    assert (record["status"], record["evaluated"], record["row_count"]) == (
        local["status"], local["evaluated"], local["row_count"]
    )  # fmt: skip


def test_a_suite_dask_cannot_merge_fails_the_task_without_retry(world: OperatorWorld, snapshot: dict[str, Any]) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from tests.support.dask_clusters import LOCAL_CLUSTER

    task = world.task("validate")
    settings = ValidationSettings.from_dict(task.settings)
    unique = {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "pickup_at"}}
    task.settings = dataclasses.replace(settings, engine="dask", dask=LOCAL_CLUSTER, expectations=[unique]).to_dict()
    task.snapshot = snapshot

    with pytest.raises(AirflowFailException, match=r"cannot be validated partition by partition on Dask"):
        task.execute(world.context("validate"))  # type: ignore[arg-type]
