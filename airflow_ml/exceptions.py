"""The project's small error tree: every error says what is wrong, where, and how to fix it."""

from __future__ import annotations


class AirflowMLError(Exception):
    """Base class of every error raised by airflow-ml."""


class ConfigError(AirflowMLError):
    """A template or city file is invalid.

    Args:
        file: The YAML file at fault.
        problems: One line per problem, each naming line, field, value and fix.
    """

    def __init__(self, file: str, problems: list[str]) -> None:
        self.file = file
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{file}: {len(problems)} problem(s)\n{lines}")


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
