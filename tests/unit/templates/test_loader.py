"""The templates loader (airflow_ml.templates.loader): loading, merging the layers, errors that point at the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from airflow_ml.exceptions import ConfigError
from airflow_ml.templates import CityConfig, load_city_configs, load_city_file, load_template
from airflow_ml.templates.loader import deep_merge
from airflow_ml.templates.source_pattern import check_location_pattern
from tests.support.city_files import (
    REPO_TEMPLATES,
    assert_points_at,
    config_error,
    line_of,
    template_data,
    write_city,
    write_file,
)

# --- the repo's own templates --------------------------------------------------------------------------------


def test_repo_templates_load_three_cities_without_errors() -> None:
    configs, errors = load_city_configs(REPO_TEMPLATES)

    assert errors == []
    stems = sorted(p.stem for p in (REPO_TEMPLATES / "cities").glob("*.y*ml"))
    assert len(configs) == 3
    assert [c.city for c in configs] == stems
    assert {c.dag_id for c in configs} == {f"ride_duration.{s}" for s in stems}
    assert all(isinstance(c, CityConfig) for c in configs)
    assert all(c.model_name == c.dag_id for c in configs)


def test_city_overrides_merge_over_the_template() -> None:
    configs, _ = load_city_configs(REPO_TEMPLATES)
    lisbon = next(c for c in configs if c.city == "lisbon")
    template = template_data()
    city_file = yaml.safe_load((REPO_TEMPLATES / "cities" / "lisbon.yaml").read_text(encoding="utf-8"))

    assert lisbon.training.params.num_leaves == 15
    assert lisbon.training.params.num_leaves == city_file["training"]["params"]["num_leaves"]
    # a sibling the city does not set keeps the template's value (mappings merge key by key)
    assert lisbon.training.params.learning_rate == template["training"]["params"]["learning_rate"]
    assert lisbon.training.num_boost_round == template["training"]["num_boost_round"]
    assert lisbon.gate.min_improvement == city_file["gate"]["min_improvement"]
    assert lisbon.gate.improvement_mode == template["gate"]["improvement_mode"]
    assert lisbon.dataset.features == template["dataset"]["features"]
    assert lisbon.dag.schedule == template["dag"]["schedule"]


def test_cities_differ_only_where_their_files_say() -> None:
    configs = {c.city: c for c in load_city_configs(REPO_TEMPLATES)[0]}
    berlin_file = yaml.safe_load((REPO_TEMPLATES / "cities" / "berlin.yaml").read_text(encoding="utf-8"))

    assert configs["berlin"].dag.schedule == berlin_file["dag"]["schedule"]
    assert configs["berlin"].training.params.num_leaves == template_data()["training"]["params"]["num_leaves"]
    assert configs["berlin"].title == berlin_file["display_name"]


def test_minimal_city_equals_the_template(root: Path) -> None:
    path = write_city(root, "oslo", "city: oslo\ntemplate: ride_duration\n")

    city = load_city_file(path, root / "templates")
    template = load_template(root / "templates" / "ride_duration.yaml")

    assert city.dag_id == "ride_duration.oslo"
    assert city.title == "oslo"
    assert city.model_dump(exclude={"city", "template", "group", "display_name"}) == template.model_dump(
        exclude={"template"}
    )


def test_lists_replace_rather_than_append(root: Path) -> None:
    path = write_city(
        root,
        "oslo",
        "city: oslo\ntemplate: ride_duration\ndataset:\n  features: [distance_km, pickup_zone]\n",
    )

    city = load_city_file(path, root / "templates")

    assert city.dataset.features == ["distance_km", "pickup_zone"]
    assert city.dataset.target == template_data()["dataset"]["target"]


def test_deep_merge_does_not_mutate_its_inputs() -> None:
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    override = {"a": {"c": [3]}, "e": 2}

    merged = deep_merge(base, override)

    assert merged == {"a": {"b": 1, "c": [3]}, "d": 1, "e": 2}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert override == {"a": {"c": [3]}, "e": 2}


def test_unknown_yaml_tag_is_a_config_error(root: Path) -> None:
    path = write_city(root, "oslo", "city: oslo\ntemplate: ride_duration\ndisplay_name: !env NAME\n")

    exc = config_error(path, root)

    assert_points_at(exc, path, line_of(path, "!env"), "!env")


# --- errors ---------------------------------------------------------------------------------------------------


def test_unknown_template_suggests_the_closest(root: Path) -> None:
    path = write_city(root, "oslo", "city: oslo\n\ntemplate: ride_duraton\n")

    exc = config_error(path, root)

    assert_points_at(exc, path, line_of(path, "template:"), "'ride_duraton'", "did you mean 'ride_duration'?")


def test_missing_template_key_says_how_to_add_it(root: Path) -> None:
    path = write_city(root, "oslo", "city: oslo\n")

    exc = config_error(path, root)

    assert "template: <name>" in str(exc)


def test_invalid_city_id_suggests_a_slug(root: Path) -> None:
    # the file name equals the city so that only the id itself is wrong
    path = write_city(root, "São Paulo", 'city: "São Paulo"\ntemplate: ride_duration\n')

    exc = config_error(path, root)

    assert_points_at(exc, path, line_of(path, "city:"), "'São Paulo'", "'sao_paulo'", "display_name")


def test_invalid_city_id_in_a_well_named_file_is_reported_as_invalid_id(root: Path) -> None:
    path = write_city(root, "sao_paulo", 'city: "São Paulo"\ntemplate: ride_duration\n')

    exc = config_error(path, root)

    assert "not a valid city id" in str(exc)
    assert "display_name" in str(exc)


def test_city_must_match_file_name(root: Path) -> None:
    path = write_city(root, "oslo", "template: ride_duration\ncity: bergen\n")

    exc = config_error(path, root)

    assert_points_at(exc, path, line_of(path, "city:"), "'bergen'", "'oslo'", "rename")


def test_invalid_yaml_names_the_line(root: Path) -> None:
    path = write_city(root, "oslo", "city: oslo\ntemplate: ride_duration\ndisplay_name: @oslo\n")

    exc = config_error(path, root)

    assert_points_at(exc, path, line_of(path, "@oslo"), "invalid YAML", "fix")


def test_empty_file_is_an_error(root: Path) -> None:
    path = write_city(root, "oslo", "")

    exc = config_error(path, root)

    assert str(path) in str(exc)
    assert "empty" in str(exc)


def test_top_level_must_be_a_mapping(root: Path) -> None:
    path = write_city(root, "oslo", "- city: oslo\n")

    exc = config_error(path, root)

    assert "mapping" in str(exc)


def test_missing_file_is_a_config_error(root: Path) -> None:
    exc = config_error(root / "cities" / "nowhere.yaml", root)

    assert "does not exist" in str(exc)


def test_several_problems_are_reported_together(root: Path) -> None:
    path = write_city(
        root,
        "oslo",
        "city: oslo\ntemplate: ride_duration\ntraining:\n  seed: -1\n  params:\n    num_leaves: 1\n",
    )

    exc = config_error(path, root)

    assert len(exc.problems) == 2
    assert f"line {line_of(path, 'seed')}" in exc.problems[0] or f"line {line_of(path, 'seed')}" in exc.problems[1]
    assert any("training.params.num_leaves" in p for p in exc.problems)
    assert any("training.seed" in p for p in exc.problems)


def test_template_name_must_match_its_file(root: Path) -> None:
    template = root / "templates" / "ride_duration.yaml"
    template.write_text("template: other\n" + template.read_text(encoding="utf-8"), encoding="utf-8")

    with pytest.raises(ConfigError) as info:
        load_template(template)

    assert "'other'" in str(info.value)
    assert "'ride_duration'" in str(info.value)


def test_duplicate_city_is_reported_once_and_the_first_kept(root: Path) -> None:
    write_city(root, "berlin", "city: berlin\ntemplate: ride_duration\n")
    (root / "cities" / "germany").mkdir()
    second = write_city(root, "germany/berlin", "city: berlin\ntemplate: ride_duration\n")

    configs, errors = load_city_configs(root)

    assert [c.city for c in configs] == ["berlin"]
    assert len(errors) == 1
    assert errors[0].file == str(second)
    assert "'berlin'" in str(errors[0])
    assert "already given by" in str(errors[0])


def test_a_broken_city_never_hides_the_others(root: Path) -> None:
    write_city(root, "berlin", "city: berlin\ntemplate: ride_duration\n")
    broken = write_city(root, "lisbon", "city: lisbon\ntemplate: ride_duration\ntrainig: {}\n")
    write_city(root, "oslo", "city: oslo\ntemplate: ride_duration\ngate:\n  min_improvement: 0.02\n")
    empty = write_city(root, "porto", "")
    (root / "cities" / "notes.txt").write_text("not a city", encoding="utf-8")

    configs, errors = load_city_configs(root)

    assert [c.city for c in configs] == ["berlin", "oslo"]
    assert next(c for c in configs if c.city == "oslo").gate.min_improvement == 0.02
    assert sorted(e.file for e in errors) == sorted([str(broken), str(empty)])
    assert all(isinstance(e, ConfigError) for e in errors)


@pytest.mark.parametrize(
    "content", [b"city: porto\ntemplate: ride_duration\ndisplay_name: !env NAME\n", b"city: porto\n# \xff\xfe\n"]
)
def test_an_unreadable_city_never_hides_the_others(root: Path, content: bytes) -> None:
    write_city(root, "berlin", "city: berlin\ntemplate: ride_duration\n")
    broken = root / "cities" / "porto.yaml"
    broken.write_bytes(content)

    configs, errors = load_city_configs(root)

    assert [c.city for c in configs] == ["berlin"]
    assert [e.file for e in errors] == [str(broken)]


def test_no_cities_gives_no_configs_and_no_errors(root: Path) -> None:
    assert load_city_configs(root) == ([], [])


def test_configs_are_immutable(root: Path) -> None:
    path = write_city(root, "oslo", "city: oslo\ntemplate: ride_duration\n")
    city = load_city_file(path, root / "templates")

    with pytest.raises(ValueError, match="frozen"):
        city.city = "bergen"  # type: ignore[misc]


def test_precedence_is_defaults_then_template_then_group_then_city(root: Path) -> None:
    write_file(
        root / "defaults.yaml", "dag:\n  owner: platform\n  retries: 3\n  tags: [org]\ngate:\n  min_improvement: 0.2\n"
    )
    write_file(root / "groups" / "portugal.yaml", "dag:\n  retries: 2\ntraining:\n  params:\n    num_leaves: 20\n")
    write_file(root / "cities" / "porto.yaml", "city: porto\ntemplate: ride_duration\ngroup: portugal\n")
    write_file(
        root / "cities" / "lisbon.yaml",
        "city: lisbon\ntemplate: ride_duration\ngroup: portugal\ndag:\n  retries: 0\n",
    )

    configs, errors = load_city_configs(root)

    assert errors == []
    porto, lisbon = {c.city: c for c in configs}["porto"], {c.city: c for c in configs}["lisbon"]
    assert porto.dag.owner == "ml-platform"  # the template overrides the shared default
    assert porto.gate.min_improvement == 0.005  # likewise
    assert porto.dag.retries == 2  # the group overrides the template
    assert porto.training.params.num_leaves == 20
    assert porto.training.params.learning_rate == 0.08  # untouched template value survives the merge
    assert porto.group == "portugal"
    assert lisbon.dag.retries == 0  # the city overrides its group


def test_defaults_fill_what_the_template_leaves_out(root: Path) -> None:
    template = yaml.safe_load((root / "templates" / "ride_duration.yaml").read_text())
    del template["dag"]["owner"]
    write_file(root / "templates" / "ride_duration.yaml", yaml.safe_dump(template))
    write_file(root / "defaults.yaml", "dag:\n  owner: data-platform\n")
    write_file(root / "cities" / "porto.yaml", "city: porto\ntemplate: ride_duration\n")

    configs, errors = load_city_configs(root)

    assert errors == []
    assert configs[0].dag.owner == "data-platform"


def test_an_error_in_a_group_names_the_group_file_and_line(root: Path) -> None:
    write_file(root / "groups" / "portugal.yaml", "dag:\n  retries: 1\n  retires: 2\n")
    write_file(root / "cities" / "porto.yaml", "city: porto\ntemplate: ride_duration\ngroup: portugal\n")

    _, errors = load_city_configs(root)

    message = str(errors[0])
    assert "porto.yaml" in message
    assert "portugal.yaml line 3" in message
    assert "did you mean 'retries'?" in message


def test_unknown_group_is_named_with_a_suggestion(root: Path) -> None:
    write_file(root / "groups" / "portugal.yaml", "dag:\n  retries: 1\n")
    write_file(root / "cities" / "porto.yaml", "city: porto\ntemplate: ride_duration\ngroup: portugl\n")

    _, errors = load_city_configs(root)

    assert "no group named 'portugl'" in str(errors[0])
    assert "did you mean 'portugal'?" in str(errors[0])


def test_a_layer_file_named_by_many_cities_is_checked_once_per_load_and_again_by_the_next(root: Path) -> None:
    write_file(root / "groups" / "portugal.yaml", "dag:\n  retries: 1\n")
    for city in ("porto", "lisbon", "faro"):
        write_file(root / "cities" / f"{city}.yaml", f"city: {city}\ntemplate: ride_duration\ngroup: portugal\n")
    write_file(root / "cities" / "braga.yaml", "city: braga\ntemplate: ride_duration\ngroup: portugl\n")

    configs, errors = load_city_configs(root)

    assert [c.city for c in configs] == ["faro", "lisbon", "porto"]  # one check serves every city naming it
    assert all(c.dag.retries == 1 for c in configs)
    assert len(errors) == 1
    assert "no group named 'portugl'" in str(errors[0])  # a failed check is never remembered as a pass
    (root / "groups" / "portugal.yaml").unlink()
    configs, errors = load_city_configs(root)  # a new load looks again
    assert configs == []
    assert sum("no group named 'portugal'" in str(e) for e in errors) == 3


def test_cities_in_subfolders_load_and_clashing_ids_are_refused(root: Path) -> None:
    write_file(root / "cities" / "client_a" / "berlin.yaml", "city: berlin\ntemplate: ride_duration\n")
    write_file(root / "cities" / "client_b" / "berlin.yaml", "city: berlin\ntemplate: ride_duration\n")
    write_file(root / "cities" / "client_b" / "hamburg.yaml", "city: hamburg\ntemplate: ride_duration\n")

    configs, errors = load_city_configs(root)

    assert [c.dag_id for c in configs] == ["ride_duration.berlin", "ride_duration.hamburg"]
    assert len(errors) == 1
    assert "client_b/berlin.yaml" in errors[0].file
    assert "already given by" in str(errors[0])
    assert "client_a/berlin.yaml" in str(errors[0])


@pytest.mark.parametrize(
    ("city", "suggestion"),
    [("São Paulo", "sao_paulo"), ("new york", "new_york"), ("../x", "x"), ("9lives", "city_9lives")],
)
def test_unsafe_city_ids_are_refused_with_a_safe_suggestion(root: Path, city: str, suggestion: str) -> None:
    write_file(root / "cities" / "x.yaml", f"city: {json.dumps(city)}\ntemplate: ride_duration\n")

    _, errors = load_city_configs(root)

    assert f"use {suggestion!r}" in str(errors[0])


def test_source_patterns_take_only_known_placeholders(root: Path) -> None:
    write_file(
        root / "cities" / "porto.yaml",
        'city: porto\ntemplate: ride_duration\ndataset:\n  source: "{data_root}/{bucket}/{city}"\n',
    )

    _, errors = load_city_configs(root)

    assert "unknown placeholder(s) ['bucket']" in str(errors[0])


def test_a_fleet_checks_each_location_pattern_once_and_a_bad_one_every_time(root: Path) -> None:
    # Every city of a template repeats its source patterns: at 10,000 cities checking them again for each city
    # was a tenth of the parse, so a pattern is checked once; a refused one is refused for every city using it.
    write_city(root, "berlin", "city: berlin\ntemplate: ride_duration\n")
    check_location_pattern.cache_clear()
    load_city_configs(root)
    first = check_location_pattern.cache_info().misses
    for city in ("lisbon", "oslo", "porto"):
        write_city(root, city, f"city: {city}\ntemplate: ride_duration\n")
    bad = '  source: "{data_root}/../{city}"\n'
    for city in ("rome", "turin"):
        write_city(root, city, f"city: {city}\ntemplate: ride_duration\ndataset:\n{bad}")

    configs, errors = load_city_configs(root)

    assert [c.city for c in configs] == ["berlin", "lisbon", "oslo", "porto"]
    assert [Path(e.file).stem for e in errors] == ["rome", "turin"]
    assert all("'..' segment" in str(e) for e in errors)
    assert check_location_pattern.cache_info().misses == first + 2  # only the bad pattern, once per city


def test_a_broken_group_that_many_cities_name_is_read_once_per_load_and_reported_once(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.claim_fleets import city_of, group_file, recorded_reads

    group = group_file(root, "norway", "training: [unclosed\n")
    for city in ("bergen", "oslo", "tromso"):
        city_of(root, city, extra="group: norway\n")
    reads = recorded_reads(monkeypatch)

    configs, errors = load_city_configs(root)

    assert configs == []
    assert [e.file for e in errors] == [str(group)], "the group's error, once"
    assert reads.count(group) == 1
