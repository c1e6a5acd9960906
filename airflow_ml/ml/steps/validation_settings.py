"""The validate task's settings: the project's suite files, an existing GX context's checks, or both.

Its own module (``step_settings`` re-exports it) since the GX context made it the largest settings class.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from airflow_ml.ml.dask_settings import DaskSettings
from airflow_ml.ml.frozen_settings import FrozenSettings


@dataclass(frozen=True)
class GxContextSettings(FrozenSettings):
    """The YAML's ``gx_context``: one checkpoint or suite of a file-based GX context, read as data.

    Attributes:
        path: The context's folder, relative to ``project_root`` (``gx_context.path``).
        project_root: The folder ``path`` is relative to and every file read must stay in (the one holding
            the expectations folder); never the filesystem's root.
        checkpoint: ``gx_context.checkpoint``, or None when ``suite`` is named.
        suite: ``gx_context.suite``, or None when ``checkpoint`` is named.
    """

    path: str
    project_root: str
    checkpoint: str | None = None
    suite: str | None = None


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
        gx_context: The YAML's ``gx_context`` with its project folder, read as data
            (``airflow_ml.templates.gx_context_files``); None without one.
        engine: ``dask`` validates the snapshot in groups of its parts on the cluster of ``dask`` (``training.engine``).
        dask: ``training.dask`` (None: its defaults).
    """

    nested: ClassVar[Mapping[str, Any]] = {"gx_context": GxContextSettings, "dask": DaskSettings}

    suite: str | None
    expectations_dir: str
    city: str | None = None
    expectations: Sequence[Mapping[str, Any]] = ()
    known_columns: Sequence[str] | None = None
    experiment: str | None = None
    gx_context: GxContextSettings | None = None
    engine: Literal["local", "dask"] = "local"
    dask: DaskSettings | None = None
