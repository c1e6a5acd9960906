"""Hierarchical fallback: which parent model serves a city whose data is too thin for a model of its own."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from airflow_ml.templates.base import Strict

#: The DAG id and registered model of a template's global parent: ``<template>.global``.
GLOBAL_PARENT = "global"
#: The DAG id and registered model of a group's parent: ``<template>.group.<group>``.
GROUP_PARENT_PREFIX = "group."


class FallbackSpec(Strict):
    """Where a city with too little data gets its predictions from.

    ``parent: group`` trains one model per group (a country, a client) on the union of its cities' data;
    ``parent: global`` trains one model per template on the union of all its cities. A city's run whose
    snapshot has fewer than ``min_rows`` rows does not train: the city is served by its own champion if it
    has one, else by the parent's. A city that trains is promoted only if it beats, on its own holdout,
    the model that serves it: its champion, or the parent's while it has none.
    """

    parent: Literal["none", "group", "global"] = Field(
        default="none",
        description="none: no fallback; group: the model of the city's group (country or client), trained on "
        "the union of the group's cities; global: the template's model trained on the union of all its cities.",
    )
    min_rows: int = Field(
        default=1000,
        ge=1,
        le=1_000_000_000,
        description="A snapshot with fewer rows does not train a city model; the city falls back to its parent "
        "(1 to 1,000,000,000).",
    )
