"""A model's saved environment against this process's: MLflow's load-time checks, without its scan of every package.

``mlflow.pyfunc.load_model`` warns when the process does not satisfy the model's ``requirements.txt``, runs
another Python minor version than the one that saved it, or the model does not say which. Its first requirements
check in a process maps every installed distribution to its modules (``importlib.metadata.packages_distributions``):
about 0.4 s, paid again by every task process that loads a model (drift, the gate, the health check, scoring).
:func:`environment_mismatches` makes the same checks with each requirement looked up by its name alone
(``importlib.metadata.version``, a millisecond), and :func:`warn_of_environment_mismatches` logs them; the loaders
then call MLflow with ``suppress_warnings=True``, which turns off exactly those checks.
"""

from __future__ import annotations

import importlib.metadata
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)

#: The files MLflow writes in a model's folder: its pip requirements and its metadata (with the Python version).
REQUIREMENTS_FILE = "requirements.txt"
MLMODEL_FILE = "MLmodel"
#: pip's options that name another requirements (or constraints) file, relative to the file that names it.
_INCLUDES = ("-r", "--requirement", "-c", "--constraint")


def environment_mismatches(model_dir: str | Path) -> list[str]:
    """What this process lacks of the model saved in ``model_dir``: one line per requirement it does not satisfy
    (installed version and the model's requirement), and its Python when the minor version differs or the model
    does not say which.

    Requirements are read as MLflow reads them (comments dropped, continued lines joined, ``-r`` and ``-c`` files
    followed, though only inside the model's folder); a line that is no package requirement (a path, a URL,
    another pip option) and a requirement whose environment marker does not apply here are not checked, nor is a
    development build of MLflow.
    """
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.version import Version

    folder = Path(model_dir)
    found = []
    for line in requirement_lines(folder / REQUIREMENTS_FILE, within=folder):
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        installed = _installed_version(requirement.name)
        if installed is None:
            found.append(f"{requirement.name} is not installed (the model needs {line})")
        elif requirement.name.lower() == "mlflow" and Version(installed).is_devrelease:
            continue
        elif requirement.specifier and not requirement.specifier.contains(installed):
            found.append(f"{requirement.name} {installed} is installed (the model needs {line})")
    if (folder / MLMODEL_FILE).exists():
        found.extend(_python_mismatch(folder))
    return found


def requirement_lines(path: Path, *, within: Path | None = None, followed: frozenset[Path] = frozenset()) -> list[str]:
    """The requirement lines of the pip requirements file at ``path`` (none when it does not exist), as pip reads
    them: comments and blank lines dropped, lines ending in a backslash joined, ``-r``/``-c`` files followed
    (relative to the file naming them), other options left out.

    Args:
        within: The folder followed files must lie in (``path``'s own by default): a model's file naming
            ``/etc/...`` or ``../..`` must not make a task read, and log, what lies outside the model.
        followed: The files being read already, not read again (a file naming itself, two naming each other).
    """
    path = path.resolve()
    folder = (within or path.parent).resolve()
    if path in followed or not path.is_relative_to(folder) or not path.is_file():
        return []
    lines: list[str] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        line = line[: line.find(" #")].rstrip() if " #" in line else line
        if line.endswith("\\"):
            pending += line[:-1]
            continue
        line, pending = pending + line, ""
        option, _, named = line.partition(" ")
        if option in _INCLUDES:
            lines += requirement_lines(path.parent / named.strip(), within=folder, followed=followed | {path})
        elif line and not line.startswith(("#", "-")):
            lines.append(line)
    return lines


def warn_of_environment_mismatches(model_dir: str | Path, model: str) -> list[str]:
    """Log one warning for ``model`` (how the message names it) listing :func:`environment_mismatches`; returns them.

    Never raises: a check that fails (a file that cannot be read, a version ``packaging`` cannot parse) is logged
    as a warning and the model is loaded all the same, as MLflow's own check does.
    """
    try:
        found = environment_mismatches(model_dir)
    except Exception as exc:  # noqa: BLE001 - a warning's check must never stop the model from loading
        log.warning(
            "%s: its environment could not be compared with this process's (%s: %s); it is loaded all the same",
            model,
            type(exc).__name__,
            exc,
        )
        return []
    if found:
        log.warning(
            "%s was saved in another environment than this process's: %s. Its predictions may differ or fail: install "
            "what it needs (mlflow.pyfunc.get_model_dependencies gives its requirements file)",
            model,
            "; ".join(found),
        )
    return found


def _installed_version(name: str) -> str | None:
    if name.lower() == "mlflow":  # MLflow's own check reads it from the module (an editable install's metadata lies)
        import mlflow

        return str(mlflow.__version__)
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        pass
    # Installed without metadata: the module's own version, as MLflow falls back to; only a module this process has
    # imported already, since a requirement must never make it run code it would not have run.
    module = sys.modules.get(name.replace("-", "_").lower())
    version = getattr(module, "__version__", None)
    return str(version) if version is not None else None


def _python_mismatch(folder: Path) -> list[str]:
    from mlflow.models import Model

    running = ".".join(str(part) for part in sys.version_info[:3])
    saved_with = Model.load(str(folder / MLMODEL_FILE)).flavors.get("python_function", {}).get("python_version")
    if not saved_with:
        return [f"the model does not say which Python saved it (Python {running} runs it)"]
    if str(saved_with).split(".")[:2] != running.split(".")[:2]:
        return [f"Python {running} runs it (the model was saved with Python {saved_with})"]
    return []
