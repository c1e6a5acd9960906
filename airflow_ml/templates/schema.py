"""JSON Schema of the YAML files, for editors (yaml-language-server) and CI."""

from __future__ import annotations

from typing import Any

from airflow_ml.templates.models import CityConfig, TemplateConfig


def file_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of one kind of file: ``city``, ``group`` or ``template``.

    City and group files are overlays: they hold only what differs, so no nested setting is required
    in them (a city still needs ``city`` and ``template``). Unknown keys stay forbidden everywhere.
    """
    if kind == "template":
        schema = TemplateConfig.model_json_schema()
        schema["required"] = [r for r in schema.get("required", []) if r != "template"]
        schema["title"] = "airflow-ml template"
        return schema
    if kind not in ("city", "group"):
        raise ValueError(f"unknown kind {kind!r}; use 'city', 'group' or 'template'")
    schema = CityConfig.model_json_schema()
    for definition in schema.get("$defs", {}).values():
        definition.pop("required", None)
    if kind == "group":
        for own in ("city", "template", "group", "display_name"):
            schema["properties"].pop(own, None)
        schema["required"] = []
    else:
        schema["required"] = ["city", "template"]
    schema["title"] = f"airflow-ml {kind} file"
    return schema
