"""The fleet's HTTP server (airflow_ml.scoring.http_app) on a real registry with real LightGBM models.

FastAPI's TestClient drives the real application; the models are trained on demo trips and registered as
training registers them; the prediction log is read back with the log's own reader.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from airflow_ml.data.prediction_ids import prediction_ids
from airflow_ml.data.prediction_log import read_predictions
from airflow_ml.ml import kill_switch
from airflow_ml.ml.model_cache import ModelCache, load_pyfunc
from airflow_ml.scoring.http_app import create_app
from airflow_ml.scoring.http_fleet import ServedCity
from tests.support.serving_models import TEMPLATE, client_of, demo_rows, feature_rows, register_trained
from tests.support.training_data import FEATURES

LISBON, GLOBAL = f"{TEMPLATE}.lisbon", f"{TEMPLATE}.global"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Lisbon: v1 (champion) and v2; the template's global parent: v1 (champion); no model for the others."""
    folder = tmp_path_factory.mktemp("registry")
    client = client_of(f"sqlite:///{folder}/mlflow.db")
    rows = demo_rows()
    register_trained(client, folder, LISBON, rows, rounds=10)
    register_trained(client, folder, LISBON, rows, rounds=40, champion=False)
    register_trained(client, folder, GLOBAL, demo_rows("berlin"), rounds=20)
    return client


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return demo_rows("lisbon", days=1)


def fleet(root: str) -> list[ServedCity]:
    def city(name: str, parent: str | None = GLOBAL, **kwargs: Any) -> ServedCity:
        return ServedCity(TEMPLATE, name, f"{TEMPLATE}.{name}", parent, tuple(FEATURES), root, **kwargs)

    return [
        city("lisbon"),
        city("porto"),  # no model of its own: the global parent serves it
        city("berlin", parent=None),  # nothing serves it
        city("faro", key_columns=("trip_id",), keep_columns=("pickup_zone", "surge")),
    ]


def make_app(client: Any, root: str, *, ttl: float = 0, **kwargs: Any) -> TestClient:
    """The app of :func:`fleet`; each request's rows are written at once unless ``log_flush_rows`` says otherwise."""
    cache = ModelCache(client, max_models=2, alias_ttl=ttl)
    kwargs.setdefault("log_flush_rows", 1)
    return TestClient(create_app(fleet(root), cache, client=client, alias_ttl=ttl, **kwargs))


@pytest.fixture
def api(registry: Any, tmp_path: Path) -> Iterator[TestClient]:
    with make_app(registry, str(tmp_path / "log")) as test_client:
        yield test_client


def predict(api: TestClient, city: str, rows: list[dict[str, Any]]) -> Any:
    return api.post(f"/v1/models/{TEMPLATE}/{city}:predict", json={"rows": rows})


def test_http_and_batch_give_the_same_prediction_and_id_for_the_same_row(
    api: TestClient, registry: Any, rows: pd.DataFrame, tmp_path: Path
) -> None:
    answer = predict(api, "lisbon", feature_rows(rows, 50))

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["model_name"], body["model_version"], body["source"], body["logged"]) == (LISBON, "1", "own", True)
    # What the batch run does with the same rows: the same version's pyfunc on the frame, the same ids.
    frame = rows.head(50)
    expected = load_pyfunc(registry, LISBON, "1").predict(frame[FEATURES])
    assert body["predictions"] == pytest.approx(list(expected), rel=0, abs=0)
    assert body["prediction_ids"] == prediction_ids(frame, FEATURES, namespace=f"{TEMPLATE}/lisbon")
    today = dt.datetime.now(dt.UTC).date()
    logged = read_predictions(str(tmp_path / "log"), TEMPLATE, "lisbon", today, today)
    assert logged["prediction_id"].tolist() == body["prediction_ids"]
    assert logged["prediction"].tolist() == body["predictions"]
    assert set(logged["model_version"]) == {"1"}
    assert set(logged["model_name"]) == {LISBON}
    files = list((tmp_path / "log" / "predictions" / TEMPLATE / "lisbon").glob("date=*/requests-*.parquet"))
    assert len(files) == 1


def test_the_route_is_exactly_predict_after_a_colon(api: TestClient, rows: pd.DataFrame) -> None:
    one = {"rows": feature_rows(rows, 1)}
    assert api.post(f"/v1/models/{TEMPLATE}/lisbon:explain", json=one).status_code == 404
    assert api.post(f"/v1/models/{TEMPLATE}/lisbon", json=one).status_code == 404
    assert api.post(f"/v1/models/{TEMPLATE}/lisbon:predictx", json=one).status_code == 404
    assert api.get(f"/v1/models/{TEMPLATE}/lisbon:predict").status_code == 405
    assert api.post(f"/v1/models/{TEMPLATE}/lisbon:predict", json=one).status_code == 200


def test_an_unknown_template_or_city_names_the_known_ones(api: TestClient, rows: pd.DataFrame) -> None:
    city = predict(api, "madrid", feature_rows(rows, 1))
    template = api.post("/v1/models/taxi/lisbon:predict", json={"rows": feature_rows(rows, 1)})

    assert city.status_code == template.status_code == 404
    assert city.json()["detail"]["message"] == (
        "no city 'madrid' in template 'ride_duration'; known cities: berlin, faro, lisbon, porto"
    )
    assert template.json()["detail"]["message"] == "no template 'taxi'; known templates: ride_duration"


def test_rows_that_break_the_signature_name_the_column(api: TestClient, rows: pd.DataFrame) -> None:
    good = feature_rows(rows, 3)
    missing = [{k: v for k, v in row.items() if k != "temperature_c"} for row in good]
    text = [{**row, "distance_km": "far"} if i == 2 else row for i, row in enumerate(good)]
    fraction = [{**good[0], "pickup_hour": 7.5}]

    for sent, column, words in (
        (missing, "temperature_c", "the rows have no column 'temperature_c'"),
        (text, "distance_km", "column 'distance_km': row 2 is 'far' (str), and the model's signature says double"),
        (fraction, "pickup_hour", "column 'pickup_hour': row 0 is 7.5, and the model's signature says long"),
    ):
        answer = predict(api, "lisbon", sent)
        assert answer.status_code == 422, answer.text
        assert answer.json()["detail"]["column"] == column
        assert words in answer.json()["detail"]["message"]
    assert predict(api, "lisbon", []).status_code == 422


def test_too_many_rows_are_refused_with_the_limit(registry: Any, rows: pd.DataFrame, tmp_path: Path) -> None:
    with make_app(registry, str(tmp_path), max_rows=5) as api:
        answer = predict(api, "lisbon", feature_rows(rows, 6))
    assert answer.status_code == 413
    assert answer.json()["detail"]["message"] == "6 rows: at most 5 per request; split them into batches"


def test_a_body_too_large_or_of_unknown_length_is_refused_before_it_is_read(registry: Any, tmp_path: Path) -> None:
    from airflow_ml.scoring.http_app import BODY_BYTES_PER_ROW

    with make_app(registry, str(tmp_path), max_rows=5) as api:
        huge = b'{"rows": [{"' + b"k" * (5 * BODY_BYTES_PER_ROW) + b'": 1}]}'  # one row, one enormous key
        too_large = api.post(
            "/v1/models/ride_duration/lisbon:predict", content=huge, headers={"Content-Type": "application/json"}
        )

        def chunks() -> Iterator[bytes]:
            yield b'{"rows": []}'

        unknown = api.post(
            "/v1/models/ride_duration/lisbon:predict", content=chunks(), headers={"Content-Type": "application/json"}
        )

    assert too_large.status_code == 413
    assert too_large.json()["detail"]["message"].startswith(f"a body of {len(huge)} bytes: at most ")
    assert unknown.status_code == 411
    assert "Content-Length" in unknown.json()["detail"]["message"]


def test_a_city_without_a_model_says_why_and_one_with_a_parent_is_served_by_it(
    api: TestClient, registry: Any, rows: pd.DataFrame
) -> None:
    nothing = predict(api, "berlin", feature_rows(rows, 1))
    parent = predict(api, "porto", feature_rows(rows, 5))

    assert nothing.status_code == 503
    assert nothing.json()["detail"]["message"].startswith("no model serves it: it has no registered model yet")
    assert parent.status_code == 200, parent.text
    body = parent.json()
    assert (body["model_name"], body["model_version"], body["source"]) == (GLOBAL, "1", "parent")
    expected = load_pyfunc(registry, GLOBAL, "1").predict(rows.head(5)[FEATURES])
    assert body["predictions"] == list(expected)
    assert body["prediction_ids"] == prediction_ids(rows.head(5), FEATURES, namespace=f"{TEMPLATE}/porto")


def test_the_kill_switch_stops_that_city_only(api: TestClient, registry: Any, rows: pd.DataFrame) -> None:
    kill_switch.disable(registry, LISBON, reason="predictions look wrong", by="ops")
    try:
        stopped = predict(api, "lisbon", feature_rows(rows, 1))
        other = predict(api, "porto", feature_rows(rows, 1))
    finally:
        kill_switch.enable(registry, LISBON, by="ops")
    again = predict(api, "lisbon", feature_rows(rows, 1))

    assert stopped.status_code == 503
    detail = stopped.json()["detail"]
    assert detail["message"].startswith("ride_duration.lisbon is disabled by the kill switch since ")
    assert "by ops: predictions look wrong (`airflow-ml enable` serves it again)" in detail["message"]
    assert (detail["source"], detail["disabled"]["reason"]) == ("disabled", "predictions look wrong")
    assert other.status_code == again.status_code == 200


def test_a_moved_champion_is_served_within_the_ttl(registry: Any, rows: pd.DataFrame, tmp_path: Path) -> None:
    ttl = 1.0
    sent = feature_rows(rows, 10)
    with make_app(registry, str(tmp_path), ttl=ttl) as api:
        assert predict(api, "lisbon", sent).json()["model_version"] == "1"
        registry.set_registered_model_alias(LISBON, "champion", "2")
        try:
            moved = time.monotonic()
            versions = []
            while time.monotonic() - moved < ttl + 5:
                started = time.monotonic()
                body = predict(api, "lisbon", sent).json()
                versions.append(body["model_version"])
                if body["model_version"] == "2":
                    break
                time.sleep(0.05)
            waited = started - moved  # when the first request answered by v2 was sent
            health = api.get("/v1/health").json()
        finally:
            registry.set_registered_model_alias(LISBON, "champion", "1")

    assert versions[0] == "1"  # the old champion answers until its answer is ttl seconds old
    assert versions[-1] == "2", versions
    assert waited < ttl + 1.0
    assert body["predictions"] == list(load_pyfunc(registry, LISBON, "2").predict(rows.head(10)[FEATURES]))
    # A request with a fresh answer makes no registry call: two reads for all those requests.
    assert health["registry_reads"] == 2
    assert health["models_loaded"] == [f"{LISBON}/1", f"{LISBON}/2"]


def test_key_columns_make_the_ids_and_kept_columns_are_logged(
    api: TestClient, rows: pd.DataFrame, tmp_path: Path
) -> None:
    sent = [{**row, "trip_id": trip} for row, trip in zip(feature_rows(rows, 4), rows["trip_id"], strict=False)]
    answer = predict(api, "faro", sent)
    no_key = predict(api, "faro", feature_rows(rows, 1))

    assert answer.status_code == 200, answer.text
    assert answer.json()["prediction_ids"] == prediction_ids(rows.head(4), ["trip_id"], namespace=f"{TEMPLATE}/faro")
    today = dt.datetime.now(dt.UTC).date()
    logged = read_predictions(str(tmp_path / "log"), TEMPLATE, "faro", today, today)
    assert logged["trip_id"].tolist() == rows["trip_id"].head(4).tolist()
    assert logged["pickup_zone"].tolist() == rows["pickup_zone"].head(4).tolist()
    assert "surge" not in logged.columns  # a kept column the request did not send
    assert no_key.status_code == 422
    assert no_key.json()["detail"]["message"].startswith("the rows have no key column 'trip_id'")


def test_the_same_row_twice_is_refused(api: TestClient, rows: pd.DataFrame) -> None:
    twice = feature_rows(rows, 1) * 2
    answer = predict(api, "lisbon", twice)
    assert answer.status_code == 422
    assert answer.json()["detail"]["message"].startswith("rows 0 and 1 have the same features")


@pytest.mark.parametrize("policy", ["refuse", "serve"])
def test_a_log_that_cannot_be_written_keeps_the_rows_then_refuses_or_serves_as_told_when_full(
    registry: Any, rows: pd.DataFrame, tmp_path: Path, policy: str
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the log's folder should be", encoding="utf-8")
    sent = feature_rows(rows, 4)
    with make_app(registry, str(blocked), on_log_failure=policy, log_buffer_rows=2, log_flush_seconds=3600) as api:
        kept = predict(api, "lisbon", sent[:2])  # its flush fails: the rows stay in the buffer
        answer = predict(api, "lisbon", sent[2:])  # no room left for these
        health = api.get("/v1/health").json()
        blocked.unlink()  # the log's root is writable again: the shutdown's flush writes the rows kept

    assert (kept.status_code, kept.json()["logged"]) == (200, True)
    assert health["log_failures"] == 1
    assert (health["log_buffer"]["buffered_rows"], health["log_buffer"]["flush_failures"]) == (2, 1)
    if policy == "refuse":
        assert answer.status_code == 503
        message = answer.json()["detail"]["message"]
        assert "cannot take the rows now: its buffer is full (the prediction log's buffer holds 2 rows" in message
        assert "--log-buffer-rows 2" in message
        assert "--on-log-failure serve" in message
        assert "request id " in message
        assert str(blocked) not in answer.text  # the path and the OS error stay in the server's log
    else:
        assert answer.status_code == 200
        assert answer.json()["logged"] is False
        assert len(answer.json()["predictions"]) == 2
    today = dt.datetime.now(dt.UTC).date()
    logged = read_predictions(str(blocked), TEMPLATE, "lisbon", today, today)
    assert logged["prediction_id"].tolist() == kept.json()["prediction_ids"]


def test_requests_are_buffered_per_city_and_written_one_file_per_flush(
    registry: Any, rows: pd.DataFrame, tmp_path: Path
) -> None:
    root = tmp_path / "log"
    folder = root / "predictions" / TEMPLATE / "lisbon"
    sent = feature_rows(rows, 21)
    with make_app(registry, str(root), log_flush_rows=6, log_flush_seconds=3600) as api:
        ids = [predict(api, "lisbon", sent[i : i + 3]).json()["prediction_ids"] for i in range(0, 21, 3)]
        predict(api, "porto", sent[:2])
        files_while_serving = sorted(folder.glob("date=*/requests-*.parquet"))
        health = api.get("/v1/health").json()
    files = sorted(folder.glob("date=*/requests-*.parquet"))

    # 7 requests of 3 rows: a flush at 6 rows, three times; the last 3 rows (and porto's 2) at shutdown.
    assert len(files_while_serving) == 3
    assert (health["log_buffer"]["flushes"], health["log_buffer"]["buffered_rows"]) == (3, 5)
    assert len(files) == 4
    assert len(list((root / "predictions" / TEMPLATE / "porto").glob("date=*/requests-*.parquet"))) == 1
    today = dt.datetime.now(dt.UTC).date()
    logged = read_predictions(str(root), TEMPLATE, "lisbon", today, today)
    assert sorted(logged["prediction_id"]) == sorted(pid for batch in ids for pid in batch)
    assert logged["scoring_run_id"].nunique() == 7  # each request keeps its own run id inside a shared file


def test_buffered_rows_are_written_once_they_are_old_enough(registry: Any, rows: pd.DataFrame, tmp_path: Path) -> None:
    folder = tmp_path / "log" / "predictions" / TEMPLATE / "lisbon"
    with make_app(registry, str(tmp_path / "log"), log_flush_rows=1000, log_flush_seconds=0.3) as api:
        predict(api, "lisbon", feature_rows(rows, 2))
        assert not list(folder.glob("date=*/requests-*.parquet"))
        waited = time.monotonic()
        while not list(folder.glob("date=*/requests-*.parquet")) and time.monotonic() - waited < 10:
            time.sleep(0.05)
        written = list(folder.glob("date=*/requests-*.parquet"))

    assert len(written) == 1


def test_models_lists_every_city_and_what_serves_it(api: TestClient) -> None:
    listed = {m["city"]: m for m in api.get("/v1/models").json()["models"]}

    assert sorted(listed) == ["berlin", "faro", "lisbon", "porto"]
    assert (listed["lisbon"]["model_name"], listed["lisbon"]["version"], listed["lisbon"]["source"]) == (
        LISBON,
        "1",
        "own",
    )
    assert (listed["porto"]["model_name"], listed["porto"]["source"]) == (GLOBAL, "parent")
    assert listed["berlin"]["source"] == "none"
    assert api.get("/v1/health").json()["status"] == "ok"


def test_an_unreachable_registry_is_a_503_that_says_why_and_keeps_the_details_in_the_log(
    rows: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    dead = MlflowClient(tracking_uri="http://127.0.0.1:9", registry_uri="http://127.0.0.1:9")
    with caplog.at_level("ERROR", logger="airflow_ml.scoring.http_app"), make_app(dead, str(tmp_path)) as api:
        answer = predict(api, "lisbon", feature_rows(rows, 1))
        listed = api.get("/v1/models").json()["models"]

    assert answer.status_code == 503
    detail = answer.json()["detail"]
    assert detail["message"].startswith("the model registry cannot be read for ride_duration/lisbon now; retry")
    assert detail["message"].endswith(f"(request id {detail['request_id']}: the server's log has the details)")
    assert "127.0.0.1:9" not in answer.text  # the registry's address and error stay on the server
    [logged] = [r for r in caplog.records if detail["request_id"] in r.getMessage()]
    assert "127.0.0.1:9" in logged.getMessage() or "127.0.0.1:9" in caplog.text
    assert {entry["source"] for entry in listed} == {"unknown"}
    assert listed[0]["reason"].startswith("cannot read the registry now; retry later (request id ")
    assert "127.0.0.1:9" not in str(listed)


def test_a_model_that_cannot_be_loaded_is_a_503_without_its_paths(
    rows: pd.DataFrame, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = client_of(f"sqlite:///{tmp_path}/mlflow.db")
    client.create_registered_model(LISBON)
    experiment = client.create_experiment(LISBON)
    run_id = client.create_run(experiment, tags={"airflow_ml.template": TEMPLATE, "airflow_ml.city": "lisbon"})
    gone = tmp_path / "deleted-artifacts" / "model"
    version = client.create_model_version(LISBON, str(gone), run_id=run_id.info.run_id)
    client.set_registered_model_alias(LISBON, "champion", version.version)
    with caplog.at_level("ERROR", logger="airflow_ml.scoring.http_app"), make_app(client, str(tmp_path)) as api:
        answer = predict(api, "lisbon", feature_rows(rows, 1))

    assert answer.status_code == 503
    detail = answer.json()["detail"]
    assert detail["message"].startswith(f"{LISBON} v1, which serves {TEMPLATE}/lisbon, cannot be loaded now")
    assert f"request id {detail['request_id']}" in detail["message"]
    assert "deleted-artifacts" not in answer.text
    assert any(detail["request_id"] in r.getMessage() and "deleted-artifacts" in r.getMessage() for r in caplog.records)


def test_a_date_time_key_sent_as_text_gets_the_batch_runs_prediction_id(
    registry: Any, rows: pd.DataFrame, tmp_path: Path
) -> None:
    import json

    # The batch run reads the key from parquet, as a date-time; the client sends it as ISO 8601 text.
    batch = pd.read_parquet(_parquet(rows.head(5), tmp_path / "day.parquet"))
    sent = json.loads(rows.head(5)[[*FEATURES, "pickup_at"]].to_json(orient="records", date_format="iso"))
    assert isinstance(sent[0]["pickup_at"], str)
    city = ServedCity(
        TEMPLATE,
        "sintra",
        LISBON,
        None,
        tuple(FEATURES),
        str(tmp_path / "log"),
        key_columns=("pickup_at",),
        column_kinds={"pickup_at": "time", "distance_km": "numeric"},
    )
    cache = ModelCache(registry, max_models=2, alias_ttl=0)
    with TestClient(create_app([city], cache, client=registry, alias_ttl=0)) as api:
        answer = predict(api, "sintra", sent)
        words = predict(api, "sintra", [{**sent[0], "pickup_at": "yesterday"}])
        number = predict(api, "sintra", [{**sent[0], "pickup_at": 1767571295000}])
        mixed = predict(api, "sintra", [sent[0], {**sent[1], "pickup_at": sent[1]["pickup_at"] + "+01:00"}])

    assert answer.status_code == 200, answer.text
    assert answer.json()["prediction_ids"] == prediction_ids(batch, ["pickup_at"], namespace=f"{TEMPLATE}/sintra")
    today = dt.datetime.now(dt.UTC).date()
    logged = read_predictions(str(tmp_path / "log"), TEMPLATE, "sintra", today, today)
    assert logged["pickup_at"].tolist() == batch["pickup_at"].tolist()  # logged as a date-time, as batch logs it
    for refused in (words, number, mixed):
        assert refused.status_code == 422, refused.text
        assert refused.json()["detail"]["column"] == "pickup_at"
    assert "row 0 is 'yesterday', not a date-time" in words.json()["detail"]["message"]
    assert "ISO 8601" in number.json()["detail"]["message"]
    assert "mixes date-times with and without a UTC offset" in mixed.json()["detail"]["message"]


def _parquet(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_parquet(path, index=False)
    return path
