"""The commands README.md and docs/ show that need no Airflow run, run verbatim in a copy of the project.

Each test runs the documented lines as a user types them (``.venv/bin/airflow-ml ...`` in the project folder,
through bash) and checks what the docs say they do; ``tests/unit/test_documented_commands.py`` checks that
each documented command is run here, by an integration test, by ``make demo`` or by CI.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from airflow_ml import __version__
from airflow_ml.data.demo import write_demo_data
from tests.support import REPO
from tests.support.documented import documented_project, shell

CITIES_GUIDE = REPO / "docs" / "guides" / "cities-and-templates.md"
CLI_GUIDE = REPO / "docs" / "guides" / "cli.md"
TRIGGER_GUIDE = REPO / "docs" / "guides" / "trigger-form.md"
AFTER_PROMOTION_GUIDE = REPO / "docs" / "guides" / "after-promotion.md"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project's DAG files, templates, suites and plugins, with ``.venv``, as after ``make demo``."""
    return documented_project(tmp_path / "project")


def _blocks(page: Path, language: str) -> list[str]:
    """The bodies of a page's fenced blocks of ``language``."""
    return re.findall(rf"^```{language}\n(.*?)^```$", page.read_text(encoding="utf-8"), flags=re.MULTILINE | re.DOTALL)


def test_help_and_version(project: Path) -> None:
    helped = shell(".venv/bin/airflow-ml --help", cwd=project)
    version = shell(".venv/bin/airflow-ml --version", cwd=project)

    assert helped.returncode == 0, helped.stderr
    assert version.stdout.strip() == f"airflow-ml {__version__}"
    # The CLI guide gives every subcommand --help lists its own section.
    listed = re.search(r"\{([a-z,-]+)\}", helped.stdout)
    assert listed, helped.stdout
    sections = set(re.findall(r"^## (.+)$", CLI_GUIDE.read_text(encoding="utf-8"), flags=re.MULTILINE))
    names = listed.group(1).split(",")
    missing = [name for name in names if not any(s == name or s.startswith(f"{name} ") for s in sections)]
    assert not missing, f"docs/guides/cli.md has no section for {missing}"


def test_the_readmes_city_and_suite_lint_clean(project: Path) -> None:
    scaffolded = shell(".venv/bin/airflow-ml new-city ride_duration porto --display-name Porto", cwd=project)
    assert scaffolded.returncode == 0, scaffolded.stderr
    city_file = project / "dag_templates" / "cities" / "porto.yaml"
    assert city_file.read_text(encoding="utf-8").startswith("city: porto\ntemplate: ride_duration\n")

    # The README's two examples, pasted where their first line says, and the template pointed at the suite.
    examples = {block.splitlines()[0].removeprefix("# "): block for block in _blocks(REPO / "README.md", "yaml")}
    assert set(examples) == {"dag_templates/cities/porto.yaml", "expectations/ride_trips_strict.yaml"}
    for path, text in examples.items():
        (project / path).write_text(text, encoding="utf-8")
    template = project / "dag_templates" / "templates" / "ride_duration.yaml"
    text = template.read_text(encoding="utf-8")
    assert "suite: ride_trips " in text
    template.write_text(text.replace("suite: ride_trips ", "suite: ride_trips_strict "), encoding="utf-8")

    linted = shell(".venv/bin/airflow-ml lint", cwd=project)

    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert linted.stdout.strip().splitlines()[-1] == "4 city config(s) valid, 0 file(s) with errors"


#: The city file with a typo and a quoted number that the cities guide lints, and the first line it shows.
BROKEN_PORTO = """city: porto
template: ride_duration
display_name: Porto
dag:
  schedule: "15 2 * * *"
gate:
  min_improvment: 0.01
training:
  num_boost_round: '400'
"""
FIRST_PROBLEM = (
    "dag_templates/cities/porto.yaml:7:3: gate.min_improvment: unknown key 'min_improvment'; did you mean "
    "'min_improvement'?"
)


def test_lint_names_a_broken_city_file_in_each_format(project: Path) -> None:
    guide = CITIES_GUIDE.read_text(encoding="utf-8")
    # What the guide shows is what is linted here.
    assert BROKEN_PORTO in guide
    assert FIRST_PROBLEM in guide
    (project / "dag_templates" / "cities" / "porto.yaml").write_text(BROKEN_PORTO, encoding="utf-8")

    text = shell(".venv/bin/airflow-ml lint", cwd=project)
    as_json = shell(".venv/bin/airflow-ml lint --format json", cwd=project)
    github = shell(".venv/bin/airflow-ml lint --format github", cwd=project)

    assert (text.returncode, as_json.returncode, github.returncode) == (1, 1, 1)
    assert text.stdout.splitlines()[:1] == [FIRST_PROBLEM]
    for line in text.stdout.splitlines():
        assert line in guide, f"the guide shows another output than lint prints: {line!r}"
    report = json.loads(as_json.stdout)
    assert [(p["line"], p["col"]) for p in report["problems"]] == [(7, 3), (9, 3)]
    assert (report["cities"], report["files_with_errors"]) == (3, 1)
    first = github.stdout.splitlines()[0]
    assert first.startswith("::error file=dag_templates/cities/porto.yaml,line=7,col=3::gate.min_improvment")
    assert first in guide


def test_schema_and_env(project: Path) -> None:
    city = shell(".venv/bin/airflow-ml schema city", cwd=project)
    template = shell(".venv/bin/airflow-ml schema template", cwd=project)
    env = shell(".venv/bin/airflow-ml env", cwd=project)

    assert {"city", "template", "gate"} <= set(json.loads(city.stdout)["properties"])
    assert {"dataset", "metric", "drift"} <= set(json.loads(template.stdout)["properties"])
    assert env.returncode == 0, env.stderr
    assert f"export AIRFLOW_ML_DATA_ROOT={project.resolve()}/var/data" in env.stdout.splitlines()


def test_suite_infer_on_the_demos_data(project: Path) -> None:
    write_demo_data(project / "var" / "demo" / "data", scale=0.1)  # what `make demo` leaves there, smaller

    one = shell(
        ".venv/bin/airflow-ml suite infer var/demo/data/raw/trips/berlin -o expectations/my_suite.json", cwd=project
    )
    fleet = shell(
        ".venv/bin/airflow-ml suite infer --template ride_duration --data-root var/demo/data "
        "-o expectations/new_trips.json",
        cwd=project,
    )

    assert one.returncode == 0, one.stderr
    suite = json.loads((project / "expectations" / "my_suite.json").read_text(encoding="utf-8"))
    assert all(e["meta"]["inferred"] is True for e in suite["expectations"])
    assert fleet.returncode == 0, fleet.stderr
    shared = json.loads((project / "expectations" / "new_trips.json").read_text(encoding="utf-8"))
    assert shared["meta"]["inferred"]["cities"] == ["berlin", "lisbon", "sao_paulo"]
    assert sorted(p.name for p in (project / "expectations").glob("new_trips.*.yaml"))  # a city that differs


REFUSED = (
    "airflow-ml run: the conf of a run of ride_duration.berlin is refused, nothing runs: unknown trigger parameter "
    "'num_boost_rounds': did you mean 'num_boost_round'? (a conf may only set the DAG's Params)"
)


def test_run_refuses_a_mistyped_conf_before_any_run(project: Path) -> None:
    refused = shell(""".venv/bin/airflow-ml run ride_duration.berlin --conf '{"num_boost_rounds": 60}'""", cwd=project)

    assert refused.returncode == 2, refused.stderr[-2000:]
    assert refused.stdout == ""
    assert REFUSED in refused.stderr.splitlines()
    assert REFUSED in TRIGGER_GUIDE.read_text(encoding="utf-8")
    assert not (project / "var" / "airflow" / "airflow.db").exists()  # refused before any run or database


def test_the_downstream_dag_example_schedules_on_the_champion_asset() -> None:
    from airflow_ml.factory import champion_asset
    from airflow_ml.templates import load_city_configs

    example, _ = _blocks(AFTER_PROMOTION_GUIDE, "python")
    namespace: dict[str, object] = {}
    exec(compile(example, str(AFTER_PROMOTION_GUIDE), "exec"), namespace)  # the guide's own example

    configs, errors = load_city_configs(REPO / "dag_templates")
    assert not errors
    berlin = next(c for c in configs if c.city == "berlin")
    assert namespace["berlin_champion"] == champion_asset(berlin)


def test_the_shadow_promotion_example_compares_and_promotes_as_shown(tmp_path: Path) -> None:
    from airflow_ml.ml import model_registry as registry
    from tests.support.mlflow_stores import sqlite_registry
    from tests.support.shadow_rows import live_rows

    name = "ride_duration.berlin"
    client = sqlite_registry(tmp_path, name)
    for _ in range(7):
        client.create_model_version(name, f"file://{tmp_path}/model")
    registry.promote(client, name, "6", {"decision": "promoted"})
    client.set_registered_model_alias(name, registry.CHALLENGER, "7")
    _, example = _blocks(AFTER_PROMOTION_GUIDE, "python")
    namespace: dict[str, object] = {"rows": live_rows(0, challenger_sd=2.0), "client": client, "run_id": "monitor"}

    exec(compile(example, str(AFTER_PROMOTION_GUIDE), "exec"), namespace)  # the guide's own example

    assert namespace["verdict"].promote is True  # type: ignore[attr-defined]
    assert str(client.get_model_version_by_alias(name, registry.CHAMPION).version) == "7"
