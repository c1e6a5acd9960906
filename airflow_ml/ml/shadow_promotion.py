"""Promote a challenger from shadow once the live comparison says so: the last step of shadow promotion.

In promotion mode ``shadow`` the gate leaves a winning challenger under its ``challenger`` alias; batch
scoring shadow-scores it; the monitor compares it with the champion on the same live rows
(:func:`airflow_ml.monitoring.shadow_compare.compare_shadow`) and, when the verdict says promote, calls
:func:`promote_shadow`, which moves ``champion`` through :func:`airflow_ml.ml.model_registry.promote` (so
``previous-champion`` and the rollback work as after any promotion) with a decision record saying
"shadow promotion" and the figures, and clears the city's demotion (:mod:`airflow_ml.ml.demotion_guard`):
live evidence is the more evidence a demotion asks for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from airflow_ml.exceptions import AirflowMLError
from airflow_ml.ml import demotion_guard

if TYPE_CHECKING:
    from mlflow import MlflowClient


class ShadowEvidence(Protocol):
    """What :func:`promote_shadow` needs of a verdict (``monitoring.shadow_compare.ShadowVerdict`` has it)."""

    @property
    def promote(self) -> bool:
        """Whether the challenger is to be promoted."""

    @property
    def reason(self) -> str:
        """Why, with the figures."""

    def to_dict(self) -> dict[str, Any]:
        """The figures, JSON-serialisable."""


class ShadowPromotionRefused(AirflowMLError, RuntimeError):
    """A shadow promotion that must not happen: the verdict says keep, or the aliases moved since it was made."""


def promote_shadow(
    client: MlflowClient,
    name: str,
    version: str,
    verdict: ShadowEvidence,
    context: dict[str, Any] | None = None,
    *,
    champion_version: str | None = None,
) -> dict[str, Any]:
    """Make ``version`` of ``name`` champion on the live comparison's verdict, and record it.

    Args:
        client: The MLflow client.
        name: The city's registered model.
        version: The challenger in shadow that the verdict is about.
        verdict: The live comparison's verdict; it must say promote.
        context: Who and where (e.g. ``airflow_run_id``, the monitor's windows), added to the record.
        champion_version: The champion the verdict compared against; when given, a champion that moved
            since refuses the promotion.

    Returns:
        The decision record, also set as ``gate.*`` tags of ``version`` (``decision: promoted``, ``mode:
        shadow``, ``shadow``: the verdict's figures).

    Raises:
        ShadowPromotionRefused: when the verdict does not say promote, ``version`` is no longer the
            ``challenger``, or the champion is not ``champion_version``; nothing moves.
    """
    from airflow_ml.ml import model_registry as registry

    version = str(version)
    if not verdict.promote:
        raise ShadowPromotionRefused(f"{name} v{version}: the live comparison keeps the champion ({verdict.reason})")
    challenger = registry.version_by_alias(client, name, registry.CHALLENGER)
    if challenger is None or str(challenger.version) != version:
        now = f"v{challenger.version}" if challenger is not None else "no version"
        raise ShadowPromotionRefused(
            f"{name}: the {registry.CHALLENGER!r} alias points at {now}, not v{version} that the verdict is about; "
            "nothing moved, compare the new challenger on its own live rows"
        )
    champion = registry.version_by_alias(client, name, registry.CHAMPION)
    current = str(champion.version) if champion is not None else None
    if champion_version is not None and current != str(champion_version):
        raise ShadowPromotionRefused(
            f"{name}: the champion moved from v{champion_version} to v{current} since the live comparison; "
            "nothing moved, compare again against the new champion"
        )
    record = {
        "decision": "promoted",
        "mode": "shadow",
        "reason": f"shadow promotion: {verdict.reason}",
        "model_name": name,
        "challenger_version": version,
        "baseline_version": current,
        "shadow": verdict.to_dict(),
        **(context or {}),
    }
    registry.promote(client, name, version, record)
    cleared = demotion_guard.clear_demotion(client, name)
    return {**record, "cleared_demotion": cleared.to_dict() if cleared is not None else None}
