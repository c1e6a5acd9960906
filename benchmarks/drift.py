"""The nightly fleet drift review against the same statistics computed with plain numpy in one loop.

**The world** (fresh temporary folder, fixed seed): ``--cities`` cities of one template, each with ``--features``
features (every fourth categorical: JS distance, the others PSI; each also its missing-rate change: two tests a
feature) and ``--days`` nights of drift history. Each night's statistics are drawn under no drift for the rows
compared that night (city sizes from 200 to 200,000 rows a night, catch-up nights of two or three days), so the
counts vary as they do in the field. The history is written as the drift task writes it: the first night with
no value (nothing to compare with yet), the nights before the newest with ``drift_history.write_rows``, then
the newest night as a drift run does it: ``read_history``, ``before``, ``calibrate`` (p-values against the
city's own history, normalised by the rows compared), ``with_fleet``, ``write_rows`` (which also writes the
city's ``latest/`` file) and the newest snapshot's ``drift.json``. The earlier nights' rows keep their values
and row counts; their p-values (never read again) are left empty.

**Measured**, each a fresh process (imports timed apart), interleaved, median of ``--repeat``:

- *review*: ``drift_review_step.review_fleet``, the function ``DriftReviewOperator`` calls (read every city's
  ``latest/`` file, the family's tests, Benjamini-Yekutieli, ``fleet_review`` into each city's ``drift.json``,
  ``review.json``, ``family.json``), with no MLflow client: the reference has no counterpart to the drift
  runs' metrics. The step rather than ``dag.test()``: an Airflow database per world and the task runner
  would add seconds that are not the review's; the operator's XCom (the review's ``cities``) is left out too.
- *p-values*: what the cities' drift tasks compute for the review, one city after the other in one process:
  ``read_history``, ``before``, ``calibrate`` on the newest night. The review itself only reads them.
- *reference*: the same p-values written as plain numpy/scipy in one loop over the histories held in memory
  (loaded before its clock starts: no I/O), then ``scipy.stats.false_discovery_control(method="by")``.

The script stops unless the reference's p-values equal the cities' and its q-values equal the review's.
A last process times the review's parts apart (reading, the family, the adjustment, the rest: records
assembled and written).

    .venv/bin/python benchmarks/drift.py --cities 1000 --features 20 --days 60 --repeat 5
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from drift_world import TEMPLATE, prepare  # benchmarks/ is the script's folder, first on sys.path

REPO = Path(__file__).resolve().parent.parent
KINDS = ("review", "pvalues", "reference")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cities", type=int, default=1000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--days", type=int, default=60, help="nights of history, the newest included")
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes of each kind (median)")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--child", choices=(*KINDS, "parts"), help=argparse.SUPPRESS)
    parser.add_argument("--world", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _CHILDREN[args.child](Path(args.world))
        return
    if args.days < 4:
        parser.error("--days must be at least 4 (a first night, a history, the newest night)")
    loads = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="airflow-ml-bench-drift-") as tmp:
        world = Path(tmp)
        started = time.perf_counter()
        meta = prepare(world, args.cities, args.features, args.days, args.seed)
        print(f"world written in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
        _measure("review", world)  # unmeasured: every measured review then finds the records a review leaves
        runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
        for repeat in range(args.repeat):
            for kind in KINDS:
                runs[kind].append(_measure(kind, world))
            print(f"  repeat {repeat + 1}/{args.repeat} done", file=sys.stderr, flush=True)
        agreed = _check(world, runs)
        parts = _measure("parts", world)["parts"]
    _print(args, meta, runs, agreed, parts)
    print(f"\nload average (1, 5, 15 min) at the start {_fmt(loads)}, at the end {_fmt(os.getloadavg())}")


def _fmt(loads: tuple[float, ...]) -> str:
    return ", ".join(f"{x:.2f}" for x in loads)


# --- the measured processes ---


def _measure(kind: str, world: Path) -> dict[str, Any]:
    start = time.perf_counter()
    cmd = [sys.executable, __file__, "--child", kind, "--world", str(world)]
    proc = subprocess.Popen(cmd, cwd=world, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate()
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{kind} run failed:\n{err.decode()[-3000:]}")
    return {"wall": elapsed, **json.loads(out.decode().strip().splitlines()[-1])}


def _report(started: float, imported: float, clock: float, done: float, **extra: Any) -> None:
    """The child's last line: imports, work (after ``clock``), CPU and peak RSS of the whole process."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    figures = {"imports": imported - started, "work": done - clock, "cpu": usage.ru_utime + usage.ru_stime}
    print(json.dumps({**figures, "rss_mb": _peak_rss_mb(usage.ru_maxrss), **extra}))


def _peak_rss_mb(maxrss_kb: int) -> float:
    """This process's own peak resident set (``VmHWM``).

    Not ``ru_maxrss``: on Linux a child started by ``fork``/``vfork`` then ``exec`` inherits the parent's peak
    in it, and the parent that wrote the world is larger than any child.
    """
    try:
        status = Path("/proc/self/status").read_text(encoding="utf-8")
    except OSError:
        return maxrss_kb / 1024
    return next((int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmHWM:")), 0.0)


def _run_review(world: Path) -> None:
    started = time.perf_counter()
    from airflow_ml.ml.steps.drift_review_step import review_fleet
    from airflow_ml.ml.steps.step_settings import DriftReviewSettings

    _lazy_imports()
    imported = time.perf_counter()
    meta = json.loads((world / "world.json").read_text(encoding="utf-8"))
    settings = DriftReviewSettings(template=TEMPLATE, cities={c: f"{TEMPLATE}.{c}" for c in meta["cities"]})
    clock = time.perf_counter()
    review = review_fleet(None, settings, data_root=meta["root"], now=dt.datetime.fromisoformat(meta["now"]))
    done = time.perf_counter()
    if review["problems"] or review["without_history"] or review["left_out"]:
        raise SystemExit(f"the review met problems: {review['problems'][:3]}, {review['left_out']}")
    qs = {f"{city}|{name}": q for city, entry in review["cities"].items() for name, q in entry["q_values"].items()}
    (world / "review-q.json").write_text(json.dumps(qs), encoding="utf-8")
    _report(started, imported, clock, done, tests=review["tests"])


def _lazy_imports() -> None:
    """What the project imports inside its functions, imported with the rest (imports are reported apart)."""
    import pyarrow.dataset  # noqa: F401 - fleet_latest
    import scipy.stats  # noqa: F401 - the gamma tail, the adjustment


def _run_pvalues(world: Path) -> None:
    started = time.perf_counter()
    from airflow_ml.ml import drift_history as store
    from airflow_ml.ml.drift_calibration import CalibrationRules, calibrate

    _lazy_imports()
    imported = time.perf_counter()
    meta = json.loads((world / "world.json").read_text(encoding="utf-8"))
    rules = CalibrationRules(min_history=meta["min_history"])
    keys = ["column", "kind", "statistic", "value", "reference_n", "current_n", "overlap_n"]
    clock = time.perf_counter()
    ps, reading = {}, 0.0
    for city in meta["cities"]:
        before_read = time.perf_counter()
        history = store.read_history(store.history_uri(meta["root"], TEMPLATE, city))
        reading += time.perf_counter() - before_read
        newest = store.latest_rows(history)
        past = store.before(history, str(newest["snapshot_hash"].iloc[0]))
        columns = [newest[k].tolist() for k in keys]
        today = [dict(zip(keys, values, strict=True)) for values in zip(*columns, strict=True)]
        for entry in calibrate(today, past, rules, season=str(newest["season"].iloc[0])):
            ps[f"{city}|{entry['column']}.{entry['statistic']}"] = entry["p_value"]
    done = time.perf_counter()
    (world / "pvalues-p.json").write_text(json.dumps(ps), encoding="utf-8")
    _report(started, imported, clock, done, parts={"read histories": reading, "calibrate": done - clock - reading})


#: ``drift_calibration``'s constants, restated: the reference shares no code with the project.
_TAIL_EXCEEDANCES = _MIN_TAIL_FIT = 5


def _run_reference(world: Path) -> None:
    started = time.perf_counter()
    import numpy as np
    from scipy.special import gammaln
    from scipy.stats import f, false_discovery_control

    imported = time.perf_counter()
    meta = json.loads((world / "world.json").read_text(encoding="utf-8"))
    arrays = np.load(world / "fleet.npz")
    values, ref_n, cur_n = arrays["values"], arrays["ref_n"], arrays["cur_n"]
    squared = [statistic != "psi" for _, _, statistic in meta["tests"]]
    shapes = np.exp(np.linspace(math.log(0.05), math.log(500.0), 160))
    clock = time.perf_counter()
    p_values = np.full(values.shape[:2], np.nan)
    for c in range(values.shape[0]):
        for t in range(values.shape[1]):
            v, n1, n2 = values[c, t, 1:], ref_n[c, t, 1:], cur_n[c, t, 1:]  # night 0: nothing compared
            scaled = (np.square(v) if squared[t] else v) * (n1 * n2 / (n1 + n2))
            past, today = scaled[:-1], float(scaled[-1])
            if past.size < meta["min_history"]:
                continue
            n = past.size
            exceed = int(np.sum(past >= today))
            p = (1 + exceed) / (1 + n)
            positive = past[past > 0]
            if exceed < _TAIL_EXCEEDANCES and n >= _MIN_TAIL_FIT and positive.size >= _MIN_TAIL_FIT and today > 0:
                mean = float(positive.mean())
                s = math.log(mean) - float(np.log(positive).mean())
                if s > 1e-12:
                    m = positive.size
                    loglik = -m * shapes * s - m * gammaln(shapes) + gammaln(m * shapes) - m * shapes * math.log(m)
                    w = np.exp(loglik - loglik.max())
                    k, w = shapes[w > 1e-12], w[w > 1e-12]
                    p = min(p, float(np.sum(w * f.sf(today / mean, 2 * k, 2 * m * k)) / w.sum()))
            p_values[c, t] = p
    adjusting = time.perf_counter()
    judged = ~np.isnan(p_values)
    qs = np.full(p_values.shape, np.nan)
    qs[judged] = false_discovery_control(p_values[judged], method="by")
    done = time.perf_counter()
    out = {}
    for c, city in enumerate(meta["cities"]):
        for t, (column, _, statistic) in enumerate(meta["tests"]):
            out[f"{city}|{column}.{statistic}"] = [p_values[c, t], qs[c, t]]
    (world / "reference-pq.json").write_text(json.dumps(out), encoding="utf-8")
    _report(started, imported, clock, done, parts={"p-values": adjusting - clock, "adjustment": done - adjusting})


def _run_parts(world: Path) -> None:
    """The review's parts timed apart in one warm process; the rest is assembling and writing the records."""
    from airflow_ml.ml import drift_history as store
    from airflow_ml.ml.drift_calibration import adjust
    from airflow_ml.ml.drift_family import Family
    from airflow_ml.ml.steps.drift_review_step import COLUMNS, review_fleet
    from airflow_ml.ml.steps.step_settings import DriftReviewSettings

    meta = json.loads((world / "world.json").read_text(encoding="utf-8"))
    now = dt.datetime.fromisoformat(meta["now"])
    settings = DriftReviewSettings(template=TEMPLATE, cities={c: f"{TEMPLATE}.{c}" for c in meta["cities"]})
    review_fleet(None, settings, data_root=meta["root"], now=now)  # warm: the first call pays one-time costs
    start = time.perf_counter()
    review_fleet(None, settings, data_root=meta["root"], now=now)
    whole = time.perf_counter() - start
    start = time.perf_counter()
    everyone = store.fleet_latest(meta["root"], TEMPLATE, columns=COLUMNS)  # as the review reads it
    read = time.perf_counter() - start
    family = Family(members=tuple(sorted(settings.cities)), max_age_days=settings.max_age_days, source="review")
    start = time.perf_counter()
    fleet = family.tests(everyone, now=now)
    left_out = family.left_out(everyone, now=now)
    chosen = time.perf_counter() - start
    start = time.perf_counter()
    adjust(fleet["p_value"].tolist())
    adjusted = time.perf_counter() - start
    parts = {
        "read latest/ (fleet_latest)": read,
        f"the family's tests ({len(left_out)} left out)": chosen,
        "adjustment (Benjamini-Yekutieli)": adjusted,
        "records assembled and written": whole - read - chosen - adjusted,
        "the whole review, warm": whole,
    }
    print(json.dumps({"parts": parts}))


_CHILDREN = {"review": _run_review, "pvalues": _run_pvalues, "reference": _run_reference, "parts": _run_parts}


# --- the check and the table ---


def _check(world: Path, runs: dict[str, list[dict[str, Any]]]) -> str:
    """Stop unless the reference's p-values equal the cities' and its q-values the review's."""
    reference = json.loads((world / "reference-pq.json").read_text(encoding="utf-8"))
    review_q = json.loads((world / "review-q.json").read_text(encoding="utf-8"))
    cities_p = json.loads((world / "pvalues-p.json").read_text(encoding="utf-8"))
    judged = {key for key, (p, _) in reference.items() if p == p}
    if set(review_q) != judged or {k for k, p in cities_p.items() if p is not None} != judged or not judged:
        raise SystemExit(f"the review adjusted {len(review_q)} tests, the reference {len(judged)}: not the same tests")
    worst_p = max(abs(cities_p[k] - reference[k][0]) / reference[k][0] for k in judged)
    worst_q = max(abs(review_q[k] - reference[k][1]) / reference[k][1] for k in judged)
    if worst_p > 1e-9 or worst_q > 1e-9:
        raise SystemExit(f"the reference disagrees: relative differences p {worst_p:.3g}, q {worst_q:.3g}")
    flagged = sum(reference[k][1] <= 0.05 for k in judged)
    return (
        f"q-values agreed: {len(judged):,} of {len(judged):,} tests (largest relative difference {worst_q:.1e}; "
        f"p-values {worst_p:.1e}); {flagged} flagged at q 0.05"
    )


def _print(
    args: argparse.Namespace,
    meta: dict[str, Any],
    runs: dict[str, list[dict[str, Any]]],
    agreed: str,
    parts: dict[str, float],
) -> None:
    def med(kind: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[kind])

    tests = args.cities * len(meta["tests"])
    print(
        f"drift review, {args.cities:,} cities x {args.features} features ({tests:,} tests), {args.days} nights of "
        f"history (min_history {meta['min_history']}); median of {args.repeat} fresh processes each"
    )
    print(f"{'':>24} {'review':>8} {'p-values':>9} {'reference':>10} {'review/ref':>11} {'(p+review)/ref':>15}")
    for label, key in (("process (imports incl.)", "wall"), ("work after imports", "work"), ("imports", "imports")):
        review, pvalues, reference = (med(kind, key) for kind in KINDS)
        print(
            f"{label:>24} {review:>7.2f}s {pvalues:>8.2f}s {reference:>9.2f}s {review / reference:>11.2f} "
            f"{(pvalues + review) / reference:>15.2f}"
        )
    review, pvalues, reference = (med(kind, "cpu") for kind in KINDS)
    print(
        f"{'CPU (user+sys)':>24} {review:>7.2f}s {pvalues:>8.2f}s {reference:>9.2f}s {review / reference:>11.2f} "
        f"{(pvalues + review) / reference:>15.2f}"
    )
    review, pvalues, reference = (max(r["rss_mb"] for r in runs[kind]) for kind in KINDS)
    print(f"{'peak RSS':>24} {review:>6.0f}MB {pvalues:>7.0f}MB {reference:>8.0f}MB {review / reference:>11.2f}")
    print(
        "each run (review, p-values, reference):",
        [tuple(round(r["wall"], 2) for r in trio) for trio in zip(*runs.values(), strict=True)],
    )
    print(agreed)
    print("\nparts (median)")
    for kind in ("pvalues", "reference"):
        for name in runs[kind][0]["parts"]:
            print(f"{kind + ': ' + name:>44} {statistics.median(r['parts'][name] for r in runs[kind]):>8.3f}s")
    print("the review's parts, one warm process")
    for name, seconds in parts.items():
        print(f"{name:>44} {seconds:>8.3f}s")


if __name__ == "__main__":
    main()
