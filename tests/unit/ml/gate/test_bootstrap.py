"""The gate's paired circular block bootstrap against resamples written out row by row, and on correlated errors."""

from __future__ import annotations

import numpy as np
import pytest

from airflow_ml.ml.gate.bootstrap import paired_bootstrap
from airflow_ml.ml.gate.judge import judge
from airflow_ml.ml.gate.records import GateDecision
from airflow_ml.ml.gate.rules import GateRules
from airflow_ml.ml.metrics import score

METRICS = ["rmse", "mae", "mape", "r2", "auc", "logloss"]
N = 1201  # not a multiple of the block lengths used: the last block is cut short


def _pair(metric: str, seed: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True values and two models' predictions of them (probabilities, with ties, for a binary metric)."""
    rng = np.random.default_rng(seed)
    if metric in {"auc", "logloss"}:
        y = (rng.random(N) < 0.3).astype(float)
        good = np.round(np.clip(y * 0.3 + rng.random(N) * 0.7, 0.01, 0.99), 2)
        return y, good, np.clip(y * 0.2 + rng.random(N) * 0.8, 0.01, 0.99)
    y = rng.gamma(3.0, 4.0, N)
    return y, y + rng.normal(0, 2, N), y + rng.normal(0, 2.2, N)


def _written_out(
    metric: str, y: np.ndarray, a: np.ndarray, b: np.ndarray, length: int, seed: int
) -> dict[str, tuple[float, float]]:
    """The intervals of resamples written out as row numbers: blocks of ``length`` rows from uniform starts on the
    circle of rows (one draw of all starts, as the bootstrap's single chunk at this size), the last block cut so
    that a resample has N rows, each resample scored by :func:`score`."""
    blocks = -(-N // length)
    starts = np.random.default_rng(seed).integers(0, N, size=(1000, blocks))
    steps = np.arange(length)
    scores: dict[str, list[float]] = {"challenger": [], "champion": []}
    for row in starts:
        full = ((row[:-1, None] + steps) % N).ravel()
        rows = np.concatenate([full, (row[-1] + steps[: N - full.size]) % N])
        scores["challenger"].append(score(metric, y[rows], a[rows]))
        scores["champion"].append(score(metric, y[rows], b[rows]))
    return {k: (float(np.quantile(v, 0.025)), float(np.quantile(v, 0.975))) for k, v in scores.items()}


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("length", [1, 7])
def test_a_resample_is_the_rows_of_its_circular_blocks_and_length_one_is_the_row_bootstrap(
    metric: str, length: int
) -> None:
    y, a, b = _pair(metric)

    result = paired_bootstrap(metric, y, a, b, resamples=1000, seed=5, block_length=length)

    expected = _written_out(metric, y, a, b, length, seed=5)
    assert result.block_length == length
    assert result.challenger == pytest.approx(expected["challenger"], rel=1e-9)
    assert result.champion == pytest.approx(expected["champion"], rel=1e-9)


def _ar1(rng: np.random.Generator, n: int, phi: float, sd: float) -> np.ndarray:
    """An AR(1) series of standard deviation ``sd``: each row keeps ``phi`` of the one before."""
    shocks = rng.normal(0, sd * np.sqrt(1 - phi**2), n)
    out = np.empty(n)
    out[0] = rng.normal(0, sd)
    for i in range(1, n):
        out[i] = phi * out[i - 1] + shocks[i]
    return out


def _correlated_noise(seed: int = 4, n: int = 3000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two models as good as each other whose errors differ by slow, strongly autocorrelated noise (a run of rows
    in time shares its weather): on this seed's holdout the challenger happens to look about 3% better."""
    rng = np.random.default_rng(seed)
    y = rng.gamma(4.0, 5.0, n)
    shared = rng.normal(0, 3.0, n)
    champion = y + shared + _ar1(rng, n, 0.97, 1.5)
    challenger = y + shared + _ar1(rng, n, 0.97, 1.5)
    return y, challenger, champion


@pytest.mark.parametrize("length", ["auto", 100])
def test_blocks_widen_the_interval_on_autocorrelated_errors_and_refuse_what_rows_would_promote(
    length: int | str,
) -> None:
    y, challenger, champion = _correlated_noise()

    def decide(block_length: int | str) -> GateDecision:
        rules = {"resamples": 1000, "confidence": 0.95, "seed": 0, "block_length": block_length}
        return judge("rmse", y, challenger, champion, rules=GateRules(bootstrap=rules))

    rows, blocks = decide(1), decide(length)

    assert rows.promote is True
    assert blocks.refused_by == "bootstrap"
    assert "includes 0" in blocks.reason
    assert rows.bootstrap is not None
    assert rows.bootstrap.improvement is not None
    assert blocks.bootstrap is not None
    assert blocks.bootstrap.improvement is not None
    (low, high), (block_low, block_high) = rows.bootstrap.improvement, blocks.bootstrap.improvement
    assert block_high - block_low > 1.5 * (high - low)
    assert blocks.bootstrap.block_length > 10


def test_auto_reads_a_short_block_from_independent_errors_and_long_enough_to_draw_at_most_10000_blocks() -> None:
    rng = np.random.default_rng(8)
    small, large = 2000, 60_000
    y = rng.gamma(3.0, 4.0, large)
    a, b = y + rng.normal(0, 2, large), y + rng.normal(0, 2, large)

    few = paired_bootstrap("mae", y[:small], a[:small], b[:small], resamples=200, block_length="auto")
    many = paired_bootstrap("mae", y, a, b, resamples=200, block_length="auto")

    assert few.block_auto
    assert many.block_auto
    assert few.block_length <= 3
    assert many.block_length == 6  # 60,000 rows / 10,000 blocks


def test_a_block_length_beyond_a_third_of_the_rows_is_cut_to_it_and_a_bad_one_is_refused() -> None:
    y, a, b = _pair("rmse")

    assert paired_bootstrap("rmse", y, a, b, resamples=100, block_length=10_000).block_length == N // 3
    for bad in (0, -3, 2.5, True, "hourly"):
        with pytest.raises(ValueError, match="must be a whole number of rows from 1, or 'auto'"):
            paired_bootstrap("rmse", y, a, b, resamples=100, block_length=bad)  # type: ignore[arg-type]


def test_a_tie_takes_the_block_length_of_the_challenger_alone_so_its_interval_is_the_first_models() -> None:
    rng = np.random.default_rng(9)
    y = rng.gamma(4.0, 5.0, 3000)
    challenger = y + _ar1(rng, 3000, 0.97, 3.0)  # its own errors are autocorrelated

    alone = paired_bootstrap("rmse", y, challenger, None, block_length="auto")
    tie = paired_bootstrap("rmse", y, challenger, challenger.copy(), block_length="auto")

    assert alone.block_length > 10
    assert tie.block_length == alone.block_length
    assert tie.challenger == tie.champion == alone.challenger
    assert tie.improvement == (0.0, 0.0)


def test_the_default_block_length_is_auto_as_in_the_gate_rules_and_templates() -> None:
    y, a, b = _pair("rmse")

    default = paired_bootstrap("rmse", y, a, b, resamples=100)

    assert default.block_auto
    assert default == paired_bootstrap("rmse", y, a, b, resamples=100, block_length="auto")


def test_auto_records_when_its_cap_cut_a_day_long_regime_and_not_on_independent_errors() -> None:
    rng = np.random.default_rng(3)
    n, day = 30_000, 3_000
    y = rng.normal(20, 5, n)
    shock = np.repeat(rng.normal(0, 1.5, n // day), day)  # the challenger's error scale swings day by day
    champion = y + rng.normal(0, 3, n)
    challenger = y + rng.normal(0, 1, n) * 3 * np.exp(0.25 * shock - 0.55)

    capped = paired_bootstrap("rmse", y, challenger, champion, resamples=100)
    independent = paired_bootstrap("rmse", y, y + rng.normal(0, 3, n), champion, resamples=100)
    fixed = paired_bootstrap("rmse", y, challenger, champion, resamples=100, block_length=day)

    assert capped.block_capped
    assert capped.block_length == int(np.ceil(3 * np.sqrt(n)))
    assert not independent.block_capped
    assert not fixed.block_capped
    record = GateDecision.from_dict(
        judge(
            "rmse", y, challenger, champion, rules=GateRules(min_improvement=0.0, bootstrap={"resamples": 100})
        ).to_dict()
    )
    assert record.bootstrap is not None
    assert record.bootstrap.block_capped


@pytest.mark.parametrize("length", [1, 20])
def test_r2_of_a_target_with_a_large_mean_is_exact_on_the_identity_resample(length: int) -> None:
    from airflow_ml.ml.gate import bootstrap

    rng = np.random.default_rng(0)
    n = 200_000
    y = 1e6 + rng.normal(0, 1, n)  # mean / sd = 1e6: sum(y^2) - sum(y)^2 / n would cancel away its digits
    p = y + rng.normal(0, 0.5, n)
    identity = np.arange(0, n, length)[None, :]  # every row once

    by_blocks = bootstrap._resample_scores("r2", bootstrap._block_sums("r2", y, p, length), identity, n)
    by_counts = bootstrap.weighted_scores("r2", y, p, np.ones((1, n)))

    assert by_blocks[0] == pytest.approx(score("r2", y, p), abs=1e-9)
    assert by_counts[0] == pytest.approx(score("r2", y, p), abs=1e-9)
