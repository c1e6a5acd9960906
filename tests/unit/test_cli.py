"""The airflow-ml command: demo data and lint, with exit codes CI can rely on."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from airflow_ml.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_demo_data_writes_partitions_under_the_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["demo-data", "--root", str(tmp_path), "--batch", "later", "--cities", "lisbon", "--scale", "0.05"])
    assert code == 0
    files = sorted((tmp_path / "raw" / "trips" / "lisbon").glob("date=*/*.parquet"))
    assert len(files) == 14
    assert "wrote 14 partition file(s)" in capsys.readouterr().out


def test_demo_data_refuses_an_unknown_city(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo-data", "--root", str(tmp_path), "--cities", "paris"]) == 2
    assert "'paris'" in capsys.readouterr().err
    assert not (tmp_path / "raw").exists()


def test_demo_data_needs_a_root(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("AIRFLOW_ML_DATA_ROOT", raising=False)
    assert main(["demo-data"]) == 2
    assert "AIRFLOW_ML_DATA_ROOT" in capsys.readouterr().err


def test_lint_passes_on_the_repository_templates(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["lint", str(REPO / "dag_templates"), "--expectations", str(REPO / "expectations")])
    assert code == 0
    assert "3 city config(s) valid, 0 file(s) with errors" in capsys.readouterr().out


def test_lint_fails_and_names_each_broken_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(REPO / "dag_templates", tmp_path / "dag_templates")
    bad = tmp_path / "dag_templates" / "cities" / "lisbon.yaml"
    bad.write_text("city: lisbon\ntemplate: ride_duration\ngate:\n  min_improvment: 0.1\n", encoding="utf-8")
    code = main(["lint", str(tmp_path / "dag_templates"), "--expectations", str(REPO / "expectations")])
    captured = capsys.readouterr()
    assert code == 1
    assert "lisbon.yaml" in captured.err
    assert "line 4" in captured.err
    assert "did you mean 'min_improvement'?" in captured.err
    assert "2 city config(s) valid, 1 file(s) with errors" in captured.out


def test_lint_reports_a_missing_suite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "expectations").mkdir()
    code = main(["lint", str(REPO / "dag_templates"), "--expectations", str(tmp_path / "expectations")])
    assert code == 1
    assert "suite 'ride_trips' not found" in capsys.readouterr().err
