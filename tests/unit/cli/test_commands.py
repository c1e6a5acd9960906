"""The airflow-ml command: demo data and lint, with exit codes CI can rely on."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from airflow_ml.cli import main
from airflow_ml.templates import load_city_configs
from tests.support import REPO


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
    out = capsys.readouterr().out
    assert code == 1
    assert out.splitlines() == [
        f"{bad}:4:3: gate.min_improvment: unknown key 'min_improvment'; did you mean 'min_improvement'?",
        "2 city config(s) valid, 1 file(s) with errors",
    ]


def test_lint_reports_a_missing_suite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "expectations").mkdir()
    code = main(["lint", str(REPO / "dag_templates"), "--expectations", str(tmp_path / "expectations")])
    assert code == 1
    out = capsys.readouterr().out
    missing = tmp_path / "expectations" / "ride_trips.json"
    assert f"{missing}:1:1: suite 'ride_trips' not found in {tmp_path / 'expectations'}" in out
    assert out.count("not found") == 1  # once, not once per city that uses the suite


def _fleet(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "dag_templates", tmp_path / "dag_templates")
    return tmp_path / "dag_templates"


def test_lint_reports_a_template_problem_once_at_the_template_line_sorted_by_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _fleet(tmp_path)
    template = root / "templates" / "ride_duration.yaml"
    template.write_text(template.read_text().replace("seed: 42", "seed: -1"), encoding="utf-8")
    (root / "cities" / "oslo.yml").write_text("city: oslo\ntemplate: ride_duration\n", encoding="utf-8")
    lisbon = root / "cities" / "lisbon.yaml"
    lisbon.write_text(lisbon.read_text() + "dag:\n  schedule: '0 25 * * *'\n", encoding="utf-8")

    code = main(["lint", str(root), "--expectations", str(REPO / "expectations")])

    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    seed = next(n for n, line in enumerate(template.read_text().splitlines(), 1) if "seed: -1" in line)
    assert lines == [
        f"{root / 'cities' / 'oslo.yml'}:1:1: the file is not read: its name ends in '.yml' and airflow-ml reads "
        "only '<name>.yaml' files; rename it to oslo.yaml",
        f"{template}:{seed}:3: training.seed: Input should be greater than or equal to 0 (got -1)",
        "0 city config(s) valid, 2 file(s) with errors",
    ]  # the template's problem once, not once per city; lisbon's own problem waits behind it


def test_lint_formats_json_and_github(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _fleet(tmp_path)
    lisbon = root / "cities" / "lisbon.yaml"
    lisbon.write_text(lisbon.read_text() + "dag:\n  owner: a\n  owner: b\n", encoding="utf-8")
    argv = ["lint", str(root), "--expectations", str(REPO / "expectations")]

    assert main([*argv, "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    first = len(lisbon.read_text().splitlines()) - 1
    message = f"dag.owner: set twice, on lines {first} and {first + 1}; the second would silently replace the first: "
    message += "keep one"
    assert report == {
        "problems": [{"file": str(lisbon), "line": first + 1, "col": 3, "message": message}],
        "warnings": [],
        "cities": 2,
        "parents": 0,
        "files_with_errors": 1,
    }

    assert main([*argv, "--format", "github"]) == 1
    command = capsys.readouterr().out.splitlines()[0]
    escaped = str(lisbon).replace(":", "%3A").replace(",", "%2C")
    assert command == f"::error file={escaped},line={first + 1},col=3::{message}"


def test_github_commands_escape_what_would_break_them() -> None:
    from airflow_ml.cli.lint_command import _github
    from airflow_ml.exceptions import Problem

    problem = Problem("x", line=2, col=5, file="a,b:c.yaml")
    assert (
        _github(problem, "50% done\nnext: line") == "::error file=a%2Cb%3Ac.yaml,line=2,col=5::50%25 done%0Anext: line"
    )


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from airflow_ml import __version__

    with pytest.raises(SystemExit) as info:
        main(["--version"])

    assert info.value.code == 0
    assert capsys.readouterr().out == f"airflow-ml {__version__}\n"


def test_every_option_of_every_subcommand_has_help() -> None:
    import argparse

    from airflow_ml.cli.commands import build_parser

    def walk(parser: argparse.ArgumentParser, name: str) -> list[str]:
        missing = []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for command, sub in action.choices.items():
                    missing += walk(sub, f"{name} {command}")
            elif not isinstance(action, argparse._HelpAction) and not action.help:
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
        return missing

    assert walk(build_parser(), "airflow-ml") == []


def test_a_reader_that_goes_away_ends_the_command_quietly() -> None:
    import os
    import subprocess
    import sys

    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first byte, as `| head` is after its lines
    try:
        done = subprocess.run(
            [sys.executable, "-m", "airflow_ml.cli", "schema", "city"],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write)

    assert done.stderr == ""
    assert done.returncode == 141


def test_new_city_with_an_unknown_template_says_did_you_mean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _fleet(tmp_path)

    assert main(["new-city", "ride_duraton", "porto", "--root", str(root)]) == 2

    err = capsys.readouterr().err
    assert "no template 'ride_duraton'" in err
    assert "did you mean 'ride_duration'?" in err
    assert not (root / "cities" / "porto.yaml").exists()


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
