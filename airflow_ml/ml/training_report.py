"""What a training run logs besides the model: feature importance and the code version."""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path

import lightgbm as lgb
import pandas as pd

#: Environment variable with the code version to record (e.g. the git commit the image was built from).
CODE_VERSION_ENV = "AIRFLOW_ML_CODE_VERSION"


def code_version() -> dict[str, str]:
    """The installed ``airflow-ml`` version, plus ``AIRFLOW_ML_CODE_VERSION`` (a git commit) when set."""
    try:
        package = metadata.version("airflow-ml")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        from airflow_ml import __version__ as package
    found = {"airflow_ml.version": package}
    commit = os.environ.get(CODE_VERSION_ENV, "").strip()
    if commit:
        found["airflow_ml.code_version"] = commit
    return found


def feature_importance(booster: lgb.Booster) -> pd.DataFrame:
    """Gain and split count per feature, most important first."""
    frame = pd.DataFrame(
        {
            "feature": booster.feature_name(),
            "gain": booster.feature_importance("gain"),
            "split": booster.feature_importance("split"),
        }
    )
    return frame.sort_values(["gain", "feature"], ascending=[False, True], ignore_index=True)


def write_feature_importance(booster: lgb.Booster, folder: Path) -> list[Path]:
    """Write ``feature_importance.csv`` and a bar chart ``feature_importance.png`` (total gain) to ``folder``."""
    # A bare Figure needs no pyplot, no backend switch and no global state: safe on a worker.
    from matplotlib.figure import Figure

    table = feature_importance(booster)
    csv_path = folder / "feature_importance.csv"
    table.to_csv(csv_path, index=False)
    figure = Figure(figsize=(7, 0.4 * len(table) + 1.2))
    axes = figure.subplots()
    ordered = table.iloc[::-1]
    axes.barh(ordered["feature"], ordered["gain"], color="#4c78a8")
    axes.set_xlabel("total gain")
    axes.set_title("Feature importance")
    figure.tight_layout()
    png_path = folder / "feature_importance.png"
    figure.savefig(png_path, dpi=100)
    return [csv_path, png_path]
