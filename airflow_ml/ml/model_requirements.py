"""A model's saved environment against this process's: MLflow's load-time warning, without its scan of every package.

``mlflow.pyfunc.load_model`` warns when the process does not satisfy the model's ``requirements.txt`` or runs
another Python than the one that saved it. Its first check in a process maps every installed distribution to its
modules (``importlib.metadata.packages_distributions()``): about 0.4 s, paid again by every task process that
loads a model (drift, the gate, the health check, scoring). :func:`environment_mismatches` looks each requirement
up by its name alone (``importlib.metadata.version``, a millisecond), and :func:`warn_of_environment_mismatches`
logs what MLflow's warning says; the loaders then call MLflow with ``suppress_warnings=True``.
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


def environment_mismatches(model_dir: str | Path) -> list[str]:
    """What this process lacks of the model saved in ``model_dir``: one line per requirement it does not satisfy
    (installed version and the model's requirement), and its Python when the minor version differs.

    Lines that are not a package requirement (a path, a URL, a pip option) and requirements whose environment
    marker does not apply here are not checked, as MLflow does not check them.
    """
    from packaging.requirements import InvalidRequirement, Requirement

    folder = Path(model_dir)
    found = []
    path = folder / REQUIREMENTS_FILE
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    for line in (raw.split("#", 1)[0].strip() for raw in lines):
        if not line or line.startswith("-"):
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        installed = _installed_version(requirement.name)
        if installed is None:
            found.append(f"{requirement.name} is not installed (the model needs {line})")
        elif requirement.specifier and not requirement.specifier.contains(installed, prereleases=True):
            found.append(f"{requirement.name} {installed} is installed (the model needs {line})")
    saved_with = _python_version(folder)
    if saved_with is not None and saved_with.split(".")[:2] != [str(part) for part in sys.version_info[:2]]:
        running = ".".join(str(part) for part in sys.version_info[:3])
        found.append(f"Python {running} runs it (the model was saved with Python {saved_with})")
    return found


def warn_of_environment_mismatches(model_dir: str | Path, model: str) -> list[str]:
    """Log one warning for ``model`` (how the message names it) listing :func:`environment_mismatches`; returns them."""
    found = environment_mismatches(model_dir)
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
        return None


def _python_version(folder: Path) -> str | None:
    if not (folder / MLMODEL_FILE).exists():
        return None
    from mlflow.models import Model

    flavor = Model.load(str(folder / MLMODEL_FILE)).flavors.get("python_function", {})
    version = flavor.get("python_version")
    return str(version) if version else None
