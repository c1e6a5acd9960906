"""Promote a challenger from shadow once the live comparison says so: the last step of shadow promotion.

In promotion mode ``shadow`` the gate leaves a winning challenger under its ``challenger`` alias; batch
scoring shadow-scores it; the monitor compares it with the champion on the same live rows
(:func:`airflow_ml.monitoring.shadow_compare.compare_shadow`) and, when the verdict says promote, calls
:func:`promote_shadow`, which moves ``champion`` through :func:`airflow_ml.ml.model_registry.promote` (so
``previous-champion`` and the rollback work as after any promotion) with a decision record saying
"shadow promotion" and the figures, and clears the city's demotion (:mod:`airflow_ml.ml.demotion_guard`).

An active demotion is obeyed, as the gate obeys it: live evidence is the more evidence a demotion that
``requires: shadow`` asks for, so the promotion goes ahead and its record names the rule; a ``cooldown`` refuses
every promotion until its end, and ``require_approval`` refuses it until a person approves one
(:func:`demotion_refusal` says which, and how to approve).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from airflow_ml.exceptions import AirflowMLError
from airflow_ml.ml import demotion_guard
from airflow_ml.ml.gate.modes import AWAITING_APPROVAL

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from airflow_ml.ml.demotion_guard import Demotion


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


def demotion_refusal(client: MlflowClient, name: str) -> tuple[Demotion | None, str | None]:
    """The city's active demotion, and why it refuses a shadow promotion (None when it allows one).

    ``shadow``: the live comparison is the evidence it asks for, so it allows the promotion; ``cooldown``: no
    promotion before its end; ``require_approval``: only a person's approval promotes.
    """
    found = demotion_guard.active_demotion(client, name)
    if found is None or found.requires == "shadow":
        return found, None
    rule = found.sentence()
    if found.requires == "cooldown":
        return found, (
            f"{rule}: no promotion before then, not even on live rows; the challenger stays in shadow and is "
            "compared again once the cool-down has ended"
        )
    return found, (
        f"{rule}: the promotion needs approval, live rows are not enough; to approve it, trigger the DAG {name} "
        "with promotion mode require_approval and approve its challenger under Required actions (or promotion "
        "mode force, with a reason)"
    )


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
        The decision record (``decision: promoted``, ``mode: shadow``, ``shadow``: the verdict's figures), logged
        as ``gate/shadow_promotion.json`` on the version's training run and summarised in its ``gate.*`` tags
        and description.

    Raises:
        ShadowPromotionRefused: when the verdict does not say promote, ``version`` is no longer the
            ``challenger`` or awaits a person's approval (:func:`awaiting_approval`), the champion is not
            ``champion_version``, or an active demotion refuses it (:func:`demotion_refusal`); nothing moves.
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
    if awaiting_approval(challenger.tags):
        raise ShadowPromotionRefused(
            f"{name} v{version}: {awaiting_approval(challenger.tags)}; nothing moved: a live comparison never "
            "promotes what a person was asked to approve"
        )
    champion = registry.version_by_alias(client, name, registry.CHAMPION)
    current = str(champion.version) if champion is not None else None
    if champion_version is not None and current != str(champion_version):
        raise ShadowPromotionRefused(
            f"{name}: the champion moved from v{champion_version} to v{current} since the live comparison; "
            "nothing moved, compare again against the new champion"
        )
    demoted, refusal = demotion_refusal(client, name)
    if refusal is not None:
        raise ShadowPromotionRefused(f"{name} v{version}: {refusal}")
    record = {
        "decision": "promoted",
        "mode": "shadow",
        "reason": f"shadow promotion: {verdict.reason}",
        "model_name": name,
        "challenger_version": version,
        "baseline_version": current,
        "shadow": verdict.to_dict(),
        # The rule of an active demotion that the live comparison met (``requires: shadow``), or None.
        "after_demotion": f"{demoted.sentence()}: met by the live comparison" if demoted is not None else None,
        **(context or {}),
    }
    if challenger.run_id:  # the figures, beside the gate's gate/decision.json; before moving champion, the last step
        client.log_dict(challenger.run_id, record, registry.SHADOW_ARTIFACT)
    registry.promote(client, name, version, record)
    cleared = demotion_guard.clear_demotion(client, name)
    return {**record, "cleared_demotion": cleared.to_dict() if cleared is not None else None}


def awaiting_approval(tags: Mapping[str, str] | None) -> str | None:
    """Why a version is not in shadow but awaits a person's answer (its ``gate.decision``), or None."""
    if (tags or {}).get("gate.decision") != AWAITING_APPROVAL:
        return None
    return f"it awaits approval (gate.decision {AWAITING_APPROVAL!r}): its approve task decides"
