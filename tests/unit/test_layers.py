"""Layered configuration: defaults < template < group < city, nested city folders, clashes, schema, new-city."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest
import yaml

from airflow_ml.cli import main
from airflow_ml.templates import load_city_configs
from airflow_ml.templates.schema import file_schema

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "templates").mkdir()
    (tmp_path / "cities").mkdir()
    (tmp_path / "groups").mkdir()
    shutil.copy(REPO / "dag_templates" / "templates" / "ride_duration.yaml", tmp_path / "templates")
    return tmp_path


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_precedence_is_defaults_then_template_then_group_then_city(root: Path) -> None:
    _write(
        root / "defaults.yaml", "dag:\n  owner: platform\n  retries: 3\n  tags: [org]\ngate:\n  min_improvement: 0.2\n"
    )
    _write(root / "groups" / "portugal.yaml", "dag:\n  retries: 2\ntraining:\n  params:\n    num_leaves: 20\n")
    _write(root / "cities" / "porto.yaml", "city: porto\ntemplate: ride_duration\ngroup: portugal\n")
    _write(
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
    _write(root / "templates" / "ride_duration.yaml", yaml.safe_dump(template))
    _write(root / "defaults.yaml", "dag:\n  owner: data-platform\n")
    _write(root / "cities" / "porto.yaml", "city: porto\ntemplate: ride_duration\n")

    configs, errors = load_city_configs(root)

    assert errors == []
    assert configs[0].dag.owner == "data-platform"


def test_an_error_in_a_group_names_the_group_file_and_line(root: Path) -> None:
    _write(root / "groups" / "portugal.yaml", "dag:\n  retries: 1\n  retires: 2\n")
    _write(root / "cities" / "porto.yaml", "city: porto\ntemplate: ride_duration\ngroup: portugal\n")

    _, errors = load_city_configs(root)

    message = str(errors[0])
    assert "porto.yaml" in message
    assert "portugal.yaml line 3" in message
    assert "did you mean 'retries'?" in message


def test_unknown_group_is_named_with_a_suggestion(root: Path) -> None:
    _write(root / "groups" / "portugal.yaml", "dag:\n  retries: 1\n")
    _write(root / "cities" / "porto.yaml", "city: porto\ntemplate: ride_duration\ngroup: portugl\n")

    _, errors = load_city_configs(root)

    assert "no group named 'portugl'" in str(errors[0])
    assert "did you mean 'portugal'?" in str(errors[0])


def test_cities_in_subfolders_load_and_clashing_ids_are_refused(root: Path) -> None:
    _write(root / "cities" / "client_a" / "berlin.yaml", "city: berlin\ntemplate: ride_duration\n")
    _write(root / "cities" / "client_b" / "berlin.yaml", "city: berlin\ntemplate: ride_duration\n")
    _write(root / "cities" / "client_b" / "hamburg.yaml", "city: hamburg\ntemplate: ride_duration\n")

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
    _write(root / "cities" / "x.yaml", f"city: {json.dumps(city)}\ntemplate: ride_duration\n")

    _, errors = load_city_configs(root)

    assert f"use {suggestion!r}" in str(errors[0])


def test_source_patterns_take_only_known_placeholders(root: Path) -> None:
    _write(
        root / "cities" / "porto.yaml",
        'city: porto\ntemplate: ride_duration\ndataset:\n  source: "{data_root}/{bucket}/{city}"\n',
    )

    _, errors = load_city_configs(root)

    assert "unknown placeholder(s) ['bucket']" in str(errors[0])


def test_city_schema_accepts_the_repository_files_and_refuses_unknown_keys() -> None:
    schema = file_schema("city")
    for path in (REPO / "dag_templates" / "cities").glob("*.yaml"):
        jsonschema.validate(yaml.safe_load(path.read_text()), schema)
    with pytest.raises(jsonschema.ValidationError, match="trainig"):
        jsonschema.validate({"city": "x", "template": "t", "trainig": {}}, schema)
    with pytest.raises(jsonschema.ValidationError, match="template"):
        jsonschema.validate({"city": "x"}, schema)


def test_template_and_group_schemas() -> None:
    template = yaml.safe_load((REPO / "dag_templates" / "templates" / "ride_duration.yaml").read_text())
    jsonschema.validate(template, file_schema("template"))
    jsonschema.validate({"dag": {"retries": 2}}, file_schema("group"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"city": "x"}, file_schema("group"))


def test_schema_command_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "template"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "airflow-ml template"


def test_new_city_scaffolds_a_file_that_lints(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["new-city", "ride_duration", "porto", "--root", str(root), "--display-name", "Porto"])

    assert code == 0
    configs, errors = load_city_configs(root)
    assert errors == []
    assert configs[0].city == "porto"
    assert configs[0].display_name == "Porto"
    assert main(["new-city", "ride_duration", "porto", "--root", str(root)]) == 2
    assert "already exists" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["ride_duration", "Porto Alegre"], "use 'porto_alegre'"),
        (["ride_duratoin", "porto"], "no template 'ride_duratoin'"),
    ],
)
def test_new_city_refuses_bad_input(
    root: Path, capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str
) -> None:
    assert main(["new-city", *argv, "--root", str(root)]) == 2
    assert fragment in capsys.readouterr().err
    assert list((root / "cities").iterdir()) == []


def test_new_city_with_an_unknown_group_writes_nothing(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new-city", "ride_duration", "porto", "--root", str(root), "--group", "nowhere"]) == 1
    assert "no group named 'nowhere'" in capsys.readouterr().err
    assert list((root / "cities").iterdir()) == []


@pytest.mark.parametrize(
    ("schedule", "fragment"),
    [
        ('["0 2 * * *", "61 * * * *"]', "'61 * * * *': the minute field '61' is out of range"),
        ('["@daily"]', "one or more cron"),
    ],
)
def test_list_schedules_hold_valid_crons(root: Path, schedule: str, fragment: str) -> None:
    _write(root / "cities" / "porto.yaml", f"city: porto\ntemplate: ride_duration\ndag:\n  schedule: {schedule}\n")

    _, errors = load_city_configs(root)

    assert fragment in str(errors[0])
    assert "porto.yaml line 4" in str(errors[0])
