"""``airflow-ml snapshots prune`` (airflow_ml.cli.snapshots_command): what it keeps and why, a dry run first, an
unknown template and a missing data root. The world is snapshot retention's (tests/support/snapshot_worlds.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_ml.cli import main
from tests.support.snapshot_worlds import ALL, DELETED, left, migrated_store, retention_world


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Any]:
    """The retention world with a registry of its own (two tests: no shared migrated store)."""
    return retention_world(tmp_path, migrated_store(tmp_path / "store"))


def test_the_cli_prints_what_it_keeps_and_why_and_deletes_after_a_dry_run(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["snapshots", "prune", "--template", "ride_duration", "--root", str(world["templates"])]
    args += ["--data-root", str(world["data"]), "--tracking-uri", world["store"]]

    assert main([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert left(world) == ALL
    r3, r4 = world["uris"]["ride_duration/oslo/r3"], world["uris"]["ride_duration/oslo/r4"]
    assert f"would delete {r4}  not registered, older than the newest 2 of ride_duration.oslo" in out
    assert f"keep         {r3}  registered: ride_duration.oslo v2 (champion)" in out
    assert out.strip().endswith("20 snapshot(s): kept 17, would delete 3 (dry run: nothing deleted)")

    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"delete       {r4}  not registered" in out
    assert out.strip().endswith("20 snapshot(s): kept 17, deleted 3")
    assert left(world) == ALL - DELETED


def test_the_cli_names_an_unknown_template_and_a_missing_data_root(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["snapshots", "prune", "--root", str(world["templates"]), "--tracking-uri", world["store"]]

    assert main([*args, "--template", "ride_duratoin", "--data-root", str(world["data"])]) == 2
    assert "no template 'ride_duratoin' in " in (err := capsys.readouterr().err)
    assert "templates; did you mean 'ride_duration'? (known: ['ride_duration'])" in err
    monkeypatch.delenv("AIRFLOW_ML_DATA_ROOT", raising=False)
    assert main(args) == 2
    assert "give --data-root or set AIRFLOW_ML_DATA_ROOT" in capsys.readouterr().err
    assert left(world) == ALL
