"""The drift step's calibrated half on real snapshots: the history it keeps, its p-values, the fleet, the stop rule."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from airflow_ml.data.snapshot import Manifest, take_snapshot
from airflow_ml.ml import drift_history as store
from airflow_ml.ml.drift_tail import effective_rows
from airflow_ml.ml.steps.drift_calibration_step import apply_stop_rule, calibrate_run, record_history
from airflow_ml.ml.steps.drift_review_step import review_fleet
from airflow_ml.ml.steps.step_settings import DriftReviewSettings, DriftSettings

FEATURES = ["x1", "x2", "x3"]
SETTINGS = DriftSettings(
    model_name="ride_duration.oslo",
    features=FEATURES,
    target="y",
    time_column="ts",
    min_new_days=1,
    calibration={"min_history": 5, "min_flagged": 2, "q": 0.05},
)


def night(root: Path, city: str, day: int, *, shift: float = 0.0, seed: int | None = None) -> Manifest:
    """One snapshot of ``city`` holding the one partition of day ``day`` (x1 and x2 moved by ``shift``)."""
    rng = np.random.default_rng(day if seed is None else seed)
    date = dt.date(2026, 3, 1) + dt.timedelta(days=day)
    folder = root / "raw" / city / f"date={date}"
    folder.mkdir(parents=True)
    frame = pd.DataFrame({f: rng.normal(0, 1, 400) for f in FEATURES})
    frame[["x1", "x2"]] += shift
    frame["y"] = frame["x1"] + rng.normal(0, 0.1, 400)
    frame["ts"] = pd.Timestamp(date) + pd.to_timedelta(rng.integers(0, 86_400, 400), unit="s")
    frame.to_parquet(folder / "part.parquet")
    return take_snapshot(
        str(folder.parent), str(root / "snapshots"), template="ride_duration", city=city, run_id=f"night-{day}"
    )


def run_night(root: Path, city: str, day: int, **kwargs: float) -> dict:
    manifest = night(root, city, day, **kwargs)
    run = calibrate_run(manifest, SETTINGS)
    record_history(run, None)
    return run.section


def test_the_first_snapshot_is_recorded_without_values_and_the_next_is_compared_with_it(tmp_path: Path) -> None:
    first = run_night(tmp_path, "oslo", 0)
    second = run_night(tmp_path, "oslo", 1)

    history = store.read_history(store.history_uri(str(tmp_path), "ride_duration", "oslo"))
    assert first["previous_snapshot"] is None
    assert "first recorded snapshot" in first["note"]
    assert "/snapshots/ride_duration/oslo/night-0-" in second["previous_snapshot"]["uri"]
    assert history["snapshot_hash"].nunique() == 2
    # One row per (snapshot, column, statistic): 3 features and the label, each with its statistic and missing rate.
    assert len(history) == 2 * 4 * 2
    newest = store.latest_rows(history)
    assert newest["value"].notna().all()
    assert set(newest["basis"]) == {"fixed_thresholds"}  # 0 past values < min_history 5


def test_a_rerun_of_the_same_snapshot_replaces_its_rows(tmp_path: Path) -> None:
    run_night(tmp_path, "oslo", 0)
    manifest = night(tmp_path, "oslo", 1)
    for _ in range(2):
        record_history(calibrate_run(manifest, SETTINGS), "run-1")

    history = store.read_history(store.history_uri(str(tmp_path), "ride_duration", "oslo"))
    assert len(history) == 2 * 8
    assert set(store.latest_rows(history)["drift_run_id"]) == {"run-1"}


def test_two_shifted_features_are_flagged_against_the_citys_history_and_stop_the_run(tmp_path: Path) -> None:
    for day in range(7):  # 6 comparisons: min_history 5 is reached
        run_night(tmp_path, "oslo", day)
    manifest = night(tmp_path, "oslo", 7, shift=1.0)

    run = calibrate_run(manifest, SETTINGS)
    record = apply_stop_rule({"status": "passed", "checks": [], "summary": "drift PASSED"}, run)

    by_column = {(c["column"], c["statistic"]): c for c in run.section["columns"]}
    assert by_column[("x1", "psi")]["basis"] == "history"
    assert by_column[("x1", "psi")]["n_history"] == 6
    assert by_column[("x1", "psi")]["method"] == "gamma_tail"
    assert by_column[("x3", "psi")]["q_value"] > 0.05
    assert set(run.section["flagged"]) == {"x1", "x2"}  # features; the label (y follows x1) stops on its own
    assert record["status"] == "failed"
    assert record["status_fixed_thresholds"] == "passed"
    assert any(reason.startswith("the label drifted") for reason in record["stopped_by"])
    assert any("2 feature(s) flagged" in reason for reason in record["stopped_by"])
    assert record["summary"].startswith("drift FAILED by the calibrated stop rule")
    assert run.metrics()["drift_q.x1.psi"] <= 0.05


def test_the_history_keeps_each_statistics_counts_and_judges_values_normalised_by_them(tmp_path: Path) -> None:
    for day in range(7):
        run_night(tmp_path, "oslo", day)

    run = calibrate_run(night(tmp_path, "oslo", 7), SETTINGS)

    history = store.read_history(store.history_uri(str(tmp_path), "ride_duration", "oslo"))
    compared = history[history["value"].notna()]
    # The previous snapshot holds every day so far; today's new rows are the one new day.
    assert sorted(set(compared["reference_n"])) == [400 * day for day in range(1, 7)]
    assert set(compared["current_n"]) == {400}
    by_column = {(c["column"], c["statistic"]): c for c in run.section["columns"]}
    assert by_column[("x1", "psi")]["scale"] == "rows"
    assert (by_column[("x1", "psi")]["reference_n"], by_column[("x1", "psi")]["current_n"]) == (2800, 400)


def test_a_history_written_before_the_counts_were_kept_is_judged_raw_and_the_record_says_so(tmp_path: Path) -> None:
    for day in range(7):
        run_night(tmp_path, "oslo", day)
    uri = store.history_uri(str(tmp_path), "ride_duration", "oslo")
    # As an older release wrote it: no count columns at all.
    store.read_history(uri).drop(columns=["reference_n", "current_n"]).to_parquet(uri)

    run = calibrate_run(night(tmp_path, "oslo", 7), SETTINGS)

    x1 = {(c["column"], c["statistic"]): c for c in run.section["columns"]}[("x1", "psi")]
    assert (x1["basis"], x1["scale"], x1["n_history"]) == ("history", "raw", 6)
    assert "raw values judged: 0 of 6 past value(s) carry their row counts (< min_history 5)" in x1["note"]
    assert 0 < x1["p_value"] <= 1


def test_the_run_adjusts_its_p_values_with_the_fleets_latest(tmp_path: Path) -> None:
    for city in ("oslo", "rome"):
        for day in range(7):
            run_night(tmp_path, city, day, seed=day + (100 if city == "rome" else 0))

    run = calibrate_run(night(tmp_path, "oslo", 7), SETTINGS)

    assert (run.section["fleet"]["cities"], run.section["fleet"]["tests"]) == (2, 16)
    own = [c for c in run.section["columns"] if c["p_value"] is not None]
    assert all(c["q_value"] >= c["p_value"] for c in own)


def test_a_record_without_checks_keeps_its_status_and_gains_the_calibration(tmp_path: Path) -> None:
    run = calibrate_run(night(tmp_path, "oslo", 0), SETTINGS)

    record = apply_stop_rule({"status": "skipped", "reason": "no champion yet"}, run)

    assert record["status"] == "skipped"
    assert record["calibration"]["stop"] is False


def fleet_of(root: Path, cities: tuple[str, ...], nights: int = 7) -> None:
    for number, city in enumerate(cities):
        for day in range(nights):
            run_night(root, city, day, seed=day + 100 * number)


def test_a_run_and_the_review_give_the_same_q_values_for_the_same_records(tmp_path: Path) -> None:
    fleet_of(tmp_path, ("oslo", "rome", "lima", "paris"))  # paris: removed from the templates since
    review_settings = DriftReviewSettings(template="ride_duration", cities={"oslo": "a", "rome": "b", "lima": "c"})
    review_fleet(None, review_settings, data_root=str(tmp_path))  # lists the family for the runs

    run = calibrate_run(night(tmp_path, "oslo", 7, shift=0.3), SETTINGS)
    record_history(run, None)
    review = review_fleet(None, review_settings, data_root=str(tmp_path))

    at_run = {f"{c['column']}.{c['statistic']}": c["q_value"] for c in run.section["columns"] if c["q_value"]}
    assert len(at_run) == 8
    assert review["cities"]["oslo"]["q_values"] == pytest.approx(at_run, rel=1e-12)
    assert run.section["fleet"]["tests"] == review["tests"] == 24
    assert run.section["fleet"]["family"]["source"] == "review"


def test_a_city_removed_from_the_templates_no_longer_counts_at_run_time_or_in_the_review(tmp_path: Path) -> None:
    fleet_of(tmp_path, ("oslo", "rome", "paris"))
    today = night(tmp_path, "oslo", 7)
    before = calibrate_run(today, SETTINGS)  # no review yet: every city with a history
    # paris is removed from the templates: the review lists the cities still configured.
    review = review_fleet(
        None, DriftReviewSettings(template="ride_duration", cities={"oslo": "a", "rome": "b"}), data_root=str(tmp_path)
    )

    after = calibrate_run(today, SETTINGS)

    assert before.section["fleet"]["family"] == {
        "source": "no_review_yet",
        "members": None,
        "max_age_days": 45,
        "listed_at": None,
        "note": "",
        "joined_since_review": [],
    }
    assert (before.section["fleet"]["cities"], before.section["fleet"]["tests"]) == (3, 24)
    assert (after.section["fleet"]["cities"], after.section["fleet"]["tests"]) == (2, 16)
    assert review["tests"] == 16
    assert "paris" in review["left_out"]
    assert (tmp_path / "drift_history" / "ride_duration" / "latest" / "paris.parquet").exists()  # kept, not read


def test_a_city_added_since_the_review_counts_at_once_in_every_other_citys_run(tmp_path: Path) -> None:
    fleet_of(tmp_path, ("oslo", "rome"))
    review_fleet(
        None, DriftReviewSettings(template="ride_duration", cities={"oslo": "a", "rome": "b"}), data_root=str(tmp_path)
    )
    fleet_of(tmp_path, ("lima",))  # configured after the review: only a configured city writes records

    run = calibrate_run(night(tmp_path, "oslo", 7), SETTINGS)

    family = run.section["fleet"]["family"]
    assert (family["source"], family["members"], family["joined_since_review"]) == ("review", 2, ["lima"])
    assert run.section["fleet"]["cities"] == 3


def write_family_file(root: Path, text: str) -> None:
    path = root / "drift_history" / "ride_duration" / "family.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_a_stale_family_list_is_not_used_and_the_record_says_why(tmp_path: Path) -> None:
    fleet_of(tmp_path, ("oslo", "rome", "paris"))
    listed = (dt.datetime.now(dt.UTC) - dt.timedelta(days=46)).isoformat()
    write_family_file(tmp_path, f'{{"cities": ["oslo"], "max_age_days": 45, "listed_at": "{listed}"}}')

    run = calibrate_run(night(tmp_path, "oslo", 7), SETTINGS)

    family = run.section["fleet"]["family"]
    assert (family["source"], family["members"]) == ("review_stale", None)
    assert "more than its max_age_days 45 ago (is the drift review DAG paused or failing?)" in family["note"]
    assert run.section["fleet"]["cities"] == 3


def test_an_unreadable_family_list_is_said_in_the_record_and_the_log_not_taken_for_no_review(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fleet_of(tmp_path, ("oslo", "rome"))
    write_family_file(tmp_path, '{"cities": ["oslo"], "max_age_')

    with caplog.at_level("WARNING", logger="airflow_ml.ml.drift_family"):
        run = calibrate_run(night(tmp_path, "oslo", 7), SETTINGS)

    family = run.section["fleet"]["family"]
    assert family["source"] == "unreadable"
    assert "family.json is unreadable (JSONDecodeError" in family["note"]
    assert "the next review rewrites it, check the store" in caplog.text
    assert run.section["fleet"]["cities"] == 2


def test_a_city_that_stopped_running_leaves_the_family_after_max_age_days(tmp_path: Path) -> None:
    fleet_of(tmp_path, ("oslo", "rome"))
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=46)

    run = calibrate_run(night(tmp_path, "oslo", 7), SETTINGS, now=later)
    review = review_fleet(
        None,
        DriftReviewSettings(template="ride_duration", cities={"oslo": "a", "rome": "b"}),
        data_root=str(tmp_path),
        now=later,
    )

    assert (run.section["fleet"]["cities"], run.section["fleet"]["tests"]) == (1, 8)
    assert review["left_out"]["rome"].endswith("is older than drift.calibration.max_age_days 45")
    assert review["tests"] == 0  # oslo's newest record is as old as rome's: nothing recent enough


# --- the default windowing: rolling snapshots whose compared rows overlap --------------------------------------
# Each night a city's snapshot is its latest 28 days (window_days: 28) and the drift step compares, with the
# default min_new_days 7 and min_new_rows 200, the previous snapshot with this one's latest 7 days, or with the
# whole snapshot when those hold fewer than 200 rows: six of the seven days (or all days but one) are on both
# sides. Under no drift the calibrated p-values must still be uniform, whatever the city's size and whether its
# weekly rows straddle min_new_rows (it then switches between the two modes from night to night, and both modes'
# nights are judged: their values normalised by the overlap-corrected n_eff are one distribution, pooled).

WINDOW_DAYS = 28
WINDOW_START = dt.date(2026, 1, 1)
WINDOWED_SETTINGS = DriftSettings(  # the default windowing: compare new_rows, min_new_days 7, min_new_rows 200
    model_name="ride_duration.any",
    features=["x1", "x2"],
    target="y",
    time_column="ts",
    calibration={"min_history": 20},
)


def write_days(root: Path, city: str, rows_per_day: float, days: int, seed: int) -> Path:
    """``days`` daily partitions of one unchanging distribution (Poisson rows a day, x2 missing 5% of the time)."""
    rng = np.random.default_rng(seed)
    source = root / "raw" / city
    for day in range(days):
        date = WINDOW_START + dt.timedelta(days=day)
        n = max(1, int(rng.poisson(rows_per_day)))
        frame = pd.DataFrame({"x1": rng.normal(0, 1, n), "x2": rng.exponential(1.0, n)})
        frame.loc[rng.random(n) < 0.05, "x2"] = np.nan
        frame["y"] = frame["x1"] + rng.normal(0, 0.5, n)
        frame["ts"] = pd.Timestamp(date) + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s")
        folder = source / f"date={date}"
        folder.mkdir(parents=True)
        frame.to_parquet(folder / "part.parquet")
    return source


def nightly_p_values(root: Path, city: str, rows_per_day: float, nights: int, seed: int) -> pd.DataFrame:
    """Run the real drift calibration every night on the city's rolling snapshot; per night its compare mode and
    calibrated p-values, each with its statistic and its value times n_eff (a night without one: p None)."""
    source = write_days(root, city, rows_per_day, WINDOW_DAYS + nights, seed)
    out = []
    for night in range(nights):
        end = WINDOW_START + dt.timedelta(days=WINDOW_DAYS - 1 + night)
        manifest = take_snapshot(
            str(source),
            str(root / "snapshots"),
            template="ride_duration",
            city=city,
            run_id=f"night-{night}",
            window_days=WINDOW_DAYS,
            end=end,
        )
        now = dt.datetime.combine(end, dt.time(3), dt.UTC)
        run = calibrate_run(manifest, WINDOWED_SETTINGS, now=now)
        record_history(run, None)
        mode = run.section["compared"]["mode"] if run.section["compared"] else None
        judged = [e for e in run.entries if e["p_value"] is not None] or [{"p_value": None}]
        out += [
            {
                "night": night,
                "mode": mode,
                "p": e["p_value"],
                "statistic": e.get("statistic"),
                "normalised": (e.get("value") or np.nan)
                * (effective_rows(e.get("reference_n"), e.get("current_n"), e.get("overlap_n")) or np.nan),
            }
            for e in judged
        ]
    return pd.DataFrame(out)


@pytest.mark.slow
def test_no_drift_p_values_are_not_anti_conservative_on_overlapping_rolling_snapshots(tmp_path: Path) -> None:
    # 400 rows a day: always new_rows; 27 a day: the latest 7 days hold about 182 rows, so the city switches
    # between new_rows and whole_snapshot; 8 a day: always the whole snapshot.
    cities = {"large": 400.0, "straddling": 26.0, "small": 8.0}
    found = pd.concat(
        [
            nightly_p_values(tmp_path, city, rows, 100, seed).assign(city=city)
            for seed, (city, rows) in enumerate(cities.items())
        ]
    )

    modes = found.dropna(subset=["mode"]).groupby("city")["mode"].agg(set).to_dict()
    assert modes["large"] == {"new_rows"}
    assert modes["small"] == {"whole_snapshot"}
    assert modes["straddling"] == {"new_rows", "whole_snapshot"}, modes
    # Every night from min_history on is judged, in both modes: the straddling city's rarer new_rows nights
    # too (judged only against their own mode, they would wait for 20 of their own, months at this size).
    straddling = found[(found["city"] == "straddling") & (found["night"] > 20)]
    nights = straddling.groupby(["mode", "night"])["p"].agg(lambda p: p.notna().all())
    assert nights.all(), nights[~nights]
    assert nights.loc["new_rows"].size >= 3, nights.groupby(level="mode").size()
    # The overlap-corrected n_eff makes both modes' PSI * n_eff chi-square(bins - 1): the same mean.
    psis = straddling[straddling["statistic"] == "psi"].groupby("mode")["normalised"].mean()
    assert psis.to_numpy() == pytest.approx([9, 9], rel=0.25), psis
    found = found.dropna(subset=["p"])
    assert found.groupby("city").size().min() >= 300  # most nights are judged
    by_city = found.groupby("city")["p"]
    shares = by_city.apply(lambda p: float(np.mean(p <= 0.01))).to_dict()
    tiny = by_city.apply(lambda p: float(np.mean(p <= 1e-3))).to_dict()
    # Uniform p-values put 1% at or below 0.01. The tests of one night, and of nights whose windows overlap,
    # are correlated, so the tolerance is wide. Judged as independent samples against a history of both modes,
    # the straddling city's rare new_rows nights stand far out: about 2% of its p-values fall below 0.001.
    for city in cities:
        assert shares[city] <= 0.035, (city, shares)
        assert tiny[city] <= 0.01, (city, tiny)
