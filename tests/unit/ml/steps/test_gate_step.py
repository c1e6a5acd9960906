"""The gate step's fleet-outlier and schema-change rules on real LightGBM models and a real MLflow registry (SQLite).

One store for the module; each case uses a template of its own, so its fleet of sibling champions (registered
models whose skill tag ``model_registry.promote`` wrote, skills drawn with a fixed seed) is its own.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from airflow_ml.data.demo import DEMO_START, generate_day
from airflow_ml.data.snapshot import Manifest, take_snapshot
from airflow_ml.ml import model_registry as registry
from airflow_ml.ml import model_schema
from airflow_ml.ml.gate.fleet_outlier import FleetOutlier
from airflow_ml.ml.gate.naive_baseline import NaiveBaseline
from airflow_ml.ml.gate.rules import GateRules
from airflow_ml.ml.gate.schema_change import AcceptSchemaChange, LevelTolerance, fingerprints
from airflow_ml.ml.steps.gate_step import gate, level_shares
from airflow_ml.ml.steps.step_settings import GateSettings, SplitSettings
from airflow_ml.ml.steps.train_step import train_and_log
from tests.support.dask_clusters import cluster_client
from tests.support.mlflow_stores import logged_decision
from tests.support.training_data import regression

SPLIT = SplitSettings("pickup_at", 0.15, 0.15)
FLEET = FleetOutlier(max_z=4.0, min_siblings=8, min_history=3)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> MlflowClient:
    folder = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{folder}/mlflow.db"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


#: Where the module's training runs log their models (not ./mlruns).
ARTIFACTS: list[str] = []


@pytest.fixture(scope="module", autouse=True)
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    ARTIFACTS.append(f"file://{tmp_path_factory.mktemp('artifacts')}")
    yield
    ARTIFACTS.clear()


def _snapshot(root: Path, rename: dict[str, str] | None = None, rare_level: str | None = None) -> Manifest:
    for i in range(6):
        day = DEMO_START + dt.timedelta(days=i)
        folder = root / "raw" / f"date={day.isoformat()}"
        folder.mkdir(parents=True)
        frame = generate_day("lisbon", day, scale=0.3)
        if rename:
            frame["pickup_zone"] = frame["pickup_zone"].replace(rename)
        if rare_level:  # one trip a day from a zone that just opened
            frame.loc[frame.index[0], "pickup_zone"] = rare_level
        frame.to_parquet(folder / "part-0.parquet", index=False)
    return take_snapshot(
        f"file://{root / 'raw'}", f"file://{root / 'snapshots'}", template="ride_duration", city="lisbon", run_id="r1"
    )


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    return _snapshot(tmp_path_factory.mktemp("lisbon"))


def trained(client: MlflowClient, manifest: Manifest, name: str, **spec: Any) -> str:
    """A real small model of the trips' duration, logged and registered as a version of ``name``."""
    spec_ = regression(num_boost_round=20, **spec)
    result = train_and_log(client, manifest, spec_, SPLIT, experiment=name, artifact_root=ARTIFACTS[0])
    return str(registry.register_challenger(client, name, result["model_uri"], result["run_id"], {}).version)


def settings(template: str, **rules: Any) -> GateSettings:
    rules = {"naive_baseline": NaiveBaseline(), **rules}
    return GateSettings(
        f"{template}.lisbon",
        "duration_min",
        "rmse",
        SPLIT,
        GateRules(**rules),
        template=template,
        not_cities=["global"],
    )


def fleet_of(client: MlflowClient, template: str, centre: float, folder: Path, n: int = 10) -> None:
    """``n`` sibling cities of ``template`` whose champions' skills lie around ``centre`` (a fixed seed)."""
    for index, skill in enumerate(np.random.default_rng(14).normal(centre, 0.02, n)):
        name = f"{template}.city{index}"
        registry.ensure_registered(client, name)
        version = str(client.create_model_version(name, f"file://{folder}/model").version)
        registry.promote(client, name, version, {"decision": "promoted", "naive_baseline": {"skill": float(skill)}})


def own_skill(client: MlflowClient, manifest: Manifest, template: str) -> tuple[str, float]:
    """A challenger of ``template``'s Lisbon and its skill over the naive baseline (a dry run of the gate)."""
    version = trained(client, manifest, f"{template}.lisbon")
    _, record = gate(client, manifest, settings(template), challenger_version=version, mode="dry_run")
    return version, float(record["naive_baseline"]["skill"])


@pytest.fixture(scope="module")
def outlier(client: MlflowClient, manifest: Manifest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A challenger whose skill lies 0.65 above a fleet that is as tight as 0.02 around its median."""
    version, skill = own_skill(client, manifest, "fleet_out")
    fleet_of(client, "fleet_out", skill - 0.65, tmp_path_factory.mktemp("siblings"))
    return version, skill


def test_a_planted_outlier_is_refused_in_auto_and_shadow_modes_and_the_record_names_the_fleet(
    client: MlflowClient, manifest: Manifest, outlier: Any
) -> None:
    version, skill = outlier
    rules = settings("fleet_out", fleet_outlier=FLEET)

    for mode in ("auto", "shadow"):
        outcome, record = gate(client, manifest, rules, challenger_version=version, mode=mode)

        assert (outcome.label, record["refused_by"]) == ("kept", "fleet_outlier")
        assert "lies far above its 10 sibling champions" in record["reason"]
    fleet = record["fleet"]
    assert (fleet["applied"], fleet["siblings"], fleet["side"], fleet["explained"]) == (True, 10, "above", False)
    assert fleet["median"] == pytest.approx(skill - 0.65, abs=0.03)
    assert fleet["z"] > 4
    assert fleet["spread"] >= 0.01
    assert registry.version_by_alias(client, "fleet_out.lisbon", registry.CHAMPION) is None
    assert client.get_model_version("fleet_out.lisbon", version).tags["gate.decision"] == "kept"
    assert logged_decision(client, "fleet_out.lisbon", version)["refused_by"] == "fleet_outlier"


def test_force_still_promotes_a_suspect_challenger_and_records_it(
    client: MlflowClient, manifest: Manifest, outlier: Any
) -> None:
    version, _ = outlier
    rules = settings("fleet_out", fleet_outlier=FLEET)

    dry, dry_record = gate(client, manifest, rules, challenger_version=version, mode="dry_run")
    forced, record = gate(client, manifest, rules, challenger_version=version, mode="force", trigger_reason="known")

    assert (dry.label, dry_record["refused_by"]) == ("dry-run", "fleet_outlier")
    assert (forced.label, record["refused_by"], record["fleet"]["side"]) == ("forced", "fleet_outlier", "above")
    assert str(registry.version_by_alias(client, "fleet_out.lisbon", registry.CHAMPION).version) == version


def test_a_challenger_like_its_siblings_passes(
    client: MlflowClient, manifest: Manifest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    version, skill = own_skill(client, manifest, "fleet_ok")
    fleet_of(client, "fleet_ok", skill + 0.02, tmp_path_factory.mktemp("siblings"))

    outcome, record = gate(client, manifest, settings("fleet_ok", fleet_outlier=FLEET), challenger_version=version)

    assert outcome.label == "promoted"
    assert (record["fleet"]["applied"], record["fleet"]["suspect"], record["refused_by"]) == (True, False, None)


def test_a_city_whose_own_history_is_as_far_from_the_fleet_is_explained(
    client: MlflowClient, manifest: Manifest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    version, skill = own_skill(client, manifest, "fleet_own")
    folder = tmp_path_factory.mktemp("history")
    fleet_of(client, "fleet_own", skill - 0.65, folder)
    for past in (skill - 0.02, skill, skill + 0.01):  # promoted earlier, no longer champion
        old = str(client.create_model_version("fleet_own.lisbon", f"file://{folder}/model").version)
        registry.tag_decision(
            client, "fleet_own.lisbon", old, {"decision": "promoted", "naive_baseline": {"skill": past}}
        )

    outcome, record = gate(client, manifest, settings("fleet_own", fleet_outlier=FLEET), challenger_version=version)

    assert outcome.label == "promoted"
    fleet = record["fleet"]
    assert (fleet["suspect"], fleet["explained"], fleet["history"]) == (True, True, 3)
    assert fleet["history_median"] == pytest.approx(skill)
    assert fleet["note"].startswith("explained by the city's own history")


def test_with_too_few_siblings_the_rule_is_not_applied_and_the_record_says_so(
    client: MlflowClient, manifest: Manifest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    version, skill = own_skill(client, manifest, "fleet_few")
    fleet_of(client, "fleet_few", skill - 0.65, tmp_path_factory.mktemp("siblings"), n=5)

    outcome, record = gate(client, manifest, settings("fleet_few", fleet_outlier=FLEET), challenger_version=version)

    assert outcome.label == "promoted"
    assert record["fleet"]["applied"] is False
    assert "5 sibling champion(s) with a skill, fewer than min_siblings 8" in record["fleet"]["note"]


# --- schema changes ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema_world(client: MlflowClient, manifest: Manifest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A champion without ``temperature_c``; challengers with it, and with a zone renamed in their rows."""
    name = "schema.lisbon"
    features = [f for f in regression().features if f != "temperature_c"]
    champion = trained(client, manifest, name, features=features)
    gate(client, manifest, settings("schema"), challenger_version=champion)
    renamed = _snapshot(tmp_path_factory.mktemp("renamed"), {"belem": "parque"})
    rare = _snapshot(tmp_path_factory.mktemp("rare"), rare_level="kiosk_7")
    return {
        "name": name,
        "champion": champion,
        "added": trained(client, manifest, name),
        "levels": trained(client, renamed, name, features=features),
        "renamed": renamed,
        "rare": rare,
        "rare_level": trained(client, rare, name, features=features),
        "same": trained(client, manifest, name, features=features),
    }


#: The fingerprints of the renamed zone: levels added to and removed from ``pickup_zone`` (belem held a whole
#: zone's trips of the champion's training rows: far above gate.level_tolerance.removed_level_max_share).
RENAMED = fingerprints({"levels_added": {"pickup_zone": ["parque"]}, "levels_removed": {"pickup_zone": ["belem"]}})


def test_a_new_column_is_refused_without_a_declaration_with_the_diff_in_the_record(
    client: MlflowClient, manifest: Manifest, schema_world: dict[str, Any]
) -> None:
    outcome, record = gate(client, manifest, settings("schema"), challenger_version=schema_world["added"])

    assert (outcome.label, record["refused_by"]) == ("kept", "schema_change")
    assert record["schema_diff"]["diff"] == {"added": ["temperature_c"]}
    assert record["schema_diff"]["compared_with"] == f"champion v{schema_world['champion']}"
    assert "column(s) added ['temperature_c']" in record["reason"]
    assert (
        str(registry.version_by_alias(client, "schema.lisbon", registry.CHAMPION).version) == schema_world["champion"]
    )


def test_a_changed_level_set_is_refused_and_a_declaration_of_its_column_accepts_it(
    client: MlflowClient, schema_world: dict[str, Any]
) -> None:
    renamed, version = schema_world["renamed"], schema_world["levels"]
    wrong = AcceptSchemaChange("a new column", ("temperature_c",), RENAMED)

    refused, record = gate(client, renamed, settings("schema", accept_schema_change=wrong), challenger_version=version)
    accept = AcceptSchemaChange("Belem's stop moved to Parque", ("pickup_zone",), RENAMED)
    _, accepted = gate(
        client, renamed, settings("schema", accept_schema_change=accept), challenger_version=version, mode="dry_run"
    )

    assert (refused.label, record["refused_by"]) == ("kept", "schema_change")
    diff = record["schema_diff"]["diff"]
    assert (diff["levels_added"], diff["levels_removed"]) == ({"pickup_zone": ["parque"]}, {"pickup_zone": ["belem"]})
    assert "does not name ['pickup_zone']" in record["reason"]
    assert accepted["refused_by"] != "schema_change"
    assert accepted["reason"].endswith(
        f"; input schema change {list(RENAMED)} accepted (Belem's stop moved to Parque): pickup_zone levels added "
        "['parque']; pickup_zone levels removed ['belem']"
    )
    # The removed level held a whole zone's trips of the champion's training rows: it counts, it is no churn.
    assert "levels_removed" not in (record["schema_diff"]["tolerated"] or {})
    assert (accepted["schema_diff"]["accepted"], accepted["schema_diff"]["declared"]) == (
        True,
        "Belem's stop moved to Parque",
    )


def test_a_declaration_of_one_change_refuses_a_later_different_change_with_its_diff(
    client: MlflowClient, manifest: Manifest, schema_world: dict[str, Any]
) -> None:
    zones = AcceptSchemaChange("Belem's stop moved to Parque", None, RENAMED)

    outcome, record = gate(
        client, manifest, settings("schema", accept_schema_change=zones), challenger_version=schema_world["added"]
    )

    added = list(fingerprints({"added": ["temperature_c"]}))
    assert (outcome.label, record["refused_by"]) == ("kept", "schema_change")
    assert record["schema_diff"]["fingerprint"] == added
    assert "column(s) added ['temperature_c']" in record["reason"]
    assert f"accepts change {list(RENAMED)}, which lacks {added}" in record["reason"]


def test_a_rare_new_level_is_tolerated_churn_by_default_and_listed_in_the_decision(
    client: MlflowClient, schema_world: dict[str, Any]
) -> None:
    _, record = gate(
        client, schema_world["rare"], settings("schema"), challenger_version=schema_world["rare_level"], mode="dry_run"
    )
    strict = settings("schema", level_tolerance=LevelTolerance(new_level_max_share=0.0))
    _, refused = gate(
        client, schema_world["rare"], strict, challenger_version=schema_world["rare_level"], mode="dry_run"
    )

    assert record["refused_by"] != "schema_change"
    tolerated = record["schema_diff"]["tolerated"]
    assert tolerated["levels_added"] == {"pickup_zone": ["kiosk_7"]}
    assert 0 < tolerated["new_level_shares"]["pickup_zone"] <= 0.01
    assert "tolerated level churn (gate.level_tolerance): pickup_zone levels added ['kiosk_7']" in record["reason"]
    assert refused["refused_by"] == "schema_change"


def test_a_declaration_whose_change_the_champion_already_has_is_stale_in_the_decision(
    client: MlflowClient, manifest: Manifest, schema_world: dict[str, Any]
) -> None:
    declared = settings("schema", accept_schema_change=AcceptSchemaChange("zones", None, RENAMED))

    _, record = gate(client, manifest, declared, challenger_version=schema_world["same"], mode="dry_run")

    assert record["refused_by"] != "schema_change"
    stale = record["schema_diff"]["stale_declaration"]
    assert stale.startswith(f"gate.accept_schema_change ('zones', change {list(RENAMED)}) has no change left to accept")
    assert f"the champion v{schema_world['champion']}'s inputs and the challenger's agree" in stale
    assert stale in record["reason"]


def test_a_champion_registered_before_the_schema_tag_is_read_from_its_signature(
    client: MlflowClient, manifest: Manifest, schema_world: dict[str, Any]
) -> None:
    client.delete_model_version_tag("schema.lisbon", schema_world["champion"], model_schema.SCHEMA_TAG)

    _, record = gate(client, manifest, settings("schema"), challenger_version=schema_world["added"], mode="dry_run")

    assert record["schema_diff"]["source"].startswith("its MLflow signature and preprocessor")
    assert record["schema_diff"]["diff"] == {"added": ["temperature_c"]}


def test_level_shares_read_levels_as_the_preprocessor_does() -> None:
    """A float-coded category (an int column that gained a null) reads 1.0 as the preprocessor's level "1"."""
    rows = pd.DataFrame({"zone_id": [1.0, 2.0, np.nan, 1.0], "name": ["a", "b", None, "a"]})

    shares = level_shares(rows, {"zone_id": ["1"], "name": ["a"], "absent": ["x"]})

    assert shares == {"zone_id": 0.5, "name": 0.5}


def test_a_declaration_naming_no_change_warns_in_the_gates_log_too(
    client: MlflowClient, schema_world: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    declared = settings("schema", accept_schema_change=AcceptSchemaChange("zones renamed"))

    with caplog.at_level("WARNING", logger="airflow_ml.ml.steps.gate_step"):
        _, record = gate(
            client, schema_world["renamed"], declared, challenger_version=schema_world["levels"], mode="dry_run"
        )

    assert record["refused_by"] == "schema_change"
    assert "gate.accept_schema_change ('zones renamed') names no change, so it accepts none" in caplog.text


# --- training.engine: dask: the holdout split and scored on the cluster ---------------------------------------------


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    """A partitioned snapshot (one part per day's file, as the snapshot task takes it on Dask) of six days."""
    import dask

    from airflow_ml.data.dask_snapshot import take_partitioned_snapshot

    root = tmp_path_factory.mktemp("parts")
    _snapshot(root)
    with dask.config.set(scheduler="synchronous"):
        return take_partitioned_snapshot(
            str(root / "raw"), str(root / "snapshots"), template="ride_duration", city="lisbon", run_id="parts"
        )


@pytest.mark.slow
def test_on_dask_the_gate_scores_the_holdout_on_the_cluster_and_decides_as_locally(
    client: MlflowClient, parts: Manifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    rules = {"slices": [{"column": "pickup_zone"}], "bootstrap": {"resamples": 200}}
    local_settings = settings("dask_gate", **rules)
    on_dask = dataclasses.replace(local_settings, engine="dask")
    first = trained(client, parts, "dask_gate.lisbon")
    gate(client, parts, local_settings, challenger_version=first)  # the champion, scored locally
    second = trained(client, parts, "dask_gate.lisbon", seed=5, params={"learning_rate": 0.3, "num_leaves": 4})

    _, here = gate(client, parts, local_settings, challenger_version=second, mode="dry_run")

    def whole_snapshot(*_: Any, **__: Any) -> None:
        raise AssertionError("the gate on Dask read the snapshot into its process")

    monkeypatch.setattr("airflow_ml.ml.steps.gate_step.read_snapshot", whole_snapshot)
    _, there = gate(client, parts, on_dask, challenger_version=second, mode="dry_run", dask_session=cluster_client)

    # Both gates reuse the training run's file: the rows it logged are the holdout's on the cluster too.
    assert here["challenger_predictions"]["source"] == there["challenger_predictions"]["source"] == "logged"
    assert there["holdout_rows"] == here["holdout_rows"] > 100
    for key in ("challenger_score", "champion_score", "improvement"):
        assert there[key] == pytest.approx(here[key], rel=1e-9)
    for key in ("value", "score", "skill"):
        assert there["naive_baseline"][key] == pytest.approx(here["naive_baseline"][key], rel=1e-9)
    assert there["naive_baseline"]["training_rows"] == here["naive_baseline"]["training_rows"]
    assert [s["rows"] for s in there["slices"]] == [s["rows"] for s in here["slices"]]
    assert there["bootstrap"]["improvement"] == pytest.approx(here["bootstrap"]["improvement"], rel=1e-9)
    assert (there["decision"], there["refused_by"]) == (here["decision"], here["refused_by"])


@pytest.mark.slow
def test_on_dask_the_challengers_logged_predictions_stand_for_it_only_when_its_snapshot_hash_matches(
    client: MlflowClient, parts: Manifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from airflow_ml.ml import dask_holdout
    from airflow_ml.ml.lineage import SNAPSHOT_HASH_TAG

    local_settings = settings("dask_reuse", bootstrap={"resamples": 200})
    on_dask = dataclasses.replace(local_settings, engine="dask")
    first = trained(client, parts, "dask_reuse.lisbon")
    gate(client, parts, local_settings, challenger_version=first)  # the champion
    second = trained(client, parts, "dask_reuse.lisbon", seed=5, params={"learning_rate": 0.3, "num_leaves": 4})
    versions = {v: client.get_model_version("dask_reuse.lisbon", v) for v in (first, second)}
    uuid = {v: registry.load_version(client, found).metadata.model_uuid for v, found in versions.items()}
    scored: list[str] = []  # the model of each whole-holdout scoring on the cluster
    predict_on_dask = dask_holdout.predict_on_dask

    def counted(dask_client: Any, rows: Any, model: Any) -> Any:
        scored.append(model.metadata.model_uuid)
        return predict_on_dask(dask_client, rows, model)

    monkeypatch.setattr(dask_holdout, "predict_on_dask", counted)
    _, reused = gate(client, parts, on_dask, challenger_version=second, mode="dry_run", dask_session=cluster_client)
    reused_scored = list(scored)
    scored.clear()
    client.set_tag(versions[second].run_id, SNAPSHOT_HASH_TAG, "sha256:another")  # its run now says another snapshot
    _, rescored = gate(client, parts, on_dask, challenger_version=second, mode="dry_run", dask_session=cluster_client)

    assert reused["challenger_predictions"]["source"] == "logged"
    assert f"predicts {reused['holdout_rows']} checked rows as logged" in reused["challenger_predictions"]["reason"]
    assert reused_scored == [uuid[first]]  # only the champion scored the holdout
    assert rescored["challenger_predictions"] == {
        "source": "scored",
        "reason": f"trained on snapshot sha256:another, the gate's holdout is of {parts.content_hash}",
    }
    assert sorted(scored) == sorted([uuid[first], uuid[second]])
    # The same evidence and decision either way: the logged predictions are the loaded model's.
    for key in ("challenger_score", "champion_score", "improvement"):
        assert reused[key] == pytest.approx(rescored[key], rel=1e-9)
    assert reused["bootstrap"]["improvement"] == pytest.approx(rescored["bootstrap"]["improvement"], rel=1e-9)
    assert (reused["decision"], reused["refused_by"]) == (rescored["decision"], rescored["refused_by"])


@pytest.mark.slow
def test_on_dask_the_cluster_is_closed_before_the_champion_moves_so_a_failed_close_moves_nothing(
    client: MlflowClient, parts: Manifest
) -> None:
    import dataclasses

    on_dask = dataclasses.replace(settings("dask_close"), engine="dask")
    first = trained(client, parts, "dask_close.lisbon")  # a first model: the gate would promote it
    aliases_at_close: list[dict[str, Any]] = []

    @contextlib.contextmanager
    def closing_fails() -> Iterator[Any]:
        with cluster_client() as dask_client:
            yield dask_client
        aliases_at_close.append(client.get_registered_model("dask_close.lisbon").aliases)
        raise TimeoutError("the LocalCluster did not close in time")

    with pytest.raises(TimeoutError, match="did not close"):
        gate(client, parts, on_dask, challenger_version=first, dask_session=closing_fails)

    assert [{a: str(v) for a, v in found.items()} for found in aliases_at_close] == [{registry.CHALLENGER: first}]
    assert registry.CHAMPION not in client.get_registered_model("dask_close.lisbon").aliases
    tags = client.get_model_version("dask_close.lisbon", first).tags
    assert not [tag for tag in tags if tag.startswith("gate.")], "nothing was decided or recorded"
    # The same session closing cleanly: the gate then decides and promotes, with the cluster already closed.
    outcome, _ = gate(client, parts, on_dask, challenger_version=first, dask_session=cluster_client)
    assert outcome.move_champion
    assert str(client.get_registered_model("dask_close.lisbon").aliases[registry.CHAMPION]) == first


def test_engine_dask_without_a_session_is_refused_naming_training_engine(client: MlflowClient, parts: Manifest) -> None:
    import dataclasses

    on_dask = dataclasses.replace(settings("dask_none"), engine="dask")

    with pytest.raises(ValueError, match=r"training\.engine 'dask' needs dask_session"):
        gate(client, parts, on_dask, challenger_version="1")


def test_the_gate_reads_only_the_columns_the_models_and_its_rules_read_and_decides_as_on_every_column(
    client: MlflowClient, manifest: Manifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key column of distinct strings (the trips' ``trip_id``) is never read; the split, the logged holdout's
    row check and every figure stay those of the whole snapshot."""
    from airflow_ml.data import snapshot as snapshots

    rules = {"slices": [{"column": "weekday"}], "bootstrap": {"resamples": 200}}
    gate_settings = settings("columns_read", **rules)
    gate(client, manifest, gate_settings, challenger_version=trained(client, manifest, "columns_read.lisbon"))
    challenger = trained(client, manifest, "columns_read.lisbon", seed=5, params={"learning_rate": 0.3})
    asked: list[Any] = []

    def spy(uri: str, columns: Any = None, *, every: bool = False, **options: Any) -> Any:
        asked.append(columns)
        return snapshots.read_snapshot(uri, None if every else columns, **options)

    monkeypatch.setattr("airflow_ml.ml.steps.gate_step.read_snapshot", spy)
    _, few = gate(client, manifest, gate_settings, challenger_version=challenger, mode="dry_run")
    monkeypatch.setattr("airflow_ml.ml.steps.gate_step.read_snapshot", lambda *a, **k: spy(*a, every=True, **k))
    _, every = gate(client, manifest, gate_settings, challenger_version=challenger, mode="dry_run")

    assert "trip_id" in manifest.columns
    assert sorted(asked[0]) == sorted([*regression().features, "pickup_at", "duration_min"])  # weekday a feature
    assert few["challenger_predictions"]["source"] == "logged"  # the logged rows matched the holdout's
    figures = ("challenger_score", "champion_score", "improvement", "holdout_rows", "naive_baseline", "slices")
    assert {k: few[k] for k in figures} == {k: every[k] for k in figures}
    assert (few["decision"], few["reason"], few["bootstrap"]) == (
        every["decision"],
        every["reason"],
        every["bootstrap"],
    )
