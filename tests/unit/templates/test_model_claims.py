"""Which city file keeps a registered model name several files claim: one rule for every load (issue 16)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from airflow_ml.templates import load_city_configs
from airflow_ml.templates import loader as loader_module
from airflow_ml.templates.loader import _Layers
from airflow_ml.templates.model_claims import clash_possible, name_patterns, outside_claims
from airflow_ml.templates.registry_spec import DEFAULT_NAME_PATTERN
from tests.support.city_files import write_city

UNITY = "main.ml.{template}_{city}"
JOINED = "{template}_{city}"


def _template(root: Path, name: str, pattern: str | None) -> Path:
    """A copy of ride_duration named ``name``, on ``pattern`` (the default when None)."""
    text = (root / "templates" / "ride_duration.yaml").read_text(encoding="utf-8")
    path = root / "templates" / f"{name}.yaml"
    path.write_text(text + (f"\nregistry:\n  name_pattern: '{pattern}'\n" if pattern else ""), encoding="utf-8")
    return path


def _city(root: Path, city: str, template: str = "ride_duration", folder: str = "", extra: str = "") -> Path:
    (root / "cities" / folder).mkdir(exist_ok=True)
    return write_city(root, f"{folder}{city}", f"city: {city}\ntemplate: {template}\n{extra}")


@pytest.mark.parametrize(
    "patterns",
    [
        {"ride": DEFAULT_NAME_PATTERN, "ride_x": DEFAULT_NAME_PATTERN},  # one dot splits a name back into its pair
        {"ride": DEFAULT_NAME_PATTERN, "ride_x": UNITY},  # a custom pattern never gives '<a>.<b>' names
        {"ride": UNITY, "food": UNITY},  # 'main.ml.ride_' and 'main.ml.food_': neither starts the other
        {"ride": "{template}.{city}.m", "ride_x": "{template}-{city}"},  # 'ride.' vs 'ride_x-'
        {"ride": JOINED},  # one template: one name per city id
    ],
)
def test_templates_whose_names_cannot_meet_make_no_clash_possible(patterns: dict[str, str]) -> None:
    assert clash_possible(patterns) is False


@pytest.mark.parametrize(
    "patterns",
    [
        {"a_b": JOINED, "a": JOINED},  # a_b + c and a + b_c
        {"ride": UNITY, "ride_x": UNITY},  # ride + x_oslo and ride_x + oslo
        {"ride": "{city}_{template}", "x_ride": "{city}_{template}"},  # oslo_x + ride and oslo + x_ride
    ],
)
def test_custom_patterns_whose_ends_overlap_make_a_clash_possible(patterns: dict[str, str]) -> None:
    assert clash_possible(patterns) is True


def test_the_patterns_are_the_templates_over_the_defaults_and_a_refused_one_claims_nothing(root: Path) -> None:
    (root / "defaults.yaml").write_text(f"registry:\n  name_pattern: '{JOINED}'\n", encoding="utf-8")
    _template(root, "unity", UNITY)
    (root / "templates" / "broken.yaml").write_text("registry: [1]\n", encoding="utf-8")
    (root / "templates" / "refused.yaml").write_text("registry: {name_pattern: '{city}'}\n", encoding="utf-8")

    assert name_patterns(root, _Layers().data) == {"ride_duration": JOINED, "unity": UNITY}


def _reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every file the loader reads from now on (its own reader, recorded)."""
    reads: list[Path] = []
    read = loader_module._read

    def recorded(path: Path) -> Any:
        reads.append(path)
        return read(path)

    monkeypatch.setattr(loader_module, "_read", recorded)
    return reads


def test_no_city_file_is_read_when_no_clash_is_possible(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _template(root, "ride", UNITY)  # ride_duration keeps the default pattern: no name of one meets the other's
    oslo = _city(root, "oslo")
    _city(root, "duration_oslo", template="ride")
    reads = _reads(monkeypatch)

    def validate(path: Path) -> None:
        raise AssertionError(f"{path} validated")

    found = outside_claims(root, [oslo], lambda city: city == "oslo", _Layers().data, validate)  # type: ignore[arg-type]

    assert found == {}
    assert sorted(p.name for p in reads) == ["ride.yaml", "ride_duration.yaml"], "the templates only"


def test_a_partial_load_where_a_clash_is_possible_reads_its_files_and_the_few_that_could_claim_their_names(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _template(root, "ride", JOINED)  # a copy of ride_duration before its pattern is added
    _template(root, "ride_duration", JOINED)
    _template(root, "food", JOINED)  # 'food_' starts no name of ride_duration's: no candidate
    keeper = _city(root, "duration_oslo", template="ride")  # ride_duration_oslo, first in path order
    oslo = _city(root, "oslo")
    for index in range(10):
        _city(root, f"city_{index}")
        _city(root, f"duration_city_{index}", template="food")
    whole = load_city_configs(root)
    reads = _reads(monkeypatch)

    configs, errors = load_city_configs(root, include=lambda city: city == "oslo")

    assert configs == []
    assert [str(e) for e in errors] == [str(e) for e in whole[1] if str(oslo) in str(e)]
    assert sorted(p for p in reads if "cities" in p.parts) == [keeper, oslo]


@pytest.mark.timeout(20, method="signal")  # no Airflow task runs here to clear the alarm
@pytest.mark.parametrize("kind", ["fifo", "link to /dev/zero"])
def test_defaults_that_are_no_regular_file_are_never_read_and_hang_no_load(
    root: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    _template(root, "ride", JOINED)  # a clash is possible: the pass reads the layer files
    _template(root, "ride_duration", JOINED)
    _city(root, "duration_oslo", template="ride")
    oslo = _city(root, "oslo")
    defaults = root / "defaults.yaml"
    if kind == "fifo":
        os.mkfifo(defaults)  # an open for reading would wait for a writer forever
    else:
        defaults.symlink_to("/dev/zero")  # a read would never end
    whole = load_city_configs(root)
    reads = _reads(monkeypatch)

    configs, errors = load_city_configs(root, include=lambda city: city == "oslo")

    assert defaults not in reads
    assert configs == []
    assert [str(e) for e in errors] == [str(e) for e in whole[1] if str(oslo) in str(e)]


@pytest.mark.timeout(20, method="signal")  # no Airflow task runs here to clear the alarm
def test_a_template_linking_out_of_templates_is_never_read(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _template(root, "ride_duration", JOINED)
    outside = root / "outside.yaml"  # would make 'ride' and 'ride_duration' clash, if it were read
    outside.write_text((root / "templates" / "ride_duration.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    link = root / "templates" / "ride.yaml"
    link.symlink_to(outside)
    _city(root, "duration_oslo", template="ride")  # refused by the loader: its template links out
    _city(root, "oslo")
    whole = load_city_configs(root)
    reads = _reads(monkeypatch)

    patterns = name_patterns(root, _Layers().data)
    alone = load_city_configs(root, include=lambda city: city == "oslo")

    assert patterns == {"ride_duration": JOINED}
    assert link not in reads
    assert outside not in reads
    assert [c.city for c in alone[0]] == ["oslo"]
    assert alone[0] == [c for c in whole[0] if c.city == "oslo"]


def test_a_city_whose_name_a_file_left_out_keeps_earlier_is_refused_naming_both_files(root: Path) -> None:
    _template(root, "ride", JOINED)  # a copy of ride_duration before its pattern is added
    _template(root, "ride_duration", JOINED)
    keeper = _city(root, "duration_oslo", template="ride")  # ride_duration_oslo, first in path order
    loser = _city(root, "oslo")  # ride_duration_oslo too

    configs, errors = load_city_configs(root, include=lambda city: city == "oslo")

    assert configs == []
    [error] = errors
    text = str(error)
    assert f"({loser}) the registered model 'ride_duration_oslo'" in text
    assert f"already the model of city 'duration_oslo' of template 'ride' ({keeper})" in text
    assert "put a '.' between {template} and {city}" in text
    assert load_city_configs(root, include=lambda city: city == "duration_oslo") == (
        load_city_configs(root)[0],
        [],
    ), "the keeper loads alone as in the whole fleet"


def test_the_first_valid_file_in_path_order_keeps_the_name_a_broken_one_claims_nothing(root: Path) -> None:
    _template(root, "ride", JOINED)  # a copy of ride_duration before its pattern is added
    _template(root, "ride_duration", JOINED)
    broken = _city(root, "duration_oslo", template="ride", folder="a/", extra="not_a_field: 1\n")
    later = _city(root, "duration_oslo", template="ride", folder="b/")  # the first valid claimant
    _city(root, "oslo")

    whole = load_city_configs(root)
    alone = load_city_configs(root, include=lambda city: city == "oslo")

    assert [c.city for c in whole[0]] == ["duration_oslo"]
    assert whole[1][0].file == str(broken)
    assert [str(e) for e in alone[1]] == [str(e) for e in whole[1][1:]], "oslo's error, as the whole fleet says it"
    assert str(later) in str(alone[1][0])


def _declares(template: Path, fallback: str) -> Path:
    with template.open("a", encoding="utf-8") as handle:
        handle.write(f"fallback: {fallback}\n")
    return template


def _group(root: Path, name: str, text: str = "") -> Path:
    (root / "groups").mkdir(exist_ok=True)
    path = root / "groups" / f"{name}.yaml"
    path.write_text(text or "training: {num_boost_round: 50}\n", encoding="utf-8")
    return path


def _parent_clash(root: Path, pattern: str = UNITY, fallback: str = "{parent: global}") -> tuple[Path, Path]:
    """Template 'ride' with city 'x_global' and 'ride_x' with a global parent: both 'main.ml.ride_x_global'."""
    ride = _template(root, "ride", pattern)
    _declares(_template(root, "ride_x", pattern), fallback)
    _city(root, "oslo", template="ride_x")  # a member: the parent is built
    return _city(root, "x_global", template="ride"), ride


def test_a_city_giving_a_fallback_parents_model_name_is_refused_naming_the_pattern_the_parent_and_the_fix(
    root: Path,
) -> None:
    from airflow_ml.templates import load_parent_configs
    from tests.support.city_files import line_of

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
    assert f"that {root / 'templates' / 'ride_x.yaml'} declares (fallback.parent)" in text
    assert "give the city another id, or put a '.' between {template} and {city} in the pattern" in text


def test_every_load_of_part_of_the_fleet_refuses_the_city_as_the_whole_fleet_does(root: Path) -> None:
    city, _ = _parent_clash(root)
    for index in range(6):
        _city(root, f"x_city_{index}", template="ride")
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
    _template(root, "ride", UNITY)
    ride_x = _template(root, "ride_x", UNITY)
    if template_fallback:
        _declares(ride_x, template_fallback)
    _group(root, "iberia", group_fallback)
    city = _city(root, "x_group_iberia", template="ride")  # main.ml.ride_x_group_iberia

    configs, errors = load_city_configs(root)

    assert configs == []
    [error] = errors
    assert f"({city}) the registered model 'main.ml.ride_x_group_iberia'" in str(error)
    assert f"parent 'ride_x.group.iberia' that {root / declared_in} declares" in str(error)


def test_a_group_declaring_the_global_parent_reserves_it_for_every_template(root: Path) -> None:
    _template(root, "ride", UNITY)
    _template(root, "ride_x", UNITY)
    group = _group(root, "iberia", "fallback: {parent: global}\n")  # ride_x's cities of iberia: its global parent
    _city(root, "x_global", template="ride")

    [error] = load_city_configs(root)[1]

    assert f"parent 'ride_x.global' that {group} declares" in str(error)


@pytest.mark.parametrize("fallback", [None, "{parent: none}", "{min_rows: 10}"])
def test_a_fleet_whose_layers_declare_no_parent_keeps_the_city(root: Path, fallback: str | None) -> None:
    from airflow_ml.templates import load_parent_configs

    _template(root, "ride", UNITY)
    ride_x = _template(root, "ride_x", UNITY)
    if fallback:
        _declares(ride_x, fallback)
    _group(root, "iberia")
    _city(root, "oslo", template="ride_x", extra="group: iberia\n")
    _city(root, "x_global", template="ride")
    _city(root, "x_group_iberia", template="ride")

    configs, errors = load_city_configs(root)

    assert errors == []
    assert [c.model_name for c in configs] == [
        "main.ml.ride_x_global",
        "main.ml.ride_x_group_iberia",
        "main.ml.ride_x_oslo",
    ], "no parent is declared, so none can take these names"
    assert load_parent_configs(root) == ([], [])


def test_a_parent_declared_through_a_link_out_of_groups_reserves_nothing(root: Path) -> None:
    _template(root, "ride", UNITY)
    _template(root, "ride_x", UNITY)
    outside = root / "outside.yaml"
    outside.write_text("fallback: {parent: group}\n", encoding="utf-8")
    (root / "groups").mkdir()
    (root / "groups" / "iberia.yaml").symlink_to(outside)  # never read: its cities are refused
    _city(root, "x_group_iberia", template="ride")

    assert [c.city for c in load_city_configs(root)[0]] == ["x_group_iberia"]


@pytest.mark.parametrize(
    ("pattern", "other"),
    [(None, None), (UNITY, "{template}-{city}")],  # 'main.ml.ride_' and 'ride_x-': no clash possible
)
def test_when_no_clash_is_possible_the_parent_check_reads_no_group_and_no_other_city(
    root: Path, monkeypatch: pytest.MonkeyPatch, pattern: str | None, other: str | None
) -> None:
    _template(root, "ride", pattern)
    _declares(_template(root, "ride_x", other), "{parent: group}")
    _group(root, "iberia")  # declares the parent ride_x.group.iberia, which no city of ride can meet
    city = _city(root, "x_group_iberia", template="ride")
    _city(root, "oslo", template="ride_x", extra="fallback: {parent: none}\n")
    reads = _reads(monkeypatch)

    whole = load_city_configs(root)
    whole_reads = list(reads)
    reads.clear()
    alone = load_city_configs(root, include=lambda name: name == "x_group_iberia")

    assert whole[1] == []
    assert alone[1] == []
    assert not [p for p in whole_reads if "groups" in p.parts], "no group file: no city names one"
    assert [p for p in reads if "cities" in p.parts or "groups" in p.parts] == [city]


def test_two_fallback_parents_giving_one_model_name_build_one_dag_and_the_other_is_refused(root: Path) -> None:
    from airflow_ml.templates import load_parent_configs
    from tests.support.city_files import line_of

    _declares(_template(root, "ride", UNITY), "{parent: group}")
    ride_group = _declares(_template(root, "ride_group", UNITY), "{parent: global}")
    _group(root, "global")  # ride.group.global and ride_group.global: both main.ml.ride_group_global
    _city(root, "oslo", extra="group: global\n", template="ride")
    _city(root, "lisbon", template="ride_group")

    parents, errors = load_parent_configs(root)

    assert [p.dag_id for p in parents] == ["ride.group.global"]
    [error] = errors
    assert (error.file, error.located[0].line) == (str(ride_group), line_of(ride_group, "name_pattern"))
    assert "gives the fallback parent 'ride_group.global' the registered model 'main.ml.ride_group_global'" in str(
        error
    )
    assert "already the model of the fallback parent 'ride.group.global'" in str(error)
