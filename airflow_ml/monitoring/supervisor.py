"""The supervisor: should a city's champion be demoted, given its live metric per window? A pure decision.

A window **breaches** when it has at least ``min_labels`` labels and its live metric is worse than the holdout
score at promotion by more than ``tolerance`` (relative), with the interval's bound on the holdout's side past
that line too: for an error metric (rmse, mae, mape, logloss) the interval's *lower* bound is above
``holdout * (1 + tolerance)``; for a score (r2, auc) its *upper* bound is below ``holdout - tolerance * |holdout|``.
So noise alone does not breach.

The champion is demoted when the newest ``consecutive_windows`` (k) judged windows all breach. A window with
fewer than ``min_labels`` labels is not judged: it breaks a streak, except the newest windows that have no
label at all yet (labels arrive late: they are waiting, not evidence). ``mode: alert`` decides the same but
moves nothing; ``mode: off`` decides nothing. A city a person holds (the kill switch: ``held``) is judged as in
mode ``alert``, whatever the mode, and the reason says who holds it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from airflow_ml.ml.metrics import DIRECTIONS
from airflow_ml.ml.steps.step_settings import SupervisorSettings
from airflow_ml.monitoring.live_metrics import WindowMetric

#: The supervisor's verdicts.
DEMOTE, ALERT, HEALTHY, TOO_FEW_LABELS, NO_HOLDOUT, OFF = (
    "demote",
    "alert",
    "healthy",
    "too_few_labels",
    "no_holdout_score",
    "off",
)


@dataclass(frozen=True)
class SupervisorDecision:
    """What the supervisor decided, and the figures behind it.

    Attributes:
        verdict: ``demote`` (mode auto), ``alert`` (the same finding in mode alert), ``healthy``,
            ``too_few_labels`` (no window has ``min_labels``), ``no_holdout_score`` or ``off``.
        act: Whether the champion is to be rolled back (``demote`` only).
        reason: One sentence a person can act on.
        metric: The metric.
        holdout_score: The champion's holdout score at promotion, or None.
        threshold: The live value past which a window breaches, or None.
        streak: Breaching judged windows in a row, newest last.
        breached: The windows of that streak (``start``/``end`` and figures), oldest first.
        judged_windows: Windows with at least ``min_labels`` labels.
        rules: The supervisor's settings as applied.
    """

    verdict: str
    act: bool
    reason: str
    metric: str
    holdout_score: float | None
    threshold: float | None
    streak: int
    breached: tuple[dict[str, Any], ...]
    judged_windows: int
    rules: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        return {**asdict(self), "breached": [dict(w) for w in self.breached]}


def threshold(metric: str, holdout_score: float, tolerance: float) -> float:
    """The live value past which a window is worse than ``holdout_score`` by more than ``tolerance`` (relative)."""
    margin = tolerance * abs(holdout_score)
    return holdout_score + margin if DIRECTIONS[metric] == "minimize" else holdout_score - margin


def breaches(window: WindowMetric, *, metric: str, line: float, min_labels: int) -> bool:
    """Whether one window is judged and past ``line``, its interval's near bound included."""
    if window.labels < min_labels or window.value is None:
        return False
    if DIRECTIONS[metric] == "minimize":
        return window.value > line and window.low is not None and window.low > line
    return window.value < line and window.high is not None and window.high < line


def decide(
    windows: Sequence[WindowMetric],
    *,
    metric: str,
    holdout_score: float | None,
    settings: SupervisorSettings,
    held: str | None = None,
) -> SupervisorDecision:
    """The supervisor's decision for one city's windows (oldest first); see the module's docstring.

    ``held`` (e.g. ``disabled: <reason>``) makes a finding that would demote an alert only, naming it.
    """
    k, n = settings.consecutive_windows, settings.min_labels
    judged = [w for w in windows if w.labels >= n and w.value is not None]

    def verdict(
        name: str, reason: str, line: float | None = None, streak: Sequence[WindowMetric] = ()
    ) -> SupervisorDecision:
        return SupervisorDecision(
            verdict=name,
            act=name == DEMOTE,
            reason=reason,
            metric=metric,
            holdout_score=holdout_score,
            threshold=line,
            streak=len(streak),
            breached=tuple(w.to_dict() for w in streak),
            judged_windows=len(judged),
            rules=asdict(settings),
        )

    if settings.mode == "off":
        return verdict(OFF, "supervisor.mode is off: live metrics are recorded, nothing is judged")
    if holdout_score is None or not math.isfinite(holdout_score):
        return verdict(
            NO_HOLDOUT,
            f"the champion has no holdout score of {metric} at promotion (version tag gate.challenger_score); "
            "nothing to compare with",
        )
    line = threshold(metric, holdout_score, settings.tolerance)
    waiting = len(windows)
    while waiting > 0 and windows[waiting - 1].labels == 0:
        waiting -= 1  # the newest windows whose labels have not arrived yet
    streak: list[WindowMetric] = []
    for window in reversed(windows[:waiting]):
        if not breaches(window, metric=metric, line=line, min_labels=n):
            break
        streak.append(window)
    streak.reverse()
    worse = "above" if DIRECTIONS[metric] == "minimize" else "below"
    past = f"{metric} {worse} {line:.6g} (holdout {holdout_score:.6g} with tolerance {settings.tolerance:.0%})"
    if len(streak) >= k:
        shown = ", ".join(_window_text(w) for w in streak[-k:])
        act = settings.mode == "auto" and held is None
        what = "rolled back" if act else f"alert only ({held or 'supervisor.mode alert'}): nothing moves"
        reason = f"live {past} in the last {len(streak)} window(s) in a row (k={k}, n={n}): {shown}; {what}"
        return verdict(DEMOTE if act else ALERT, reason, line, streak)
    if not judged:
        labels = max((w.labels for w in windows), default=0)
        return verdict(TOO_FEW_LABELS, f"no window has {n} labels yet (the most: {labels}); nothing is judged", line)
    reason = f"{len(streak)} window(s) in a row with live {past}; {k} needed to act ({len(judged)} judged)"
    return verdict(HEALTHY, reason, line, streak)


def _window_text(window: WindowMetric) -> str:
    return (
        f"{window.start}..{window.end}: {window.value:.6g} [{window.low:.6g}, {window.high:.6g}], "
        f"{window.labels} labels"
    )
