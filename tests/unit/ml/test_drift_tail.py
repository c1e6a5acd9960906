"""One statistic's p-value against its past values (:mod:`airflow_ml.ml.drift_tail`): the empirical p-value,
the fitted tail beyond the history, and the effective sample size that normalises a statistic by its rows.

The fleet test simulates the nightly statistics (fixed seeds): a PSI of two samples from one distribution is
close to ``chi2(bins - 1) / n_eff``, the change of a missing rate to a normal difference of two shares.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from airflow_ml.ml.drift import js_distance, psi
from airflow_ml.ml.drift_calibration import adjust
from airflow_ml.ml.drift_tail import effective_rows, p_value

Q = 0.05


def test_the_empirical_p_value_counts_past_values_at_or_above_today() -> None:
    past = np.arange(1.0, 21.0)  # 1..20

    assert p_value(10.0, past, "psi") == ((1 + 11) / 21, "empirical")
    assert p_value(0.0, past, "psi") == (1.0, "empirical")


def test_beyond_the_history_a_fitted_tail_goes_below_one_over_n_plus_one() -> None:
    rng = np.random.default_rng(1)
    past = 0.01 * rng.chisquare(9, 40)

    p, method = p_value(1.0, past, "psi")  # ~100 times the usual value

    assert method == "gamma_tail"
    assert p < 1e-10 < 1 / 41
    # Just above the history's largest value the tail agrees with the history: no false certainty.
    p_edge, _ = p_value(float(past.max()) * 1.01, past, "psi")
    assert 1e-3 < p_edge <= 1 / 41


def test_a_constant_history_keeps_the_empirical_p_value() -> None:
    assert p_value(0.5, np.zeros(30), "missing_rate_change") == (1 / 31, "empirical")


def test_a_statistic_times_its_effective_sample_size_is_chi_square_whatever_the_rows() -> None:
    """The theory the normalisation rests on, checked on real PSI and JS distances of unequal samples."""
    rng = np.random.default_rng(18)
    for n1, n2 in ((200, 200), (200, 20_000), (5_000, 1_000)):
        n_eff = effective_rows(n1, n2)
        assert n_eff is not None
        psis = [psi(rng.normal(0, 1, n1), rng.normal(0, 1, n2)) * n_eff for _ in range(200)]
        js = [
            js_distance(rng.integers(0, 6, n1), rng.integers(0, 6, n2)) ** 2 * 8 * math.log(2) * n_eff
            for _ in range(200)
        ]
        assert np.mean(psis) == pytest.approx(9, rel=0.15)  # chi-square with bins - 1 = 9 degrees of freedom
        assert np.var(psis) == pytest.approx(18, rel=0.35)
        assert np.mean(js) == pytest.approx(5, rel=0.15)  # 6 categories: 5 degrees of freedom
    assert effective_rows(None, 10) is None
    assert effective_rows(0, 10) is None


def test_sides_that_share_rows_count_only_the_rows_they_do_not_share() -> None:
    """Overlapping sides (a rolling window's latest days against the previous snapshot): ``n1 n2 / (n1+n2-2m)``."""
    rng = np.random.default_rng(19)
    for n1, n2, m in ((5_600, 1_400, 1_200), (700, 700, 675), (2_000, 500, 0)):
        n_eff = effective_rows(n1, n2, m)
        assert n_eff is not None
        psis = []
        for _ in range(200):
            shared = rng.normal(0, 1, m)
            reference = np.concatenate([shared, rng.normal(0, 1, n1 - m)])
            current = np.concatenate([shared, rng.normal(0, 1, n2 - m)])
            psis.append(psi(reference, current) * n_eff)
        assert np.mean(psis) == pytest.approx(9, rel=0.15), (n1, n2, m)
    assert effective_rows(700, 700, 675) == pytest.approx(700 * 700 / 50)
    assert effective_rows(100, 100, 100) is None  # the same rows: no difference to measure
    assert effective_rows(100, 120, None) is None  # the overlap unknown


def rows_mixture_statistics(
    rng: np.random.Generator, rows: np.ndarray, features: int, nights: int
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """A heavy-tailed null: the rows compared vary from night to night (log-normal, a factor e apart).

    The new rows since the previous snapshot are a weekend, a holiday, a catch-up over three days: each night's
    statistic is chi-square over that night's effective sample size, and the raw values a scale mixture.

    Returns:
        The statistics ``(city, feature, night)`` and each night's effective sample size ``(city, night)``.
    """
    counts = np.maximum(20, rows[:, None] * rng.lognormal(0, 1, (rows.size, nights + 1))).astype(int)
    n_eff = counts[:, :-1] * counts[:, 1:] / (counts[:, :-1] + counts[:, 1:])
    shape = (rows.size, features, nights)
    share = 0.05
    return {
        "psi": rng.chisquare(9, shape) / n_eff[:, None, :],
        "missing_rate_change": np.abs(rng.normal(0, np.sqrt(share * (1 - share) / n_eff[:, None, :]), shape)),
    }, n_eff


@pytest.mark.slow
def test_a_fleet_whose_rows_vary_from_night_to_night_alarms_on_at_most_about_q_of_its_nights() -> None:
    """200 cities x 20 features x 2 statistics, 30 nights after 30; judged raw, the same fleet alarms far too often."""
    rng = np.random.default_rng(19)
    rows = rng.choice([200, 2_000, 20_000, 200_000], size=200)
    history_nights, nights = 30, 30
    stats, n_eff = rows_mixture_statistics(rng, rows, 20, history_nights + nights)

    def alarmed(night: int, *, normalised: bool) -> bool:
        ps = [
            p_value(
                values[c, f, night],
                values[c, f, :night],
                statistic,
                **({"n_eff": n_eff[c, night], "history_n_eff": n_eff[c, :night]} if normalised else {}),
            )[0]
            for statistic, values in stats.items()
            for c in range(values.shape[0])
            for f in range(values.shape[1])
        ]
        return bool((adjust(ps) <= Q).any())

    alarms = [alarmed(night, normalised=True) for night in range(history_nights, history_nights + nights)]
    raw = [alarmed(night, normalised=False) for night in range(history_nights, history_nights + 5)]

    tolerance = 2 * math.sqrt(Q * (1 - Q) / nights)
    assert np.mean(alarms) <= Q + tolerance
    # The heavy tail is real: judged raw, even with the shape's uncertainty integrated out, the same fleet alarms
    # on most nights (without it, on every night).
    assert np.mean(raw) >= 0.4
