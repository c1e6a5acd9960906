"""JSON Schema of the YAML files (airflow_ml.templates.schema): the repository's files pass, typos do not."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from airflow_ml.cli import main
from airflow_ml.templates.schema import file_schema
from tests.support import REPO


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
