"""A registered model name a declared fallback parent would have is the parent's, in every load (issue 16)."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_ml.templates import load_city_configs, load_parent_configs
from tests.support.city_files import line_of
from tests.support.claim_fleets import UNITY, city_of, declares, group_file, recorded_reads, template_on


def _parent_clash(root: Path, pattern: str = UNITY, fallback: str = "{parent: global}") -> tuple[Path, Path]:
    """Template 'ride' with city 'x_global' and 'ride_x' with a global parent: both 'main.ml.ride_x_global'."""
    ride = template_on(root, "ride", pattern)
    declares(template_on(root, "ride_x", pattern), fallback)
    city_of(root, "oslo", template="ride_x")  # a member: the parent is built
    return city_of(root, "x_global", template="ride"), ride


def test_a_city_giving_a_fallback_parents_model_name_is_refused_naming_the_pattern_the_parent_and_the_fix(
    root: Path,
) -> None:

    city, ride = _parent_clash(root)

    configs, errors = load_city_configs(root)
    parents, parent_errors = load_parent_configs(root)

    assert [(p.dag_id, p.model_name, p.members) for p in parents] == [
        ("ride_x.global", "main.ml.ride_x_global", ["oslo"])
    ], "the parent keeps its name and is built"
    assert parent_errors == []
    assert [c.dag_id for c in configs] == ["ride_x.oslo"]
    [error] = errors
    assert (error.file, error.located[0].line) == (str(ride), line_of(ride, "name_pattern"))
    text = str(error)
    assert f"registry.name_pattern: '{UNITY}' gives city 'x_global' of template 'ride' ({city})" in text
    assert "the registered model 'main.ml.ride_x_global', the model of the fallback parent 'ride_x.global'" in text
    ride_x = root / "templates" / "ride_x.yaml"
    assert f"that {ride_x}, line {line_of(ride_x, 'fallback')} declares (fallback.parent)" in text
    assert "give the city another id, or put a '.' between {template} and {city} in the pattern" in text
    assert f"if no city should fall back to 'ride_x.global', set 'fallback: {{parent: none}}' in {ride_x}" in text


def test_every_load_of_part_of_the_fleet_refuses_the_city_as_the_whole_fleet_does(root: Path) -> None:
    city, _ = _parent_clash(root)
    for index in range(6):
        city_of(root, f"x_city_{index}", template="ride")
    whole = load_city_configs(root)

    alone = load_city_configs(root, include=lambda name: name == "x_global")  # a task process of ride.x_global
    halves = [load_city_configs(root, include=lambda name, half=half: (name < "x_d") == half) for half in (True, False)]

    assert (alone[0], [str(e) for e in alone[1]]) == ([], [str(e) for e in whole[1] if str(city) in str(e)])
    assert sorted(c.dag_id for half in halves for c in half[0]) == [c.dag_id for c in whole[0]]
    assert [str(e) for half in halves for e in half[1]] == [str(e) for e in whole[1]]
    assert len(whole[1]) == 1


@pytest.mark.parametrize(
    ("template_fallback", "group_fallback", "declared_in"),
    [
        ("{parent: group}", "", "templates/ride_x.yaml"),  # the template declares every group's parent
        (None, "fallback: {parent: group}\n", "groups/iberia.yaml"),  # the group declares its parent
    ],
)
def test_a_city_giving_a_group_parents_model_name_is_refused(
    root: Path, template_fallback: str | None, group_fallback: str, declared_in: str
) -> None:
    template_on(root, "ride", UNITY)
    ride_x = template_on(root, "ride_x", UNITY)
    if template_fallback:
        declares(ride_x, template_fallback)
    group_file(root, "iberia", group_fallback)
    city = city_of(root, "x_group_iberia", template="ride")  # main.ml.ride_x_group_iberia

    configs, errors = load_city_configs(root)

    assert configs == []
    [error] = errors
    assert f"({city}) the registered model 'main.ml.ride_x_group_iberia'" in str(error)
    assert f"parent 'ride_x.group.iberia' that {root / declared_in}, line " in str(error)


def test_a_group_declaring_the_global_parent_reserves_it_for_every_template(root: Path) -> None:
    template_on(root, "ride", UNITY)
    template_on(root, "ride_x", UNITY)
    group = group_file(root, "iberia", "fallback: {parent: global}\n")  # ride_x's cities of iberia: its global parent
    city_of(root, "x_global", template="ride")

    [error] = load_city_configs(root)[1]

    assert f"parent 'ride_x.global' that {group}, line 1 declares" in str(error)


@pytest.mark.parametrize("fallback", [None, "{parent: none}", "{min_rows: 10}"])
def test_a_fleet_whose_layers_declare_no_parent_keeps_the_city(root: Path, fallback: str | None) -> None:

    template_on(root, "ride", UNITY)
    ride_x = template_on(root, "ride_x", UNITY)
    if fallback:
        declares(ride_x, fallback)
    group_file(root, "iberia")
    city_of(root, "oslo", template="ride_x", extra="group: iberia\n")
    city_of(root, "x_global", template="ride")
    city_of(root, "x_group_iberia", template="ride")

    configs, errors = load_city_configs(root)

    assert errors == []
    assert [c.model_name for c in configs] == [
        "main.ml.ride_x_global",
        "main.ml.ride_x_group_iberia",
        "main.ml.ride_x_oslo",
    ], "no parent is declared, so none can take these names"
    assert load_parent_configs(root) == ([], [])


def test_a_parent_declared_through_a_link_out_of_groups_reserves_nothing(root: Path) -> None:
    template_on(root, "ride", UNITY)
    template_on(root, "ride_x", UNITY)
    outside = root / "outside.yaml"
    outside.write_text("fallback: {parent: group}\n", encoding="utf-8")
    (root / "groups").mkdir()
    (root / "groups" / "iberia.yaml").symlink_to(outside)  # never read: its cities are refused
    city_of(root, "x_group_iberia", template="ride")

    assert [c.city for c in load_city_configs(root)[0]] == ["x_group_iberia"]


# No outcome hangs on clash_possible here: wherever another template's ends give a name back to a parent's id,
# both ends are a prefix and a suffix of that name, so the two templates can clash. The gate spares the per-city
# loop; what this test holds is the reads: no group file, no other city file.
@pytest.mark.parametrize(
    ("pattern", "other"),
    [(None, None), (UNITY, "{template}-{city}")],  # 'main.ml.ride_' and 'ride_x-': no clash possible
)
def test_when_no_clash_is_possible_the_parent_check_reads_no_group_and_no_other_city(
    root: Path, monkeypatch: pytest.MonkeyPatch, pattern: str | None, other: str | None
) -> None:
    template_on(root, "ride", pattern)
    declares(template_on(root, "ride_x", other), "{parent: group}")
    group_file(root, "iberia")  # declares the parent ride_x.group.iberia, which no city of ride can meet
    city = city_of(root, "x_group_iberia", template="ride")
    city_of(root, "oslo", template="ride_x", extra="fallback: {parent: none}\n")
    reads = recorded_reads(monkeypatch)

    whole = load_city_configs(root)
    whole_reads = list(reads)
    reads.clear()
    alone = load_city_configs(root, include=lambda name: name == "x_group_iberia")

    assert whole[1] == []
    assert alone[1] == []
    assert not [p for p in whole_reads if "groups" in p.parts], "no group file: no city names one"
    assert [p for p in reads if "cities" in p.parts or "groups" in p.parts] == [city]


def _two_parents(root: Path, members: bool) -> tuple[Path, Path, Path]:
    """ride.group.global and ride_group.global, both main.ml.ride_group_global; lisbon falls back to the second."""
    ride = declares(template_on(root, "ride", UNITY), "{parent: group}")
    ride_group = declares(template_on(root, "ride_group", UNITY), "{parent: global}")
    group_file(root, "global")
    if members:
        city_of(root, "oslo", extra="group: global\n", template="ride")
    return ride, ride_group, city_of(root, "lisbon", template="ride_group")


@pytest.mark.parametrize("members", [True, False])
def test_the_cities_of_a_parent_whose_name_a_parent_first_by_dag_id_keeps_are_refused_in_every_load(
    root: Path, members: bool
) -> None:
    ride, ride_group, lisbon = _two_parents(root, members)  # with or without a city of ride.group.global

    whole = load_city_configs(root)
    alone = load_city_configs(root, include=lambda name: name == "lisbon")  # lisbon's task process

    assert [c.dag_id for c in whole[0]] == (["ride.oslo"] if members else [])
    assert (alone[0], [str(e) for e in alone[1]]) == ([], [str(e) for e in whole[1]])
    [error] = whole[1]
    assert (error.file, error.located[0].line) == (str(ride_group), line_of(ride_group, "fallback"))
    text = str(error)
    assert f"city 'lisbon' of template 'ride_group' ({lisbon}) would fall back to the parent 'ride_group.global'" in (
        text
    )
    assert "registered model 'main.ml.ride_group_global'" in text
    assert f"fallback parent 'ride.group.global' that {ride}, line {line_of(ride, 'fallback')} declares" in text
    assert "set 'fallback: {parent: none}' here or in the city file, rename group 'global' (groups/global.yaml" in text
    assert "put a '.' between {template} and {city} in the pattern" in text


def test_a_city_of_the_losing_parent_that_turns_its_fallback_off_is_kept(root: Path) -> None:
    _two_parents(root, members=True)
    city_of(root, "porto", template="ride_group", extra="fallback: {parent: none}\n")

    configs, errors = load_city_configs(root)

    assert [c.dag_id for c in configs] == ["ride.oslo", "ride_group.porto"]
    assert [e for e in errors if "porto" in str(e)] == []


def test_a_city_and_a_parent_of_templates_on_different_patterns_meet_and_the_parent_keeps_the_name(
    root: Path,
) -> None:
    template_on(root, "ride", "main.{template}_{city}.m")
    declares(template_on(root, "food", "main.ride_{template}_{city}.m"), "{parent: global}")
    city = city_of(root, "food_global", template="ride")  # main.ride_food_global.m, food's global parent's

    configs, errors = load_city_configs(root)

    assert configs == []
    [error] = errors
    text = str(error)
    assert f"({city}) the registered model 'main.ride_food_global.m', the model of the fallback parent 'food." in text


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("iberia", f"fallback: {{parent: global}}\nregistry:\n  name_pattern: '{UNITY}'\n"),  # its cities refused
        ("Iberia", "fallback: {parent: global}\n"),  # no group name: no city can name it
    ],
)
def test_a_group_that_no_city_can_use_reserves_no_name(root: Path, name: str, text: str) -> None:
    template_on(root, "ride", UNITY)
    template_on(root, "ride_x", UNITY)
    group_file(root, name, text)
    city_of(root, "x_global", template="ride")

    configs, errors = load_city_configs(root)

    assert [c.model_name for c in configs] == ["main.ml.ride_x_global"]
    assert errors == []


def test_a_one_city_task_process_reads_each_group_file_once_at_most_and_no_other_city(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    template_on(root, "ride", UNITY)
    template_on(root, "ride_x", UNITY)  # declares no parent: any group may declare its global one
    for index in range(30):
        group_file(root, f"g{index:02}", "fallback: {parent: global}\n" if index == 17 else "")
    for index in range(20):
        city_of(root, f"x_city_{index}", template="ride", extra=f"group: g{index:02}\n")
        city_of(root, f"city_{index}", template="ride_x", extra=f"group: g{index:02}\n")
    refused = city_of(root, "x_global", template="ride")
    kept = city_of(root, "x_group_g03", template="ride")  # ride_x.group.g03 is not declared
    reads = recorded_reads(monkeypatch)

    alone = load_city_configs(root, include=lambda name: name == "x_global")
    global_reads = list(reads)
    reads.clear()
    other = load_city_configs(root, include=lambda name: name == "x_group_g03")

    assert alone[0] == []
    assert "'ride_x.global' that" in str(alone[1][0])
    assert [c.city for c in other[0]] == ["x_group_g03"]
    assert [p for p in global_reads if "cities" in p.parts] == [refused]
    groups = [p for p in global_reads if "groups" in p.parts]
    assert len(groups) == len(set(groups)) <= 30, "each group file once: a global parent any group may declare"
    assert [p for p in reads if "cities" in p.parts] == [kept]
    assert [p.name for p in reads if "groups" in p.parts] == ["g03.yaml"], "a group parent: its own group only"
