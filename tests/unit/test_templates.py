"""Unit tests of the YAML templates: loading, merging over the template, and errors that point at the fix."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from airflow_ml.exceptions import ConfigError
from airflow_ml.templates import CityConfig, load_city_configs, load_city_file, load_template
from airflow_ml.templates.loader import deep_merge
from airflow_ml.templates.models import slugify
from airflow_ml.templates.yaml_lines import YamlFileError, load_yaml_with_lines
from tests.support.city_files import (
    REPO_TEMPLATES,
    TEMPLATE_FILE,
    assert_points_at,
    config_error,
    line_of,
    write_city,
)


def template_data() -> dict:
    return yaml.safe_load(TEMPLATE_FILE.read_text(encoding="utf-8"))


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


def test_yaml_lines_map_key_paths_to_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("a: 1\n# comment\nb:\n  c:\n    d: 2\n  e: [1, 2]\n", encoding="utf-8")

    data, lines = load_yaml_with_lines(path)

    assert data == {"a": 1, "b": {"c": {"d": 2}, "e": [1, 2]}}
    assert lines[("a",)] == 1
    assert lines[("b",)] == 3
    assert lines[("b", "c", "d")] == 5
    assert lines[("b", "e")] == 6


def test_yaml_lines_uses_the_safe_loader(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("a: !!python/object/apply:os.system ['true']\n", encoding="utf-8")

    # the safe loader refuses to build Python objects: nothing runs, and the error names the tag and its line
    with pytest.raises(YamlFileError, match=r"line 1: .*python/object/apply:os\.system"):
        load_yaml_with_lines(path)


@pytest.mark.parametrize(("text", "fragment"), [("", "empty"), ("a: 1\nb: [1\n", "invalid YAML"), ("- a\n", "mapping")])
def test_yaml_lines_raises_yaml_file_error(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(YamlFileError, match=fragment):
        load_yaml_with_lines(path)


def test_unknown_yaml_tag_is_a_config_error(root: Path) -> None:
    path = write_city(root, "oslo", "city: oslo\ntemplate: ride_duration\ndisplay_name: !env NAME\n")

    exc = config_error(path, root)

    assert_points_at(exc, path, line_of(path, "!env"), "!env")


@pytest.mark.parametrize(("name", "slug"), [("São Paulo", "sao_paulo"), ("Köln-Bonn", "koln_bonn"), ("42", "city_42")])
def test_slugify_suggests_a_valid_city_id(name: str, slug: str) -> None:
    assert slugify(name) == slug
    assert re.fullmatch(r"[a-z][a-z0-9_]{0,62}", slugify(name))


# --- errors ---------------------------------------------------------------------------------------------------


def test_unknown_nested_key_suggests_the_right_one(root: Path) -> None:
    path = write_city(
        root, "oslo", "city: oslo\ntemplate: ride_duration\ntraining:\n  params:\n    learnin_rate: 0.1\n"
    )

    exc = config_error(path, root)

    assert_points_at(
        exc,
        path,
        line_of(path, "learnin_rate"),
        "training.params.learnin_rate",
        "'learnin_rate'",
        "did you mean 'learning_rate'?",
    )


def test_unknown_top_level_key_suggests_the_right_one(root: Path) -> None:
    path = write_city(root, "oslo", "city: oslo\ntemplate: ride_duration\ntrainig:\n  seed: 1\n")

    exc = config_error(path, root)

    assert_points_at(exc, path, line_of(path, "trainig"), "'trainig'", "did you mean 'training'?")


def test_wrong_type_names_field_and_quotes_value(root: Path) -> None:
    path = write_city(
        root, "oslo", "city: oslo\ntemplate: ride_duration\n\ntraining:\n  params:\n    num_leaves: many\n"
    )

    exc = config_error(path, root)

    text = assert_points_at(exc, path, line_of(path, "num_leaves"), "training.params.num_leaves", "'many'")
    assert "integer" in text


def test_out_of_range_value_is_an_error(root: Path) -> None:
    path = write_city(
        root, "oslo", "city: oslo\ntemplate: ride_duration\ntraining:\n  params:\n    learning_rate: -0.1\n"
    )

    exc = config_error(path, root)

    assert_points_at(exc, path, line_of(path, "learning_rate"), "training.params.learning_rate", "-0.1")


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


def test_bad_cron_expression(root: Path) -> None:
    path = write_city(root, "oslo", 'city: oslo\ntemplate: ride_duration\ndag:\n  schedule: "61 * * * *"\n')

    exc = config_error(path, root)

    assert_points_at(exc, path, line_of(path, "schedule"), "dag.schedule", "'61 * * * *'", "cron")


def test_unknown_schedule_preset_lists_the_known_ones(root: Path) -> None:
    path = write_city(root, "oslo", 'city: oslo\ntemplate: ride_duration\ndag:\n  schedule: "@dayly"\n')

    exc = config_error(path, root)

    assert_points_at(exc, path, line_of(path, "schedule"), "dag.schedule", "'@dayly'", "'@daily'")


@pytest.mark.parametrize("schedule", ["@daily", "*/15 * * * *", None])
def test_valid_schedules_load(root: Path, schedule: str | None) -> None:
    shown = "null" if schedule is None else f'"{schedule}"'
    path = write_city(root, "oslo", f"city: oslo\ntemplate: ride_duration\ndag:\n  schedule: {shown}\n")

    assert load_city_file(path, root / "templates").dag.schedule == schedule


def test_relative_min_improvement_must_be_below_one(root: Path) -> None:
    path = write_city(root, "oslo", "city: oslo\ntemplate: ride_duration\ngate:\n  min_improvement: 1.5\n")

    exc = config_error(path, root)

    assert_points_at(exc, path, line_of(path, "gate:"), "gate", "min_improvement", "1.5", "below 1")


def test_absolute_min_improvement_may_exceed_one(root: Path) -> None:
    path = write_city(
        root,
        "oslo",
        "city: oslo\ntemplate: ride_duration\ngate:\n  min_improvement: 1.5\n  improvement_mode: absolute\n",
    )

    assert load_city_file(path, root / "templates").gate.min_improvement == 1.5


def test_missing_required_template_field_names_the_template(root: Path) -> None:
    template = root / "templates" / "ride_duration.yaml"
    text = template.read_text(encoding="utf-8")
    assert re.search(r"^  target: .*\n", text, flags=re.MULTILINE)
    template.write_text(re.sub(r"^  target: .*\n", "", text, flags=re.MULTILINE), encoding="utf-8")
    path = write_city(root, "oslo", "city: oslo\ntemplate: ride_duration\n")

    exc = config_error(path, root)

    assert_points_at(exc, template, line_of(template, "dataset:"), "dataset.target", "missing")


def test_categorical_feature_must_be_a_feature(root: Path) -> None:
    path = write_city(
        root, "oslo", "city: oslo\ntemplate: ride_duration\ndataset:\n  categorical_features: [weather]\n"
    )

    exc = config_error(path, root)

    assert_points_at(exc, path, line_of(path, "dataset:"), "dataset", "'weather'", "add them to features")


def test_target_listed_as_feature_is_refused(root: Path) -> None:
    target = template_data()["dataset"]["target"]
    path = write_city(
        root,
        "oslo",
        f"city: oslo\ntemplate: ride_duration\ndataset:\n  features: [distance_km, pickup_zone, {target}]\n",
    )

    exc = config_error(path, root)

    assert_points_at(exc, path, line_of(path, "dataset:"), "dataset", repr(target), "remove it from features")


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
