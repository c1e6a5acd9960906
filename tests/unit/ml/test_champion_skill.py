"""The fleet's champion skills (airflow_ml.ml.champion_skill) read from a real MLflow registry (SQLite).

Ten sibling cities' champions promoted through ``model_registry.promote`` with skills around 0.3 (a fixed seed),
fallback parents and a city without a current champion beside them; one paged search reads them all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from airflow_ml.ml import champion_skill
from airflow_ml.ml import model_registry as registry
from tests.support.mlflow_stores import sqlite_registry

TEMPLATE = "ride_duration"
CITY = f"{TEMPLATE}.lisbon"
SKILLS = [float(v) for v in np.random.default_rng(14).normal(0.3, 0.02, 10)]


def promoted(client: Any, name: str, skill: float | None, folder: Path, lineage: tuple[str, str] | None = None) -> str:
    """A new version of ``name`` promoted by a gate record whose naive baseline has ``skill``.

    ``lineage``: the ``(template, city)`` its registration tags the model with (as the register step does).
    """
    registry.ensure_registered(client, name)
    for key, value in zip(("airflow_ml.template", "airflow_ml.city"), lineage or (), strict=False):
        client.set_registered_model_tag(name, key, value)
    version = str(client.create_model_version(name, f"file://{folder}/model").version)
    baseline = None if skill is None else {"skill": skill, "score": 10.0}
    registry.promote(client, name, version, {"decision": "promoted", "naive_baseline": baseline})
    return version


@pytest.fixture
def fleet(tmp_path: Path) -> Any:
    client = sqlite_registry(tmp_path)
    for index, skill in enumerate(SKILLS):
        promoted(client, f"{TEMPLATE}.city{index}", skill, tmp_path)
    promoted(client, CITY, 0.31, tmp_path)  # the city itself
    promoted(client, f"{TEMPLATE}.global", 0.5, tmp_path)  # fallback parents are not siblings
    promoted(client, f"{TEMPLATE}.group.pt", 0.5, tmp_path)
    promoted(client, "ride_durations.porto", 0.5, tmp_path)  # another template, and LIKE's _ matching any char
    promoted(client, "rideXduration.porto", 0.5, tmp_path)
    return client


def test_the_siblings_are_the_templates_other_cities_champions_read_in_pages(fleet: Any, monkeypatch: Any) -> None:
    calls: list[Any] = []
    search = fleet.search_registered_models

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs.get("page_token"))
        return search(*args, **kwargs)

    monkeypatch.setattr(champion_skill, "_PAGE", 4)
    monkeypatch.setattr(fleet, "search_registered_models", counted)

    skills = champion_skill.sibling_skills(fleet, TEMPLATE, exclude={CITY}, not_cities=("global",))

    assert skills == {f"{TEMPLATE}.city{i}": pytest.approx(s) for i, s in enumerate(SKILLS)}
    assert len(calls) == 4
    assert calls[0] is None


def test_a_deleted_champion_and_a_champion_without_skill_are_no_siblings(fleet: Any, tmp_path: Path) -> None:
    fleet.delete_model_version(f"{TEMPLATE}.city0", "1")  # its alias goes with it; the tag stays, stale
    promoted(fleet, f"{TEMPLATE}.city1", None, tmp_path)  # promoted without the naive baseline: no skill

    skills = champion_skill.sibling_skills(fleet, TEMPLATE, exclude={CITY}, not_cities=("global",))

    assert set(skills) == {f"{TEMPLATE}.city{i}" for i in range(2, 10)}
    assert champion_skill.CHAMPION_SKILL_TAG not in fleet.get_registered_model(f"{TEMPLATE}.city1").tags


def test_the_history_is_the_citys_promoted_versions_skills(fleet: Any, tmp_path: Path) -> None:
    for skill in (0.9, 0.95):
        promoted(fleet, CITY, skill, tmp_path)
    refused = str(fleet.create_model_version(CITY, f"file://{tmp_path}/model").version)
    registry.tag_decision(fleet, CITY, refused, {"decision": "kept", "naive_baseline": {"skill": 0.1}})

    assert champion_skill.history_skills(fleet, CITY) == [0.31, 0.9, 0.95]
    assert champion_skill.history_skills(fleet, CITY, exclude_version="3") == [0.31, 0.9]


def test_skill_of_reads_a_record_or_a_tag_and_refuses_what_is_not_a_finite_skill() -> None:
    assert champion_skill.skill_of({"skill": 0.25}) == 0.25
    assert champion_skill.skill_of(json.dumps({"skill": 0.25})) == 0.25
    assert champion_skill.skill_of({"skill": float("nan")}) is None
    assert champion_skill.skill_of("not json") is None
    assert champion_skill.skill_of(None) is None


def test_siblings_under_a_three_part_name_pattern_are_found_and_its_parents_left_out(tmp_path: Path) -> None:
    client = sqlite_registry(tmp_path)
    pattern = "main.ml.{template}_{city}"
    for index in range(3):
        promoted(client, f"main.ml.{TEMPLATE}_city{index}", 0.3, tmp_path, (TEMPLATE, f"city{index}"))
    promoted(client, f"main.ml.{TEMPLATE}_lisbon", 0.31, tmp_path, (TEMPLATE, "lisbon"))  # the city itself
    promoted(client, f"main.ml.{TEMPLATE}_global", 0.5, tmp_path, (TEMPLATE, "global"))  # the parents
    promoted(client, f"main.ml.{TEMPLATE}_group_pt", 0.5, tmp_path, (TEMPLATE, "group.pt"))
    promoted(client, f"{TEMPLATE}.porto", 0.5, tmp_path, (TEMPLATE, "porto"))  # the default name: not this pattern
    promoted(client, f"main.ml.{TEMPLATE}_faro", 0.5, tmp_path)  # made by hand, no lineage: nobody's sibling

    skills = champion_skill.sibling_skills(
        client, TEMPLATE, exclude={f"main.ml.{TEMPLATE}_lisbon"}, not_cities=("global",), name_pattern=pattern
    )

    assert set(skills) == {f"main.ml.{TEMPLATE}_city{i}" for i in range(3)}


def test_a_template_whose_name_starts_another_templates_takes_none_of_its_models(tmp_path: Path) -> None:
    # 'main.ml.{template}_{city}': template ride's prefix main.ml.ride_ also starts every ride_duration model.
    client = sqlite_registry(tmp_path)
    pattern = "main.ml.{template}_{city}"
    promoted(client, "main.ml.ride_porto", 0.31, tmp_path, ("ride", "porto"))
    promoted(client, "main.ml.ride_lisbon", 0.3, tmp_path, ("ride", "lisbon"))
    promoted(client, "main.ml.ride_duration_oslo", 0.9, tmp_path, ("ride_duration", "oslo"))
    promoted(client, "main.ml.ride_duration_group_pt", 0.9, tmp_path, ("ride_duration", "group.pt"))

    skills = champion_skill.sibling_skills(client, "ride", exclude={"main.ml.ride_lisbon"}, name_pattern=pattern)

    assert skills == {"main.ml.ride_porto": 0.31}
