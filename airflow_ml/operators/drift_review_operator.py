"""The nightly drift review of a template: every city's latest p-values adjusted together (Benjamini-Yekutieli)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk import Context

from airflow_ml import settings as config
from airflow_ml.hooks.storage_credentials import DEFAULT_AWS_CONN_ID, storage_options
from airflow_ml.operators.base_operator import MlflowBaseOperator


class DriftReviewOperator(MlflowBaseOperator):
    """Adjust the newest drift p-values of a template's family together and store the q-values per city.

    Reads ``<data_root>/drift_history/<template>/`` (written by the cities' drift tasks), adjusts the family's
    newest p-values together with Benjamini-Yekutieli at ``q`` (:mod:`airflow_ml.ml.drift_family`: per
    configured city recent enough, its newest snapshot's; the members are written to ``family.json`` for the
    cities' runs) and writes the q-values to ``review.json`` beside the histories, to ``fleet_review`` in each
    city's ``drift.json`` and to its newest drift run in MLflow (``drift_q_fleet.*`` metrics,
    ``airflow_ml.drift_review_*`` tags); see
    :mod:`airflow_ml.ml.steps.drift_review_step`. It stops no run: each run decided on its run-time q-values.
    A city whose record or run could not be updated is logged as a warning.

    Args:
        settings: :meth:`DriftReviewSettings.to_dict <airflow_ml.ml.steps.step_settings.DriftReviewSettings.to_dict>`.
        data_root: Root of snapshots and drift histories; defaults to ``AIRFLOW_ML_DATA_ROOT``.
        aws_conn_id: Airflow connection (type ``aws``) for an ``s3://`` data root.

    Returns (XCom): ``tests``, ``cities`` (per city the flagged features with their q-values and
    ``would_stop``), ``without_history``, ``left_out`` (cities with a history outside the family, and why) and
    ``problems``.
    """

    template_fields: Sequence[str] = ()
    ui_color = "#e8f1fb"

    def __init__(
        self,
        *,
        settings: Mapping[str, Any],
        data_root: str | None = None,
        aws_conn_id: str | None = DEFAULT_AWS_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.settings = dict(settings)
        self.data_root = data_root
        self.aws_conn_id = aws_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_ml.ml.steps.drift_review_step import review_fleet
        from airflow_ml.ml.steps.step_settings import DriftReviewSettings

        review_settings = DriftReviewSettings.from_dict(self.settings)
        root = config.data_root(self.data_root)
        review = review_fleet(
            self.hook.get_conn(),
            review_settings,
            data_root=root,
            storage_options=storage_options(root, aws_conn_id=self.aws_conn_id),
        )
        self.log.info(
            "drift review of %s: %d p-value(s) of %d city(ies) adjusted together at q %g",
            review["template"],
            review["tests"],
            len(review["cities"]),
            review["q"],
        )
        for city, entry in sorted(review["cities"].items()):
            alone = [name for name in ("label", "prediction") if entry[f"{name}_flagged"]]
            if entry["flagged"] or alone:
                flagged = ", ".join(f"{c} (q={q:.3g})" for c, q in sorted(entry["flagged"].items()))
                label = f"; the {' and the '.join(alone)} too" if alone else ""
                stop = " (would stop a run)" if entry["would_stop"] else ""
                self.log.warning("%s: flagged %s%s%s", city, flagged or "no feature", label, stop)
        if review["without_history"]:
            self.log.info("no p-value yet (history too short): %s", ", ".join(review["without_history"]))
        for city, why in sorted(review["left_out"].items()):
            self.log.info("left out of the family: %s (%s)", city, why)
        for problem in review["problems"]:
            self.log.warning("%s", problem)
        return {key: review[key] for key in ("tests", "cities", "without_history", "left_out", "problems")}
