"""A template's or city's ``gx_context:``: an existing file-based GX Data Context whose checks validate the snapshot.

For teams that already keep their expectations in a Great Expectations project (as users of
airflow-provider-great-expectations do): the YAML names the context's folder and one checkpoint or one
expectation suite in it. ``airflow_ml.templates.gx_context_files`` reads them as data, never as Python.
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from airflow_ml.templates.base import Strict

#: A checkpoint's or a suite's name in a GX context: letters, digits, space, dot, dash, underscore.
GX_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9 ._-]{0,99}$"


class GxContextSpec(Strict):
    """One checkpoint or one expectation suite of a file-based GX Data Context, run on the snapshot.

    Exactly one of ``checkpoint`` and ``suite``. The checks run on the run's snapshot like the project's
    suite files, with the same verdict, report and blocking rule; the checkpoint's actions, its
    datasource and the context's plugins and stores are never run or opened (see the suites guide).
    """

    path: str = Field(
        min_length=1,
        max_length=300,
        description="Folder of the GX context, relative to the project folder (the one holding expectations/): "
        "the folder with great_expectations.yml, or the one holding gx/ (as gx.get_context(mode='file', "
        "project_root_dir=...) creates it). It must stay inside the project folder.",
        examples=["gx"],
    )
    checkpoint: str | None = Field(
        default=None,
        pattern=GX_NAME_PATTERN,
        description="A checkpoint of the context: the suites of its validation definitions run on the snapshot; "
        "its actions are not run.",
    )
    suite: str | None = Field(
        default=None, pattern=GX_NAME_PATTERN, description="An expectation suite of the context, run on the snapshot."
    )

    @field_validator("path")
    @classmethod
    def _path_stays_in_the_project(cls, path: str) -> str:
        parts = path.replace("\\", "/").split("/")
        if any(not c.isprintable() for c in path):
            raise ValueError(f"{path!r} holds a control character; write the folder's path as plain text")
        if path.startswith(("/", "~")) or "\\" in path or (len(path) > 1 and path[1] == ":"):
            raise ValueError(
                f"{path!r} is not a path relative to the project folder; write it relative to the folder that "
                "holds expectations/ (e.g. 'gx'), and keep the context inside it"
            )
        if ".." in parts:
            raise ValueError(f"{path!r} leaves the project folder ('..'); keep the GX context inside it (e.g. 'gx')")
        if "{{" in path or "{%" in path or "$" in path:
            raise ValueError(f"{path!r} holds a template or variable; write the folder's path as it is")
        return path

    @model_validator(mode="after")
    def _one_source_of_checks(self) -> GxContextSpec:
        if (self.checkpoint is None) == (self.suite is None):
            raise ValueError(
                "name exactly one of gx_context.checkpoint (a checkpoint of the context) and gx_context.suite "
                "(an expectation suite of the context); a city that overrides its template's choice sets the "
                "other to null (e.g. 'gx_context: {checkpoint: nightly, suite: null}')"
            )
        return self
