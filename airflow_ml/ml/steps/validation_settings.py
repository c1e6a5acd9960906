"""The validate task's settings: the project's suite files, an existing GX context's checks, or both.

Its own module (``step_settings`` re-exports it) since the GX context made it the largest settings class.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_ml.ml.frozen_settings import FrozenSettings


@dataclass(frozen=True)
class ValidationSettings(FrozenSettings):
    """The suite a snapshot is validated with: the project's suite files, a GX context's checks, or both.

    Attributes:
        suite: Name of the suite, ``<expectations_dir>/<suite>.yaml`` or ``.json``; None with ``gx_context`` only.
        expectations_dir: Folder of the suites.
        city: The city, whose sibling suite file ``<suite>.<city>.yaml`` applies.
        expectations: The city's own added or overriding expectations (YAML form).
        known_columns: The columns the template knows; a suite naming another fails before GX runs.
        experiment: The city's MLflow experiment; None records nothing in MLflow.
        gx_context: The YAML's ``gx_context`` (``path``, ``checkpoint``, ``suite``), read as data
            (``airflow_ml.templates.gx_context_files``); None without one.
        project_root: The folder ``gx_context.path`` is relative to and must stay in (the one holding
            ``expectations_dir``).
    """

    suite: str | None
    expectations_dir: str
    city: str | None = None
    expectations: Sequence[Mapping[str, Any]] = ()
    known_columns: Sequence[str] | None = None
    experiment: str | None = None
    gx_context: Mapping[str, Any] | None = None
    project_root: str | None = None
