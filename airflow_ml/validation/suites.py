"""Find and check expectation suites stored as GX Core 1.x suite JSON in ``expectations/``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from airflow_ml.exceptions import ConfigError

SEVERITIES = ("error", "warn")


def suite_path(expectations_dir: str | Path, name: str) -> Path:
    """The file of suite ``name``: ``<expectations_dir>/<name>.json``."""
    return Path(expectations_dir) / f"{name}.json"


def load_suite(expectations_dir: str | Path, name: str) -> dict[str, Any]:
    """Read suite ``name`` and check its shape before GX sees it.

    Returns:
        The suite as a dict (``name``, ``expectations`` with ``type``, ``kwargs`` and ``meta``).

    Raises:
        ConfigError: naming the file and the expectation at fault.
    """
    path = suite_path(expectations_dir, name)
    if not path.is_file():
        known = sorted(p.stem for p in Path(expectations_dir).glob("*.json"))
        raise ConfigError(
            str(path), [f"suite {name!r} not found; add {path.name} to {expectations_dir} (known: {known})"]
        )
    try:
        suite = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(str(path), [f"line {exc.lineno}: invalid JSON: {exc.msg}"]) from None
    problems = []
    if not isinstance(suite, dict) or not isinstance(suite.get("expectations"), list):
        raise ConfigError(str(path), ["a suite is a JSON object with a list under 'expectations'"])
    for index, expectation in enumerate(suite["expectations"]):
        where = f"expectations[{index}]"
        if not isinstance(expectation, dict) or not isinstance(expectation.get("type"), str):
            problems.append(f"{where}: needs a 'type' such as 'expect_column_values_to_not_be_null'")
            continue
        severity = (expectation.get("meta") or {}).get("severity", "error")
        if severity not in SEVERITIES:
            problems.append(f"{where}.meta.severity: {severity!r} is not one of {list(SEVERITIES)}")
    if problems:
        raise ConfigError(str(path), problems)
    suite.setdefault("name", name)
    return suite
