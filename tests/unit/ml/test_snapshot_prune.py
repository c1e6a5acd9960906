"""Snapshot retention (airflow_ml.ml.snapshot_prune) against a real MLflow registry and real snapshots on a local
data root: the world of tests/support/snapshot_worlds.py.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from airflow_ml.data.refusal import record_refusal
from airflow_ml.data.retention import list_snapshots, location_key
from airflow_ml.data.snapshot import MANIFEST, take_snapshot
from airflow_ml.ml.snapshot_prune import PruneRefused, prune_snapshots
from airflow_ml.templates.retention_policies import retention_policies
from tests.support.snapshot_worlds import ALL, DELETED, T0, left, migrated_store, retention_world, short
from tests.support.worlds import copy_template


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrated_store(tmp_path_factory.mktemp("store"))


@pytest.fixture
def world(tmp_path: Path, empty_store: Path) -> dict[str, Any]:
    return retention_world(tmp_path, empty_store)


def _prune(world: dict[str, Any], **options: Any) -> Any:
    """As the CLI and the DAG prune: one template's DAGs and cities, or every snapshot under the root."""
    template = options.pop("template", "ride_duration")
    policies = retention_policies(world["templates"], template)
    return prune_snapshots(
        world["client"],
        str(world["root"]),
        keep_last=policies.keep_last,
        kept=policies.kept,
        model_names=policies.model_names,
        templates=policies.templates if template else None,
        old_layout_cities=policies.cities if template else None,
        **options,
    )


def _verdicts(report: Any, world: dict[str, Any]) -> dict[str, tuple[bool, str]]:
    return {short(v.snapshot.location, world): (v.keep, v.reason) for v in report.verdicts}


def test_prune_keeps_what_lineage_needs_and_the_newest_n_and_deletes_the_rest(world: dict[str, Any]) -> None:
    assert left(world) == ALL

    report = _prune(world)

    assert {short(d, world) for d in report.deleted} == DELETED
    assert left(world) == ALL - DELETED
    verdicts = _verdicts(report, world)
    assert "late/oslo/l1" not in verdicts  # another template: not in scope
    assert verdicts["ride_duration/oslo/r3"] == (True, "registered: ride_duration.oslo v2 (champion)")
    assert verdicts["ride_duration/oslo/r1"] == (True, "registered: ride_duration.oslo v1 (previous-champion)")
    assert verdicts["ride_duration/oslo/r5"] == (True, "registered: ride_duration.oslo v3 (challenger)")
    assert verdicts["ride_duration/oslo/r2"] == (True, "registered: ride_duration.oslo v4")  # its run's tag
    assert verdicts["ride_duration/global/p1"] == (True, "registered: ride_duration.global v1 (champion)")
    newest = "one of the newest 2 unregistered snapshots of {} (retention.keep_last)"
    assert verdicts["ride_duration/oslo/r8"] == (True, newest.format("ride_duration.oslo"))
    assert verdicts["ride_duration/oslo/r7"] == (True, newest.format("ride_duration.oslo"))
    assert verdicts["ride_duration/global/p4"][1] == newest.format("ride_duration.global")
    assert verdicts["ride_duration/oslo/r4"] == (
        False,
        "not registered, older than the newest 2 of ride_duration.oslo (retention.keep_last)",
    )
    assert verdicts["ride_duration/oslo/r9"] == (True, "incomplete (no manifest.json): a run may be writing it")
    assert verdicts["ride_duration/bergen/b1"] == (True, "retention.enabled is false for ride_duration.bergen")
    assert verdicts["ride_duration/tromso/t1"][0] is True
    assert "no valid city or fallback parent ride_duration.tromso" in verdicts["ride_duration/tromso/t1"][1]
    assert verdicts["oslo/old1"][0] is True
    assert "old layout" in verdicts["oslo/old1"][1]
    assert "--prune-old-layout deletes it" in verdicts["oslo/old1"][1]
    assert verdicts["oslo/old2"] == (True, "registered: ride_duration.oslo v5")
    assert report.lines()[-1] == "20 snapshot(s): kept 17, deleted 3"
    assert report.problems == []


def test_a_dry_run_deletes_nothing_and_says_what_it_would_delete(world: dict[str, Any]) -> None:
    report = _prune(world, dry_run=True)

    assert report.deleted == []
    assert left(world) == ALL
    doomed = {short(line.split()[2], world) for line in report.lines() if line.startswith("would delete")}
    assert doomed == DELETED
    assert report.lines()[-1] == "20 snapshot(s): kept 17, would delete 3 (dry run: nothing deleted)"


def test_old_layout_snapshots_go_only_when_asked_and_never_a_registered_one(world: dict[str, Any]) -> None:
    _prune(world, prune_old_layout=True)

    assert "oslo/old1" not in left(world)
    assert "oslo/old2" in left(world)  # a version still points at it


def test_a_registry_that_cannot_be_read_prunes_nothing(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    world["client"] = MlflowClient(tracking_uri="http://127.0.0.1:9", registry_uri="http://127.0.0.1:9")

    with pytest.raises(PruneRefused, match=r"cannot read the model registry .*nothing was pruned"):
        _prune(world)

    assert left(world) == ALL


def test_an_empty_registry_is_not_taken_for_no_lineage(
    world: dict[str, Any], tmp_path: Path, empty_store: Path
) -> None:
    from mlflow import MlflowClient

    shutil.copy(empty_store, tmp_path / "empty.db")  # as MLflow makes a fresh store for a mistyped path
    empty = f"sqlite:///{tmp_path}/empty.db"
    world["client"] = MlflowClient(tracking_uri=empty, registry_uri=empty)

    with pytest.raises(PruneRefused, match="holds no registered model at all"):
        _prune(world)

    assert left(world) == ALL


def test_a_dag_whose_model_the_registry_lacks_is_kept_whole_with_a_warning_unless_it_only_has_refused_runs(
    world: dict[str, Any],
) -> None:
    # The registry holds ride_duration.oslo and .global, not lisbon's model: it may not be lisbon's registry
    # (the guard used to look at the template only, and pruned lisbon's snapshots for oslo's sake).
    copy_template(world["templates"] / "more", "late")
    shutil.move(world["templates"] / "more" / "templates" / "late.yaml", world["templates"] / "templates")
    (world["templates"] / "cities" / "late").mkdir()
    (world["templates"] / "cities" / "late" / "oslo.yaml").write_text("city: oslo\ntemplate: late\n")
    for city in ("lisbon", "porto"):
        (world["templates"] / "cities" / f"{city}.yaml").write_text(f"city: {city}\ntemplate: ride_duration\n")
    source = world["data"] / "raw"
    for index, run in enumerate(("s1", "s2", "s3", "s4")):
        uri = take_snapshot(str(source), str(world["root"]), template="ride_duration", city="lisbon", run_id=run).uri
        os.utime(Path(uri) / MANIFEST, (T0 + index * 3600,) * 2)
        # porto's runs were all refused at their snapshot: nothing of theirs can have been registered anywhere.
        refused = record_refusal(
            str(world["root"]), template="ride_duration", city="porto", run_id=run, kind="storage", message="no data"
        )
        os.utime(str(refused), (T0 + index * 3600,) * 2)

    report = _prune(world, template=None)

    verdicts = _verdicts(report, world)
    lisbon = (
        "the registry holds no model 'ride_duration.lisbon': every snapshot of ride_duration.lisbon is kept; if "
        "its runs registered models, this is not their registry (check the MLflow connection)"
    )
    late = lisbon.replace("ride_duration.lisbon", "late.oslo")
    assert report.problems == [late, lisbon]
    assert {run: verdicts[f"ride_duration/lisbon/{run}"] for run in ("s1", "s2", "s3", "s4")} == dict.fromkeys(
        ("s1", "s2", "s3", "s4"), (True, lisbon)
    )
    assert verdicts["late/oslo/l1"] == (True, late)
    assert [verdicts[f"ride_duration/porto/{run}"][0] for run in ("s1", "s2", "s3", "s4")] == [False, False, True, True]
    assert verdicts["ride_duration/porto/s1"][1].startswith(
        "a refused run (only refusal.json), older than the newest 2"
    )
    assert left(world) >= {f"ride_duration/lisbon/s{i}" for i in range(1, 5)}
    assert not left(world) & {"ride_duration/porto/s1", "ride_duration/porto/s2"}
    assert not left(world) & DELETED  # the DAGs the registry knows were pruned as usual


def test_a_dag_whose_template_has_a_name_pattern_is_judged_by_its_patterned_model(world: dict[str, Any]) -> None:
    # registry.name_pattern 'main.ml.{template}_{city}': late.oslo registers main.ml.late_oslo, not late.oslo.
    copy_template(world["templates"] / "more", "late")
    template = world["templates"] / "templates" / "late.yaml"
    shutil.move(world["templates"] / "more" / "templates" / "late.yaml", template)
    with template.open("a", encoding="utf-8") as handle:
        handle.write("\nregistry:\n  name_pattern: 'main.ml.{template}_{city}'\n")
    (world["templates"] / "cities" / "late").mkdir()
    (world["templates"] / "cities" / "late" / "oslo.yaml").write_text("city: oslo\ntemplate: late\n")
    world["client"].create_registered_model("main.ml.late_oslo")

    assert retention_policies(world["templates"], "late").model_names[("late", "oslo")] == "main.ml.late_oslo"
    report = _prune(world, template=None)

    assert not [p for p in report.problems if "late" in p], report.problems  # no false "wrong registry"
    assert "registry holds no model" not in _verdicts(report, world)["late/oslo/l1"][1]


def test_an_empty_registry_refuses_no_prune_that_can_only_delete_refused_runs(
    world: dict[str, Any], tmp_path: Path, empty_store: Path
) -> None:
    from mlflow import MlflowClient

    root = tmp_path / "fresh" / "snapshots"  # a new fleet whose first runs were all refused
    for index, run in enumerate(("f1", "f2", "f3")):
        written = record_refusal(str(root), template="ride_duration", city="oslo", run_id=run, kind="conf", message="x")
        os.utime(str(written), (T0 + index,) * 2)
    shutil.copy(empty_store, tmp_path / "empty.db")
    empty = f"sqlite:///{tmp_path}/empty.db"
    world.update(client=MlflowClient(tracking_uri=empty, registry_uri=empty), root=root)

    report = _prune(world)

    assert report.problems == []
    assert {short(d, world) for d in report.deleted} == {"ride_duration/oslo/f1"}


def test_a_refused_runs_folder_is_a_failed_run_pruned_beyond_keep_last_and_never_being_written(
    world: dict[str, Any],
) -> None:
    # Runs refused at their snapshot leave refusal.json alone where the snapshot would be (data.refusal).
    for run, when in (("rf1", T0 - 3600), ("rf2", T0 + 50 * 3600)):  # older than every run; the newest
        written = record_refusal(
            str(world["root"]), template="ride_duration", city="oslo", run_id=run, kind="contract",
            message="the data does not match the dataset contract of the template",
        )  # fmt: skip
        assert written is not None
        os.utime(written, (when,) * 2)
    listed = {short(s.location, world): s for s in list_snapshots(str(world["root"]))}
    assert (listed["ride_duration/oslo/rf1"].refused, listed["ride_duration/oslo/rf1"].complete) == (True, False)
    assert listed["ride_duration/oslo/rf1"].written == T0 - 3600
    assert listed["ride_duration/oslo/r9"].refused is False  # a data.parquet.partial: being written

    verdicts = _verdicts(_prune(world), world)

    assert verdicts["ride_duration/oslo/rf1"] == (
        False,
        "a refused run (only refusal.json), older than the newest 2 of ride_duration.oslo (retention.keep_last)",
    )
    newest = "one of the newest 2 unregistered snapshots of ride_duration.oslo (retention.keep_last)"
    assert verdicts["ride_duration/oslo/rf2"] == (True, newest)
    assert verdicts["ride_duration/oslo/r8"] == (True, newest)
    assert verdicts["ride_duration/oslo/r7"][0] is False  # the refused run is the newest: it takes a place
    assert verdicts["ride_duration/oslo/r9"] == (True, "incomplete (no manifest.json): a run may be writing it")
    assert left(world) == (ALL | {"ride_duration/oslo/rf2"}) - DELETED - {"ride_duration/oslo/r7"}


def test_a_snapshot_registered_under_another_spelling_of_its_path_is_kept(world: dict[str, Any]) -> None:
    # The runs wrote their manifests (and tags) through a symlinked data root: other paths, the same folders.
    link = world["root"].parent.parent / "data_link"
    link.symlink_to(world["data"])
    r4 = world["uris"]["ride_duration/oslo/r4"]
    manifest = Path(r4) / MANIFEST
    data = json.loads(manifest.read_text())
    aliased = str(link / Path(r4).relative_to(world["data"]))
    manifest.chmod(0o644)
    manifest.write_text(json.dumps({**data, "uri": aliased}))
    os.utime(manifest, (T0 + 3 * 3600,) * 2)
    world["client"].create_model_version("ride_duration.oslo", "x", tags={"airflow_ml.snapshot_uri": aliased})
    assert location_key(aliased) != location_key(r4)

    report = _prune(world)

    assert "ride_duration/oslo/r4" in left(world)
    assert _verdicts(report, world)["ride_duration/oslo/r4"][1] == f"registered (as {aliased}): ride_duration.oslo v6"
