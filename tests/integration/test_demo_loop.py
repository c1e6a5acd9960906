"""``make demo``'s run (``run_demo``) on a copy of the repository's templates: retraining, then the loop.

The copy's template is the repository's ``ride_duration`` under another name (so that its DAG ids are this test's
own in the session's dags folder), with its ``scoring:`` and ``monitoring:``. After the two retraining rounds,
each city's scoring DAG scores the three days after them with its champion, the outcomes arrive with lisbon's
trips 40% longer from the second day on (``data/demo_scoring.py``), and one monitor run demotes lisbon alone:
its live rmse is past the supervisor's line in both daily windows since. The live table shows each city's
newest window, its live rmse and the supervisor's decision.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from tests.support.mlflow_stores import wire_mlflow
from tests.support.worlds import copy_repository_config

pytestmark = pytest.mark.integration
TEMPLATE = "ride_duration_demo"
CITIES = ("berlin", "lisbon", "sao_paulo")


def _live_row(stdout: str, city: str) -> dict[str, str]:
    """The cells of ``city``'s row of the live table, cut where its dashed line puts its columns."""
    lines = stdout[stdout.index("Live, after scoring") :].splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("city "))
    dashes = lines[header + 1]
    starts = [m.start() for m in re.finditer(r"-+", dashes)]
    names = [lines[header][a:b].strip() for a, b in zip(starts, [*starts[1:], len(lines[header])], strict=True)]
    line = next(line for line in lines[header + 2 :] if line.startswith(city + " "))
    cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], len(line)], strict=True)]
    return dict(zip(names, cells, strict=True))


def test_the_demo_scores_with_each_champion_and_the_monitor_demotes_the_drifting_city(
    tmp_path: Path, airflow_db: Path, dags_dir: Path
) -> None:
    from mlflow import MlflowClient

    from airflow_ml.cli.demo_run import run_demo
    from airflow_ml.data.demo_scoring import DRIFTING_CITY, drift_start, scored_days
    from airflow_ml.data.prediction_log import read_predictions
    from airflow_ml.ml.demotion_guard import active_demotion

    config = copy_repository_config(tmp_path)
    templates = config["templates"]
    (templates / "templates" / "ride_duration.yaml").rename(templates / "templates" / f"{TEMPLATE}.yaml")
    for city_file in (templates / "cities").glob("*.yaml"):
        text = city_file.read_text(encoding="utf-8").replace("template: ride_duration\n", f"template: {TEMPLATE}\n")
        city_file.write_text(text, encoding="utf-8")
    expectations = str(config["expectations"])
    (dags_dir / "demo_loop.py").write_text(  # dag.test() serializes the DAGs it finds in the dags folder
        "from airflow_ml.factory import register_dags, register_score_dags\n"
        "from airflow_ml.factory.monitor_dags import register_monitor_dags\n"
        f"register_dags(globals(), templates_root={str(templates)!r}, expectations_dir={expectations!r})\n"
        f"register_score_dags(globals(), templates_root={str(templates)!r})\n"
        f"register_monitor_dags(globals(), templates_root={str(templates)!r})\n",
        encoding="utf-8",
    )
    data = tmp_path / "data"
    days = scored_days()
    assert DRIFTING_CITY == "lisbon"
    assert days[0] < drift_start() <= days[-2]  # two daily windows drift: k = 2 in the template
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_ML_DATA_ROOT", str(data))
        store = wire_mlflow(tmp_path / "mlflow", mp)
        client = MlflowClient(tracking_uri=store["tracking_uri"], registry_uri=store["tracking_uri"])

        terminal = io.StringIO()  # what the terminal shows (the tasks' logs go to the log file)
        code = run_demo(
            templates_root=templates,
            expectations_dir=config["expectations"],
            log_file=tmp_path / "demo.log",
            out=terminal,
        )
        out = terminal.getvalue()

    assert code == 0, out
    # A line per task as it ends (city, task, seconds, state), then one per run with its state and seconds.
    for city in CITIES:
        assert len(re.findall(rf"^   {city}\s+train\s+\d+\.\d s  success$", out, re.MULTILINE)) == 2, out
        assert re.search(rf"^-- {TEMPLATE}\.{city} success \(\d+ s\)$", out, re.MULTILINE), out
        assert re.search(rf"^   {city}\.score\s+score\s+\d+\.\d s  success$", out, re.MULTILINE), out
    for city in CITIES:  # the monitor's task, mapped over the cities, one line per city
        assert re.search(rf"^   {city}\s+monitor\s+\d+\.\d s  success$", out, re.MULTILINE), out
    # One line per run: every city's champion scores every day, then one monitor run.
    for day in days:
        for city in CITIES:
            assert f"-- {TEMPLATE}.{city}.score {day} success" in out, out
    assert f"-- {TEMPLATE}.monitor {days[-1]} success" in out, out
    served = {}
    for city in CITIES:
        logged = read_predictions(str(data), TEMPLATE, city, days[0], days[-1])
        assert set(logged["partition_date"]) == set(days), city
        served[city] = str(logged["model_version"].iloc[-1])
        assert set(logged["model_version"].astype(str)) == {served[city]}, city

    champions = {}
    for city in CITIES:
        champion = client.get_registered_model(f"{TEMPLATE}.{city}").aliases.get("champion")
        champions[city] = None if champion is None else str(champion)
    # lisbon, whose outcomes drifted, is rolled back (to its previous champion, or cleared for its fallback) ...
    assert champions["lisbon"] != served["lisbon"]
    demotion = active_demotion(client, f"{TEMPLATE}.lisbon")
    assert demotion is not None
    assert demotion.version == served["lisbon"]
    # ... with the supervisor's decision recorded beside the prediction log, and on the version.
    record = json.loads((data / "monitoring" / TEMPLATE / "lisbon" / f"{days[-1]}.json").read_text(encoding="utf-8"))
    assert record["status"] == "demote"
    assert record["rollback"]["rolled_back_version"] == served["lisbon"]
    assert client.get_model_version(f"{TEMPLATE}.lisbon", served["lisbon"]).tags["monitor.verdict"] == "demote"
    # The others keep the champion that scored, healthy.
    for city in ("berlin", "sao_paulo"):
        assert champions[city] == served[city], city
        assert active_demotion(client, f"{TEMPLATE}.{city}") is None, city
        assert client.get_model_version(f"{TEMPLATE}.{city}", served[city]).tags["monitor.verdict"] == "healthy"

    # The live table: each city's newest daily window, its live rmse with the interval, the supervisor's decision.
    lisbon = _live_row(out, "lisbon")
    assert lisbon["window"] == str(days[-1])
    assert re.fullmatch(r"rmse \d+\.\d{4} \[\d+\.\d+, \d+\.\d+\]", lisbon["live"]), lisbon
    assert float(lisbon["live"].split()[1]) > 1.2 * float(lisbon["holdout"])
    assert lisbon["supervisor"] == "demote"
    restored = champions["lisbon"]
    assert lisbon["champion"] == f"v{served['lisbon']} -> {f'v{restored}' if restored else 'none (fallback)'}"
    assert "rolled back" in lisbon["reason"]
    for city in ("berlin", "sao_paulo"):
        row = _live_row(out, city)
        assert (row["monitor"], row["window"], row["supervisor"]) == ("success", str(days[-1]), "healthy"), row
        assert row["champion"] == f"v{served[city]}"
        assert int(row["labels"].replace(",", "")) >= 300  # judged: min_labels
