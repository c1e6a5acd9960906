"""``airflow-ml disable`` and ``enable`` (airflow_ml.cli.kill_switch_command) on a real MLflow registry.

``airflow-ml serving`` says a disabled city is disabled, and the record keeps who and why.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_ml.cli import main
from airflow_ml.cli.kill_switch_command import os_user
from airflow_ml.ml import kill_switch
from tests.support.serving_models import client_of

MODEL = "ride_duration.berlin"


@pytest.fixture
def world(root: Path, tmp_path: Path) -> tuple[Path, str]:
    """A templates folder with berlin, and an empty registry's URI."""
    (root / "cities" / "berlin.yaml").write_text("city: berlin\ntemplate: ride_duration\n", encoding="utf-8")
    return root, f"sqlite:///{tmp_path}/mlflow.db"


def run(world: tuple[Path, str], *argv: str) -> int:
    root, uri = world
    return main([*argv, "--root", str(root), "--tracking-uri", uri])


def test_disable_then_enable_say_what_changed_and_keep_the_record(
    world: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(world, "disable", "berlin", "--reason", "its data feed is broken", "--by", "ana") == 0
    first = capsys.readouterr().out
    assert first.startswith(f"disabled {MODEL}: its data feed is broken (by ana, at ")
    assert "`airflow-ml enable berlin` serves it again" in first

    assert run(world, "disable", "ride_duration.berlin", "--reason", "still broken", "--by", "bo") == 0
    assert f"disabled {MODEL} (it was already disabled by ana: its data feed is broken): still broken" in (
        capsys.readouterr().out
    )

    assert run(world, "serving", "berlin") == 1
    serving = capsys.readouterr().out.splitlines()
    assert serving[0] == "berlin: nothing: disabled by the kill switch (otherwise nothing)"
    assert serving[1].startswith(f"why: {MODEL} is disabled by the kill switch since ")
    assert run(world, "serving", "berlin", "--json") == 1
    assert json.loads(capsys.readouterr().out)["disabled"]["reason"] == "still broken"

    assert run(world, "enable", "berlin", "--reason", "feed fixed", "--by", "ana") == 0
    assert capsys.readouterr().out.startswith(f"enabled {MODEL}: it was disabled since ")
    assert run(world, "enable", "berlin") == 0
    assert capsys.readouterr().out == f"{MODEL} was not disabled: nothing changed\n"

    client = client_of(world[1])
    assert kill_switch.disabled(client, MODEL) is None
    assert [(e["action"], e["by"], e["reason"]) for e in kill_switch.history(client, MODEL)] == [
        ("disable", "ana", "its data feed is broken"),
        ("disable", "bo", "still broken"),
        ("enable", "ana", "feed fixed"),
    ]


def test_who_defaults_to_the_os_user(world: tuple[Path, str]) -> None:
    assert run(world, "disable", "berlin", "--reason", "maintenance") == 0
    mark = kill_switch.disabled(client_of(world[1]), MODEL)
    assert mark is not None
    assert mark.by == os_user() != ""


def test_bad_input_names_the_fix(world: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as no_reason:
        run(world, "disable", "berlin")
    assert no_reason.value.code == 2
    assert "the following arguments are required: --reason" in capsys.readouterr().err

    assert run(world, "disable", "berlin", "--reason", "   ") == 2
    assert "the kill switch needs 'reason', so that the record says it; pass --reason" in capsys.readouterr().err

    assert run(world, "disable", "paris", "--reason", "x") == 2
    assert "airflow-ml disable: no city 'paris' in " in capsys.readouterr().err
    assert kill_switch.disabled(client_of(world[1]), MODEL) is None
