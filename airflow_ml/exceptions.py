"""The project's small error tree: every error says what is wrong, where, and how to fix it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import PurePath

_LINE_PREFIX = re.compile(r"line (\d+): (.*)", re.DOTALL)
#: How many characters of a value an error message shows.
SHOWN_CHARS = 80


def show_value(value: object, *, limit: int = SHOWN_CHARS, quote: bool = True) -> str:
    """``value`` as an error message shows it: its repr (``quote``) or text, cut to ``limit`` characters.

    A value from a file can be megabytes long, or a whole number Python will not even print (over 4,300
    digits): the message stays one readable line.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 4 * limit:
        return f"a whole number of about {int(value.bit_length() * 0.30103) + 1} digits"
    try:
        text = repr(value) if quote else str(value)
    except (ValueError, RecursionError):  # a huge number or a deep structure inside a container
        return f"a {type(value).__name__} too large to show"
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


class AirflowMLError(Exception):
    """Base class of every error raised by airflow-ml."""


@dataclass(frozen=True)
class Problem:
    """One problem of a configuration file: what is wrong and how to fix it, and where.

    Args:
        message: ``<field>: <what is wrong>; <fix>``, without the location.
        line: 1-based line, when known.
        col: 1-based column, when known.
        file: The file the problem is in, when it is not the file of the :class:`ConfigError` that holds it
            (a template or group line that a city's load found).
    """

    message: str
    line: int | None = None
    col: int | None = None
    file: str | None = None

    @classmethod
    def of(cls, problem: str | Problem) -> Problem:
        """``problem`` as a Problem; a string that starts with ``line N:`` keeps its line."""
        if isinstance(problem, Problem):
            return problem
        match = _LINE_PREFIX.fullmatch(problem)
        return cls(match.group(2), line=int(match.group(1))) if match else cls(problem)

    def __str__(self) -> str:
        at = f"line {self.line}" if self.line is not None else ""
        if self.file is not None:
            at = f"{PurePath(self.file).name} {at}".rstrip()
        return f"{at}: {self.message}" if at else self.message


class ConfigError(AirflowMLError):
    """A template, city, group, defaults or suite file is invalid.

    Args:
        file: The file at fault.
        problems: One per problem, each naming line, field, value and fix: a :class:`Problem`, or a string
            (``"line N: field: message"`` keeps its line).
    """

    def __init__(self, file: str, problems: Sequence[str | Problem]) -> None:
        self.file = file
        #: The problems with their location; ``file`` is None where it is this error's file.
        self.located = [Problem.of(p) for p in problems]
        #: One readable line per problem, as ``str(error)`` lists them.
        self.problems = [str(p) for p in self.located]
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{file}: {len(self.problems)} problem(s)\n{lines}")

    def resolved(self) -> list[Problem]:
        """The problems, each with its own file (this error's file where the problem names none)."""
        return [p if p.file is not None else replace(p, file=self.file) for p in self.located]

    def __reduce__(self) -> tuple[type[ConfigError], tuple[str, list[Problem]]]:
        return (type(self), (self.file, self.located))


class BrokenCityFiles(AirflowMLError):
    """One or more city files are invalid; raised by ``dags/retrain_errors.py`` so Airflow lists them.

    Args:
        errors: One ConfigError per broken file.
    """

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        body = "\n".join(str(e) for e in errors)
        super().__init__(
            f"{len(errors)} broken city file(s); their DAGs are not loaded, every other city's are:\n{body}"
        )


class DataError(AirflowMLError):
    """The data of a city cannot be read or snapshotted (missing path, empty partition, bad format)."""


class DataContractError(DataError):
    """The data breaks its DAG's dataset contract; a retry would read the same files, so the task fails for good.

    A column the template names is missing or of an unusable type, a column's type differs between partition
    files, or a row filter keeps no row.
    """


class SourceOutsideDataRoot(DataError):
    """A local source, or a symbolic link in it, leads out of the data root (or its pattern holds ``..``).

    A snapshot reads only files under the data root; a retry would follow the same path, so the task fails for good.
    """


class StorageUnreachable(DataError):
    """The object store did not answer, or refused the connection's credentials: the data may be fine."""


class MlflowUnreachable(AirflowMLError, ConnectionError):
    """The MLflow tracking server did not answer; the task fails and Airflow's retries try again."""


class RollbackRefused(AirflowMLError):
    """A rollback that cannot be done: the model is unknown or has no ``previous-champion`` to go back to."""


class ForeignChampion(AirflowMLError):
    """A model's ``champion`` alias points at a version trained for another city or template.

    Args:
        model_name: The registered model whose champion it is.
        version: The version behind the alias.
        lineage: The lineage tags the version (or its run) carries, e.g. ``{"airflow_ml.city": "porto"}``.
        expected: The lineage this model's champion must have.
        fix: What to do about it, one sentence.
    """

    def __init__(
        self, model_name: str, version: str, lineage: dict[str, str], expected: dict[str, str], fix: str
    ) -> None:
        self.model_name = model_name
        self.version = version
        self.lineage = lineage
        self.expected = expected

        def show(tags: dict[str, str]) -> str:
            return ", ".join(f"{key}={value!r}" for key, value in sorted(tags.items()))

        super().__init__(
            f"{model_name}: the 'champion' alias points at v{version}, which was trained for another city or "
            f"template (its lineage: {show(lineage)}; this model's champion must have {show(expected)}); it is "
            f"not used as a baseline and nothing was moved. {fix}"
        )
