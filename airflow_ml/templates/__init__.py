"""YAML templates and city files: pydantic models, layered merge and precise errors. No Airflow import."""

from __future__ import annotations

from airflow_ml.templates.loader import load_city_configs, load_city_file, load_template
from airflow_ml.templates.models import CityConfig, ParentConfig
from airflow_ml.templates.parent_loader import load_parent_configs

__all__ = ["CityConfig", "ParentConfig", "load_city_configs", "load_city_file", "load_parent_configs", "load_template"]
