"""The retention of every DAG under a templates folder (each city's and parent's ``retention:``), for the prune step.

Apart from :mod:`~airflow_ml.templates.retention_spec`, which the city model imports: this module reads the
templates through the loader, which imports the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from airflow_ml.exceptions import ConfigError
from airflow_ml.templates.files import TEMPLATES_SUBDIR, template_names, unknown_template
from airflow_ml.templates.loader import load_city_configs
from airflow_ml.templates.models import CityConfig, ParentConfig
from airflow_ml.templates.parent_loader import load_parent_configs


@dataclass(frozen=True)
class RetentionPolicies:
    """The retention of every DAG under a templates folder, as plain values for the prune step.

    Attributes:
        keep_last: ``(template, city) -> N`` for each DAG whose retention is on (fallback parents included,
            their ``city`` being ``global`` or ``group.<group>``).
        kept: ``(template, city) -> why`` for each DAG that keeps every snapshot.
        templates: The templates in scope.
        cities: The city ids of the templates in scope (old-layout snapshots are keyed by city alone).
        errors: Files that do not load; their DAGs are unknown to the prune step, so it keeps their snapshots.
        model_names: ``(template, city) -> registered model`` of every DAG in scope (by ``registry.name_pattern``).
    """

    keep_last: dict[tuple[str, str], int] = field(default_factory=dict)
    kept: dict[tuple[str, str], str] = field(default_factory=dict)
    templates: list[str] = field(default_factory=list)
    cities: list[str] = field(default_factory=list)
    errors: list[ConfigError] = field(default_factory=list)
    model_names: dict[tuple[str, str], str] = field(default_factory=dict)


def retention_policies(root: Path, template: str | None = None) -> RetentionPolicies:
    """Read every city and fallback parent under ``root`` (a templates folder) for its ``retention:``.

    Args:
        root: The templates folder (``dag_templates``).
        template: Only this template's DAGs; all templates when None.

    Raises:
        ConfigError: when ``root`` has no templates, or ``template`` is not one of them (with a suggestion).
    """
    known = template_names(root / TEMPLATES_SUBDIR)
    if not known:
        raise ConfigError(str(root / TEMPLATES_SUBDIR), ["no template file here; give the templates folder (--root)"])
    unknown = None if template is None else unknown_template(template, root / TEMPLATES_SUBDIR)
    if unknown:
        raise ConfigError(str(root / TEMPLATES_SUBDIR), [unknown])
    scope = [template] if template is not None else known
    configs, errors = load_city_configs(root)
    parents, parent_errors = load_parent_configs(root)
    policies = RetentionPolicies(templates=scope, errors=[*errors, *parent_errors])
    dags: list[CityConfig | ParentConfig] = [*configs, *parents]
    for config in dags:
        if config.template not in scope:
            continue
        key = (config.template, config.city)
        policies.model_names[key] = config.model_name
        if config.retention.enabled:
            policies.keep_last[key] = config.retention.keep_last
        else:
            policies.kept[key] = f"retention.enabled is false for {config.dag_id}"
        if key[1] not in policies.cities:
            policies.cities.append(key[1])
    return policies
