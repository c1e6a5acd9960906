"""``airflow-ml lint``: every problem of templates, city files and suites, once, as editors and CI read them.

Each problem is one ``path:line:col: message`` (text), one object (json) or one GitHub workflow command
(github), sorted by path and line. A problem of a template or group file is reported once, at its own line,
however many cities inherit it; a problem of a suite lists the cities that use it. A problem of a whole
file (missing, empty, misnamed) stands at 1:1. Warnings (``path:line:col: warning: message``) are printed
the same way after the problems and leave the exit code alone.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from airflow_ml.exceptions import ConfigError, Problem

FORMATS = ("text", "json", "github")
#: ``<file>:<line>: <message>``, how an expectation's ``meta.source`` places a suite problem.
_AT_LINE = re.compile(r"(?P<file>.+?):(?P<line>\d+): (?P<message>.*)", re.DOTALL)
_AT_ITEM = re.compile(r"(?P<file>.+?) (?P<message>expectations\[\d+\]: .*)", re.DOTALL)


def lint(root: Path, expectations: Path, fmt: str = "text") -> int:
    """Check ``root`` (templates, groups, defaults, cities, fallback parents) and the suites they name.

    Returns:
        0 when every file is sound, 1 when any has a problem, 2 when ``root`` is not a templates folder.
    """
    from airflow_ml.templates import load_city_configs, load_parent_configs
    from airflow_ml.templates.describe import Origin
    from airflow_ml.templates.suites import load_suite, suite_file, target_null_warning
    from airflow_ml.templates.yaml_lines import Path_
    from airflow_ml.validation.suites import check_suite

    if not (root / "cities").is_dir():
        print(f"airflow-ml lint: {root}/cities does not exist; give the templates folder", file=sys.stderr)
        return 2
    origins: dict[str, Origin] = {}
    configs, errors = load_city_configs(root, origins=origins)
    parents, parent_errors = load_parent_configs(root)
    found: dict[Problem, list[str]] = {}  # each problem once, with the cities a suite problem concerns
    warned: dict[Problem, list[str]] = {}  # likewise each warning
    for error in [*errors, *parent_errors]:
        for problem in error.resolved():
            found.setdefault(_placed(problem), [])
    for config in configs:
        origin = origins.get(config.dag_id, {})
        source = origin.get(("expectations",))
        lines: dict[Path_, int] = {k: v[1] for k, v in origin.items() if k[:1] == ("expectations",) and len(k) == 2}
        try:
            suite = load_suite(
                expectations,
                config.suite,
                city=config.city,
                overrides=config.expectations,
                overrides_source=str(source[0]) if source else "the city file",
                overrides_lines=lines,
            )
        except ConfigError as exc:
            for problem in exc.resolved():
                found.setdefault(_placed(problem), [])
            continue
        for text in check_suite(suite, known_columns=config.dataset.known_columns):
            found.setdefault(_suite_problem(text, expectations / config.suite), []).append(config.city)
        null_target = target_null_warning(suite, config.dataset.target, filtered=config.dataset.target_nulls_filtered)
        if null_target:
            where = str(suite_file(expectations, config.suite))
            warned.setdefault(Problem(null_target, line=1, col=1, file=where), []).append(config.city)
    problems = sorted(found, key=_position)
    messages = [_with_cities(p, found[p]) for p in problems]
    warnings = sorted(warned, key=_position)
    warning_messages = [_with_cities(w, warned[w]) for w in warnings]
    with_parents = f" and {len(parents)} fallback parent(s)" if parents else ""
    files = len({p.file for p in problems})
    summary = f"{len(configs)} city config(s){with_parents} valid, {files} file(s) with errors"
    if fmt == "json":
        entries = [
            {"file": p.file, "line": p.line, "col": p.col, "message": m}
            for p, m in zip(problems, messages, strict=True)
        ]
        cautions = [
            {"file": w.file, "line": w.line, "col": w.col, "message": m}
            for w, m in zip(warnings, warning_messages, strict=True)
        ]
        body = {
            "problems": entries,
            "warnings": cautions,
            "cities": len(configs),
            "parents": len(parents),
            "files_with_errors": files,
        }
        print(json.dumps(body, indent=2))
    else:
        for problem, message in zip(problems, messages, strict=True):
            where = f"{problem.file}:{problem.line}:{problem.col}"
            print(_github(problem, message) if fmt == "github" else f"{where}: {message}")
        for caution, message in zip(warnings, warning_messages, strict=True):
            where = f"{caution.file}:{caution.line}:{caution.col}"
            print(_github(caution, message, "warning") if fmt == "github" else f"{where}: warning: {message}")
        print(summary + (f", {len(warnings)} warning(s)" if warnings else ""))
    return 1 if problems else 0


def _position(problem: Problem) -> tuple[str, int, int, str]:
    return (problem.file or "", problem.line or 0, problem.col or 0, problem.message)


def _placed(problem: Problem) -> Problem:
    """The problem with a line and a column: a problem of a whole file stands at 1:1."""
    return Problem(problem.message, line=problem.line or 1, col=problem.col or 1, file=problem.file)


def _suite_problem(text: str, suite: Path) -> Problem:
    """A ``check_suite`` line as a problem placed at the expectation's file and line, when it says them."""
    match = _AT_LINE.fullmatch(text) or _AT_ITEM.fullmatch(text)
    if match is None:
        return Problem(text, line=1, col=1, file=str(suite))
    line = int(match.group("line")) if "line" in match.groupdict() else 1
    return Problem(match.group("message"), line=line, col=1, file=match.group("file"))


def _with_cities(problem: Problem, cities: list[str]) -> str:
    return f"{problem.message} (cities: {', '.join(cities)})" if cities else problem.message


def _github(problem: Problem, message: str, level: str = "error") -> str:
    """A GitHub Actions workflow command that annotates the file at the line."""

    def escape(value: str, *, prop: bool = False) -> str:
        value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        return value.replace(":", "%3A").replace(",", "%2C") if prop else value

    where = f"file={escape(str(problem.file), prop=True)},line={problem.line},col={problem.col}"
    return f"::{level} {where}::{escape(message)}"
