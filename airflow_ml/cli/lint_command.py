"""``airflow-ml lint``: every problem of templates, city files and suites, once, as editors and CI read them.

Every file is read, whether a city uses it or not: each template (over the defaults), group and suite of the
folders, and every city. Each problem is one ``path:line:col: message`` (text), one object (json) or one
GitHub workflow command (github), sorted by path and line. A problem of a template or group file is reported
once, at its own line, however many cities inherit it; a problem of a suite lists the cities that use it. A
problem of a whole file (missing, empty, misnamed) stands at 1:1. Warnings (``path:line:col: warning:
message``) are printed the same way after the problems and leave the exit code alone. A file that breaks a
check in a way no message foresaw is that file's problem: it never stops lint or hides the other files.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_ml.exceptions import ConfigError, Problem

if TYPE_CHECKING:
    from airflow_ml.templates.describe import Origin
    from airflow_ml.templates.gx_context_files import GxChecks
    from airflow_ml.templates.models import CityConfig
    from airflow_ml.templates.yaml_lines import Path_

FORMATS = ("text", "json", "github")
#: ``<file>:<line>: <message>``, how an expectation's ``meta.source`` places a suite problem.
_AT_LINE = re.compile(r"(?P<file>.+?):(?P<line>\d+): (?P<message>.*)", re.DOTALL)
_AT_ITEM = re.compile(r"(?P<file>.+?) (?P<message>expectations\[\d+\]: .*)", re.DOTALL)
#: An expectation's ``meta.source`` that names its line: ``<file>:<line>``.
_SOURCE_LINE = re.compile(r"(?P<file>.+):(?P<line>\d+)")
_SOURCE_ITEM = re.compile(r"(?P<file>.+) expectations\[\d+\]")


class _Findings:
    """Each problem and warning once, with the cities a suite's concerns."""

    def __init__(self) -> None:
        self.problems: dict[Problem, list[str]] = {}
        self.warnings: dict[Problem, list[str]] = {}

    def add(self, error: ConfigError) -> None:
        for problem in error.resolved():
            self.problems.setdefault(_placed(problem), [])


def lint(root: Path, expectations: Path, fmt: str = "text") -> int:
    """Check ``root`` (templates, groups, defaults, cities, fallback parents) and every suite of ``expectations``.

    Returns:
        0 when every file is sound, 1 when any has a problem, 2 when ``root`` is not a templates folder.
    """
    from airflow_ml.templates import load_city_configs, load_parent_configs
    from airflow_ml.templates.loader import unexpected_error

    if not (root / "cities").is_dir():
        print(f"airflow-ml lint: {root}/cities does not exist; give the templates folder", file=sys.stderr)
        return 2
    origins: dict[str, Origin] = {}
    configs, errors = load_city_configs(root, origins=origins)
    parents, parent_errors = load_parent_configs(root)
    findings = _Findings()
    for error in [*errors, *parent_errors, *_layer_errors(root)]:
        findings.add(error)
    checked: set[Path] = set()  # the suite files some city's suite was read from
    for config in configs:
        origin = origins.get(config.dag_id, {})
        _unfingerprinted_declaration(config, origin, findings)
        try:
            _lint_suite(config, origin, expectations, findings, checked)
        except Exception as exc:  # noqa: BLE001 - a check no message foresaw: this city's problem alone
            city_file = origin.get(("city",), (root / "cities" / f"{config.city}.yaml", 1, 1))[0]
            findings.add(unexpected_error(city_file, exc))
    _lint_other_suites(expectations, checked, findings)
    found, warned = findings.problems, findings.warnings
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


def _unfingerprinted_declaration(config: CityConfig, origin: Origin, findings: _Findings) -> None:
    """Warn at a ``gate.accept_schema_change`` that names no change: it loads, but accepts nothing."""
    accept = config.gate.accept_schema_change
    if accept is None or accept.change is not None:
        return
    place = origin.get(("gate", "accept_schema_change")) or origin.get(("city",))
    if place is None:
        return
    file, line, col = place
    message = (
        f"gate.accept_schema_change ({accept.reason!r}) names no change, so it accepts none: a declaration "
        "accepts only the changed items whose fingerprints it names; add change: ['<sha256:...>'] as the gate's "
        "refusal of that change shows it (docs/guides/gate.md#schema-changes)"
    )
    findings.warnings.setdefault(Problem(message, line=line, col=col, file=str(file)), []).append(config.city)


def _lint_suite(
    config: CityConfig, origin: Origin, expectations: Path, findings: _Findings, checked: set[Path]
) -> None:
    """The problems of a city's suite (its files and overrides) and GX context, then the null-target warning."""
    from airflow_ml.templates.gx_context_files import with_gx_checks
    from airflow_ml.templates.suite_files import load_suite, suite_file, target_null_warning, weak_target_check_source
    from airflow_ml.validation.suite_check import check_suite

    gx_checks = _lint_gx_context(config, expectations.parent, findings) if config.gx_context is not None else None
    suite, base = None, None
    if config.suite is not None:
        source = origin.get(("expectations",))
        lines: dict[Path_, int] = {k: v[1] for k, v in origin.items() if k[:1] == ("expectations",) and len(k) == 2}
        try:
            base = suite_file(expectations, config.suite)
            sibling = suite_file(expectations, f"{config.suite}.{config.city}", required=False)
            checked.update(path for path in (base, sibling) if path is not None)
            suite = load_suite(
                expectations,
                config.suite,
                city=config.city,
                overrides=config.expectations,
                overrides_source=str(source[0]) if source else "the city file",
                overrides_lines=lines,
            )
        except ConfigError as exc:
            findings.add(exc)
            return
        for text in check_suite(suite, known_columns=config.dataset.known_columns):
            findings.problems.setdefault(_suite_problem(text, expectations / config.suite), []).append(config.city)
    if suite is None and gx_checks is None:
        return
    # After GX's checks: a 'mostly' GX refuses is its problem above; the warning compares numbers only. The run
    # validates with the project's suite and the GX context's checks together: either may keep nulls out.
    combined = with_gx_checks(suite, gx_checks)
    if config.training.engine == "dask":
        _lint_partitioned(config, combined, base, findings)
    null_target = target_null_warning(combined, config.dataset.target, filtered=config.dataset.target_nulls_filtered)
    if null_target:
        file, line = _source_place(weak_target_check_source(combined, config.dataset.target), base)
        findings.warnings.setdefault(Problem(null_target, line=line, col=1, file=file), []).append(config.city)


def _lint_partitioned(config: CityConfig, suite: dict[str, Any], base: Path | None, findings: _Findings) -> None:
    """The expectations the validate task refuses for a city with ``training.engine: dask``, which validates its
    snapshot partition by partition (:func:`airflow_ml.validation.partitioned.refusals`), each at its line."""
    from airflow_ml.validation.partitioned import refusals

    for refusal in refusals(suite):
        file, line = _source_place(refusal.where, base)
        fix = (
            ""
            if "training.engine" in refusal.why
            else "; remove it from this city's suite, or use training.engine: local"
        )
        message = (
            f"{refusal.kind}: training.engine: dask validates the snapshot partition by partition, which cannot "
            f"judge it: {refusal.why}{fix}"
        )
        findings.problems.setdefault(Problem(message, line=line, col=1, file=file), []).append(config.city)


def _lint_gx_context(config: CityConfig, project: Path, findings: _Findings) -> GxChecks | None:
    """The problems of the city's ``gx_context``: the context, checkpoint or suite it names, then GX's checks.

    Returns:
        The context's checks, or None when the context cannot be read (its problem is in ``findings``).
    """
    from airflow_ml.templates.gx_context_files import load_gx_checks
    from airflow_ml.validation.suite_check import check_suite

    spec = config.gx_context
    assert spec is not None
    try:
        checks = load_gx_checks(project, spec.path, checkpoint=spec.checkpoint, suite=spec.suite)
    except ConfigError as exc:
        findings.add(exc)
        return None
    for text in check_suite(checks.suite, known_columns=config.dataset.known_columns):
        findings.problems.setdefault(_suite_problem(text, project / spec.path), []).append(config.city)
    return checks


def _layer_errors(root: Path) -> list[ConfigError]:
    """The problems of every template (over the defaults), group and defaults file, whether a city uses it or not.

    A problem a city's load found already is the same problem, printed once.
    """
    from airflow_ml.templates import load_template
    from airflow_ml.templates.files import yaml_files
    from airflow_ml.templates.loader import (
        DEFAULTS_FILE,
        GROUPS_SUBDIR,
        TEMPLATES_SUBDIR,
        unexpected_error,
    )
    from airflow_ml.templates.yaml_lines import YamlFileError, load_yaml_with_positions

    defaults = root / DEFAULTS_FILE
    templates = yaml_files(root / TEMPLATES_SUBDIR)[0]
    groups = yaml_files(root / GROUPS_SUBDIR)[0]
    alone = [*groups, *([defaults] if defaults.is_file() and not templates else [])]  # no template reads them
    errors = []
    for path in [*templates, *alone]:
        if not path.resolve().is_relative_to(path.parent.resolve()):
            problem = (
                f"{path.name} is a link to a file outside {path.parent}, which is never read; copy the file into "
                f"{path.parent.name}/ instead of linking it"
            )
            errors.append(ConfigError(str(path), [Problem(problem)]))
            continue
        try:
            if path in alone:
                load_yaml_with_positions(path)
            else:
                load_template(path, defaults=defaults if defaults.is_file() else None)
        except ConfigError as exc:
            errors.append(exc)
        except YamlFileError as exc:
            errors.append(ConfigError(str(path), exc.problems))
        except Exception as exc:  # noqa: BLE001 - a check no message foresaw: this file's problem alone
            errors.append(unexpected_error(path, exc))
    return errors


def _lint_other_suites(expectations: Path, checked: set[Path], findings: _Findings) -> None:
    """Read and check every suite file of ``expectations`` that no city's suite was read from."""
    from airflow_ml.templates.files import misspelled_suite, suite_names
    from airflow_ml.templates.loader import unexpected_error
    from airflow_ml.templates.suite_files import read_suite_file, suite_file
    from airflow_ml.validation.suite_check import check_suite

    for name in suite_names(expectations):
        path = None
        misspelled = misspelled_suite(expectations, name)  # beside a file of the right name too: never skipped
        if misspelled is not None:
            findings.add(misspelled)
        try:
            path = suite_file(expectations, name)
            if path is None or path in checked:
                continue
            meta, items = read_suite_file(path)
            for text in check_suite({"name": name, "meta": meta, "expectations": items}):
                findings.problems.setdefault(_suite_problem(text, path), [])
        except ConfigError as exc:
            findings.add(exc)
        except Exception as exc:  # noqa: BLE001 - a check no message foresaw: this file's problem alone
            findings.add(unexpected_error(path or expectations / name, exc))


def _source_place(source: str | None, suite: Path | None) -> tuple[str, int]:
    """The file and line an expectation's ``meta.source`` names; the suite file's first line when it names none."""
    match = _SOURCE_LINE.fullmatch(source or "")
    if match is not None:
        return match.group("file"), int(match.group("line"))
    item = _SOURCE_ITEM.fullmatch(source or "")  # a JSON file without lines (a GX context's): "<file> expectations[i]"
    if item is not None or suite is None:
        return (item.group("file") if item else str(source)), 1
    return str(suite), 1


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
