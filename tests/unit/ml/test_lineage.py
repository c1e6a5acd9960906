"""The champion must be this city's, and a deleted one is reported as deleted: drift, gate, fallback, registry.

A real MLflow registry (SQLite) throughout; the gate's cases train small real models on demo trips.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from airflow_ml.data.demo import DEMO_START, generate_day
from airflow_ml.data.snapshot import Manifest, read_snapshot, take_snapshot
from airflow_ml.exceptions import ForeignChampion
from airflow_ml.ml import model_registry as registry
from airflow_ml.ml.champion_trace import deleted_champion
from airflow_ml.ml.fallback import which_model_serves
from airflow_ml.ml.gate.naive_baseline import NaiveBaseline
from airflow_ml.ml.gate.rules import GateRules
from airflow_ml.ml.lineage import model_lineage, this_citys_champion
from airflow_ml.ml.steps.drift_step import NO_CHAMPION, check_drift
from airflow_ml.ml.steps.gate_step import gate
from airflow_ml.ml.steps.step_settings import DriftSettings, GateSettings, SplitSettings
from airflow_ml.ml.steps.train_step import train_and_log
from airflow_ml.ml.train import TrainSpec, time_split

MODEL = "ride_duration.lisbon"
LISBON = {"airflow_ml.template": "ride_duration", "airflow_ml.city": "lisbon"}
PORTO = {"airflow_ml.template": "ride_duration", "airflow_ml.city": "porto"}
SPLIT = SplitSettings("pickup_at", 0.15, 0.15)
FEATURES = ["distance_km", "pickup_hour", "weekday", "pickup_zone", "temperature_c", "is_raining"]
SPEC = TrainSpec(
    features=FEATURES,
    categorical=["pickup_zone"],
    target="duration_min",
    num_boost_round=30,
    early_stopping_rounds=10,
    num_threads=1,
    params={"learning_rate": 0.1, "num_leaves": 15, "min_data_in_leaf": 20},
)
RULES = GateRules(naive_baseline=NaiveBaseline())


@pytest.fixture
def client(tmp_path: Path) -> MlflowClient:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    """Six days of demo trips in Lisbon, snapshotted."""
    root = tmp_path_factory.mktemp("lisbon")
    for i in range(6):
        day = DEMO_START + dt.timedelta(days=i)
        folder = root / "raw" / f"date={day.isoformat()}"
        folder.mkdir(parents=True)
        generate_day("lisbon", day, scale=0.4).to_parquet(folder / "part-0.parquet", index=False)
    return take_snapshot(
        f"file://{root / 'raw'}", f"file://{root / 'snapshots'}", template="ride_duration", city="lisbon", run_id="run1"
    )


def version(
    client: MlflowClient, tmp_path: Path, name: str = MODEL, *, run: dict[str, str], tags: dict[str, str]
) -> str:
    """A version of ``name`` whose training run carries ``run`` tags and the version ``tags`` (no model trained)."""
    if not client.search_registered_models(filter_string=f"name = '{name}'"):
        client.create_registered_model(name)
    experiment = client.get_experiment_by_name(name)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(name)
    run_id = client.create_run(experiment_id, tags=run).info.run_id
    source = tmp_path / "model"
    source.mkdir(exist_ok=True)
    return str(client.create_model_version(name, str(source), run_id=run_id, tags=tags).version)


def trained(client: MlflowClient, manifest: Manifest, name: str = MODEL, lineage: dict[str, str] = LISBON) -> str:
    """Train a real (small) model on the snapshot and register it, with the factory's lineage tags."""
    result = train_and_log(client, manifest, SPEC, SPLIT, experiment=name, tags=lineage)
    return str(registry.register_challenger(client, name, result["model_uri"], result["run_id"], lineage).version)


def decide_on(client: MlflowClient, manifest: Manifest, challenger: str, **kwargs: Any) -> tuple[Any, dict]:
    parent_model = kwargs.pop("parent_model", None)
    settings = GateSettings(MODEL, "duration_min", "rmse", SPLIT, RULES, parent_model=parent_model)
    return gate(client, manifest, settings, challenger_version=challenger, **kwargs)


def champion(client: MlflowClient, name: str = MODEL) -> str | None:
    found = registry.version_by_alias(client, name, registry.CHAMPION)
    return None if found is None else str(found.version)


# --- whose champion ------------------------------------------------------------------------------------------


def test_the_factorys_model_names_give_the_lineage_to_expect() -> None:
    assert model_lineage(MODEL) == LISBON
    assert model_lineage("ride_duration.group.pt") == {**LISBON, "airflow_ml.city": "group.pt"}
    assert model_lineage("handmade") == {}


def test_this_citys_champion_is_used_and_so_is_one_without_lineage(client: MlflowClient, tmp_path: Path) -> None:
    own = version(client, tmp_path, run=LISBON, tags=LISBON)
    bare = version(client, tmp_path, "ride_duration.porto", run={}, tags={})
    client.set_registered_model_alias(MODEL, "champion", own)
    client.set_registered_model_alias("ride_duration.porto", "champion", bare)

    assert str(this_citys_champion(client, MODEL).version) == own  # type: ignore[union-attr]
    assert str(this_citys_champion(client, "ride_duration.porto").version) == bare  # type: ignore[union-attr]
    assert this_citys_champion(client, "ride_duration.nowhere") is None


def test_a_champion_trained_for_another_city_is_refused_naming_its_lineage_and_the_fix(
    client: MlflowClient, tmp_path: Path
) -> None:
    own = version(client, tmp_path, run=LISBON, tags=LISBON)
    registry.promote(client, MODEL, own, {"decision": "promoted"})
    foreign = version(client, tmp_path, run=PORTO, tags=PORTO)
    registry.promote(client, MODEL, foreign, {"decision": "promoted"})  # e.g. a hand-made promotion gone wrong

    with pytest.raises(ForeignChampion) as caught:
        this_citys_champion(client, MODEL)

    text = str(caught.value)
    assert text.startswith(f"{MODEL}: the 'champion' alias points at v{foreign}, which was trained for another city")
    assert "its lineage: airflow_ml.city='porto', airflow_ml.template='ride_duration'" in text
    assert "must have airflow_ml.city='lisbon', airflow_ml.template='ride_duration'" in text
    assert "not used as a baseline and nothing was moved" in text
    assert f"previous-champion v{own}, which is this city's: trigger the DAG airflow_ml.rollback" in text
    assert (caught.value.model_name, caught.value.version) == (MODEL, foreign)
    assert champion(client) == foreign  # refusing moves nothing


def test_no_lineage_function_hands_out_a_foreign_champion_or_its_snapshot(client: MlflowClient, tmp_path: Path) -> None:
    # Every function of the module that resolves a model's champion by name checks that it is this city's:
    # none returns another city's champion (or the snapshot it was trained on) unchecked.
    import inspect

    from airflow_ml.ml import lineage

    foreign = version(client, tmp_path, run=PORTO, tags={**PORTO, "airflow_ml.snapshot_uri": "file:///porto/run"})
    client.set_registered_model_alias(MODEL, "champion", foreign)
    by_name = [
        function
        for name, function in inspect.getmembers(lineage, inspect.isfunction)
        if function.__module__ == lineage.__name__
        and not name.startswith("_")
        and list(inspect.signature(function).parameters)[:2] == ["client", "model_name"]
    ]

    assert by_name  # this_citys_champion at least
    for function in by_name:
        with pytest.raises(ForeignChampion):
            function(client, MODEL)


def test_the_training_runs_lineage_counts_when_the_version_carries_none(client: MlflowClient, tmp_path: Path) -> None:
    # Registered by hand from another template's run: the version has no tags, its run says where it is from.
    other = version(client, tmp_path, run={**LISBON, "airflow_ml.template": "late_pickup"}, tags={})
    client.set_registered_model_alias(MODEL, "champion", other)

    with pytest.raises(ForeignChampion, match=r"airflow_ml\.template='late_pickup'") as caught:
        this_citys_champion(client, MODEL)

    assert "none of its versions is this city's; remove the alias" in str(caught.value)


# --- deleted champions ---------------------------------------------------------------------------------------


def test_mlflow_deletes_the_alias_with_the_version_and_the_registry_tells_deleted_from_none_yet(
    client: MlflowClient, tmp_path: Path
) -> None:
    first = version(client, tmp_path, run=LISBON, tags=LISBON)
    assert deleted_champion(client, MODEL) is None  # registered, never promoted
    registry.promote(client, MODEL, first, {"decision": "promoted"})

    client.delete_model_version(MODEL, first)

    assert champion(client) is None  # MLflow 3 removes the alias: it looks like "no champion yet"
    assert deleted_champion(client, MODEL) == (
        f"the champion of {MODEL}, v{first}, was deleted from the registry (its alias went with it)"
    )
    assert deleted_champion(client, "ride_duration.never") is None


def test_a_removed_alias_and_a_lone_previous_champion_are_reported(client: MlflowClient, tmp_path: Path) -> None:
    first = version(client, tmp_path, run=LISBON, tags=LISBON)
    registry.promote(client, MODEL, first, {"decision": "promoted"})
    client.delete_registered_model_alias(MODEL, "champion")
    assert "alias of ride_duration.lisbon was removed (it pointed at v1, which still exists)" in str(
        deleted_champion(client, MODEL)
    )
    # Set by hand (no tag), then deleted: the previous-champion left behind says there was one.
    hand = "ride_duration.porto"
    old, new = (version(client, tmp_path, hand, run=PORTO, tags=PORTO) for _ in range(2))
    client.set_registered_model_alias(hand, "previous-champion", old)
    client.set_registered_model_alias(hand, "champion", new)
    client.delete_model_version(hand, new)
    assert deleted_champion(client, hand) == (
        f"the champion of {hand} was deleted (its 'previous-champion', v{old}, is left without one)"
    )


def test_a_first_champion_promoted_before_the_tag_existed_is_found_deleted_through_its_runs_decision(
    client: MlflowClient, tmp_path: Path, manifest: Manifest
) -> None:
    first = trained(client, manifest)
    outcome, _ = decide_on(client, manifest, first)
    assert (outcome.label, champion(client)) == ("promoted", first)
    client.delete_registered_model_tag(MODEL, registry.CHAMPION_VERSION_TAG)  # as promoted before the tag existed
    # A version never promoted, deleted too: its run has no decision to find.
    ignored = version(client, tmp_path, run=LISBON, tags=LISBON)
    client.delete_model_version(MODEL, ignored)
    run_id = client.get_model_version(MODEL, first).run_id

    client.delete_model_version(MODEL, first)  # its run stays, with the gate's record

    assert champion(client) is None
    assert deleted_champion(client, MODEL) == (
        f"v{first} of {MODEL}, which the gate promoted (gate/decision.json of its training run {run_id}), was "
        "deleted from the registry; no record says whether it was still the champion then"
    )
    assert "v1 of ride_duration.lisbon, which the gate promoted" in drift(client, manifest)["reason"]
    never = version(client, tmp_path, "ride_duration.porto", run=PORTO, tags=PORTO)
    client.delete_model_version("ride_duration.porto", never)
    assert deleted_champion(client, "ride_duration.porto") is None  # deleted, never promoted


def test_a_rollback_that_removes_the_first_champion_is_not_a_deletion(client: MlflowClient, tmp_path: Path) -> None:
    first = version(client, tmp_path, run=LISBON, tags=LISBON)
    registry.promote(client, MODEL, first, {"decision": "promoted"})

    registry.rollback(client, MODEL, "health check failed", without_previous="clear")

    assert champion(client) is None
    assert deleted_champion(client, MODEL) is None


# --- drift ---------------------------------------------------------------------------------------------------


def drift(client: MlflowClient, manifest: Manifest, name: str = MODEL) -> dict[str, Any]:
    settings = DriftSettings(
        model_name=name,
        features=["distance_km"],
        target="duration_min",
        thresholds={"psi": {"warn": 0.1, "error": 0.25}},
    )
    return check_drift(client, manifest, settings)


def test_drift_fails_on_another_citys_champion_and_logs_nothing(
    client: MlflowClient, tmp_path: Path, manifest: Manifest
) -> None:
    foreign = version(client, tmp_path, run=PORTO, tags=PORTO)
    client.set_registered_model_alias(MODEL, "champion", foreign)

    record = drift(client, manifest)

    assert (record["status"], record["refused_by"], record["champion_version"]) == ("failed", "champion_lineage", "1")
    assert record["summary"] == record["reason"]
    assert "airflow_ml.city='porto'" in record["reason"]
    assert "mlflow_run_id" not in record
    assert (
        client.search_runs([client.get_experiment_by_name(MODEL).experiment_id], "tags.`airflow_ml.step` = 'drift'")
        == []
    )
    assert champion(client) == foreign


def test_drift_reports_a_deleted_champion_as_deleted(client: MlflowClient, tmp_path: Path, manifest: Manifest) -> None:
    first = version(client, tmp_path, run=LISBON, tags=LISBON)
    registry.promote(client, MODEL, first, {"decision": "promoted"})
    client.delete_model_version(MODEL, first)

    record = drift(client, manifest)

    assert record["status"] == "skipped"
    assert record["reason"] != NO_CHAMPION
    assert record["reason"] == (
        f"no champion: the champion of {MODEL}, v1, was deleted from the registry (its alias went with it); "
        "nothing to compare against"
    )


# --- gate ----------------------------------------------------------------------------------------------------


def test_the_gate_refuses_another_citys_champion_before_scoring_and_moves_nothing(
    client: MlflowClient, tmp_path: Path, manifest: Manifest
) -> None:
    foreign = version(client, tmp_path, run=PORTO, tags=PORTO)
    client.set_registered_model_alias(MODEL, "champion", foreign)
    challenger = version(client, tmp_path, run=LISBON, tags=LISBON)

    with pytest.raises(ForeignChampion, match=f"points at v{foreign}"):
        decide_on(client, manifest, challenger)

    assert champion(client) == foreign
    assert not any(key.startswith("gate.") for key in client.get_model_version(MODEL, challenger).tags)


def test_the_gate_says_a_deleted_champion_was_deleted_and_judges_the_challenger_against_the_naive_baseline(
    client: MlflowClient, manifest: Manifest
) -> None:
    first = trained(client, manifest)
    registry.promote(client, MODEL, first, {"decision": "promoted"})
    second = trained(client, manifest)
    client.delete_model_version(MODEL, first)

    outcome, record = decide_on(client, manifest, second)

    assert outcome.label == "promoted"
    deleted = f"the champion of {MODEL}, v{first}, was deleted from the registry (its alias went with it)"
    assert record["champion_deleted"] == deleted
    assert record["reason"].startswith(f"no champion: {deleted}: the first valid model becomes champion (skill +")
    assert "no champion yet" not in record["reason"]
    # The naive baseline is the mean target of the training rows of the same time split.
    train = time_split(read_snapshot(manifest.uri), "pickup_at", 0.15, 0.15).train
    naive = record["naive_baseline"]
    assert (naive["statistic"], naive["training_rows"]) == ("mean", len(train))
    assert naive["value"] == pytest.approx(float(train["duration_min"].mean()))
    assert naive["score"] > record["challenger_score"]
    assert naive["skill"] == pytest.approx(1 - record["challenger_score"] / naive["score"])
    assert champion(client) == second
    tags = client.get_model_version(MODEL, second).tags
    assert deleted in tags["gate.reason"]  # the record (gate/decision.json) holds champion_deleted
    assert '"statistic": "mean"' in tags["gate.naive_baseline"]


# --- fallback parents ----------------------------------------------------------------------------------------


def test_a_parent_whose_champion_belongs_to_another_template_serves_nobody(
    client: MlflowClient, tmp_path: Path, manifest: Manifest
) -> None:
    parent = "ride_duration.global"
    wrong = version(
        client, tmp_path, parent, run={}, tags={"airflow_ml.template": "late_pickup", "airflow_ml.city": "global"}
    )
    client.set_registered_model_alias(parent, "champion", wrong)
    challenger = version(client, tmp_path, run=LISBON, tags=LISBON)

    with pytest.raises(ForeignChampion, match=r"airflow_ml\.template='late_pickup'"):
        which_model_serves(client, MODEL, parent)
    with pytest.raises(ForeignChampion, match=f"{parent}: the 'champion' alias points at v{wrong}"):
        decide_on(client, manifest, challenger, parent_model=parent)

    assert champion(client) is None  # the city got nothing from it


def test_warm_start_never_boosts_on_from_another_citys_champion(
    client: MlflowClient, tmp_path: Path, manifest: Manifest
) -> None:
    from airflow_ml.ml.warm_start import WARM_START_TAG

    foreign = version(client, tmp_path, run=PORTO, tags=PORTO)
    client.set_registered_model_alias(MODEL, "champion", foreign)

    result = train_and_log(client, manifest, SPEC, SPLIT, experiment=MODEL, tags=LISBON, warm_start_from=MODEL)

    assert result["warm_start"].startswith(f"skipped: champion v{foreign} is not this city's")
    assert client.get_run(result["run_id"]).data.tags[WARM_START_TAG] == result["warm_start"]


def test_a_model_named_by_a_name_pattern_knows_its_city_from_its_first_registration(
    client: MlflowClient, tmp_path: Path
) -> None:
    from airflow_ml.ml.steps.register_step import register

    name = "main.ml.ride_duration_lisbon"  # registry.name_pattern 'main.ml.{template}_{city}': no lineage to parse
    run_id = client.create_run(client.create_experiment(name), tags=LISBON).info.run_id
    (tmp_path / "model").mkdir()
    training = {"run_id": run_id, "model_uri": str(tmp_path / "model")}
    own, _ = register(client, name, training, {"content_hash": "abc", "uri": "file:///snap"}, tags=LISBON)  # type: ignore[arg-type]

    assert LISBON.items() <= client.get_registered_model(name).tags.items()
    registry.promote(client, name, str(own.version), {"decision": "promoted"})
    assert str(this_citys_champion(client, name).version) == str(own.version)  # type: ignore[union-attr]
    foreign = version(client, tmp_path, name, run=PORTO, tags=PORTO)
    registry.promote(client, name, foreign, {"decision": "promoted"})
    with pytest.raises(
        ForeignChampion, match=r"must have airflow_ml\.city='lisbon', airflow_ml\.template='ride_duration'"
    ):
        this_citys_champion(client, name)
    assert client.get_registered_model(name).tags["airflow_ml.city"] == "lisbon"  # a later version never retags it


def test_a_register_retry_tags_the_model_and_a_patterned_name_is_never_parsed(
    client: MlflowClient, tmp_path: Path
) -> None:
    """A try that died between creating the version and tagging the model: the retry tags it."""
    from airflow_ml.ml.steps.register_step import register

    name = "main.ml.ride_lisbon"  # 'main.ml.{template}_{city}': parsing it would say template 'main'
    tags = {"airflow_ml.template": "ride", "airflow_ml.city": "lisbon"}
    run_id = client.create_run(client.create_experiment(name), tags=tags).info.run_id
    (tmp_path / "model").mkdir()
    registry.register_challenger(client, name, str(tmp_path / "model"), run_id, tags)  # the try that died
    assert not client.get_registered_model(name).tags
    assert model_lineage(name) == {}  # never misparsed as template 'main', city 'ml.ride_lisbon'

    training = {"run_id": run_id, "model_uri": str(tmp_path / "model")}
    version, earlier = register(client, name, training, {"content_hash": "a", "uri": "file:///s"}, tags=tags)  # type: ignore[arg-type]

    assert earlier
    assert tags.items() <= client.get_registered_model(name).tags.items()
    registry.promote(client, name, str(version.version), {"decision": "promoted"})
    assert str(this_citys_champion(client, name).version) == str(version.version)  # type: ignore[union-attr]


def test_an_untagged_model_takes_its_lineage_from_its_first_version_not_its_name(
    client: MlflowClient, tmp_path: Path
) -> None:
    """A model made by hand under 'main.ml.{template}_{city}', without tags: its versions say what it is for."""
    from airflow_ml.ml.lineage import registered_lineage

    name = "main.ml.ride_lisbon"
    tags = {"airflow_ml.template": "ride", "airflow_ml.city": "lisbon"}
    own = version(client, tmp_path, name, run=tags, tags=tags)
    registry.promote(client, name, own, {"decision": "promoted"})

    assert registered_lineage(client, name) == tags
    assert str(this_citys_champion(client, name).version) == own  # type: ignore[union-attr]
