"""``airflow_ml.operators`` exports every operator class, and the provider info names every module that has one."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import airflow_ml.operators as operators
from airflow_ml.get_provider_info import get_provider_info

PACKAGE = Path(operators.__file__).parent


def test_every_operator_class_is_exported_from_the_package() -> None:
    defined = {}
    for path in PACKAGE.glob("*_operator.py"):
        module = importlib.import_module(f"airflow_ml.operators.{path.stem}")
        for name, value in vars(module).items():
            if inspect.isclass(value) and value.__module__ == module.__name__ and name.endswith("Operator"):
                defined[name] = value

    assert set(operators.__all__) == set(defined)
    for name, value in defined.items():
        assert getattr(operators, name) is value


def test_the_provider_info_names_modules_that_exist() -> None:
    (group,) = get_provider_info()["operators"]

    for module in group["python-modules"]:
        importlib.import_module(module)
    # Every module with a task's operator is listed (base_operator holds only the bases they share).
    tasks = {f"airflow_ml.operators.{p.stem}" for p in PACKAGE.glob("*_operator.py") if p.stem != "base_operator"}
    assert sorted(tasks - set(group["python-modules"])) == []
