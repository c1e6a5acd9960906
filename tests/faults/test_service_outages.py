"""A city's runs survive, or fail cleanly, when the services under them fail for real.

One production-like world: the data root on S3 (moto's server, in this process), MLflow as its own
``mlflow server`` process whose backend store is a private PostgreSQL cluster. The runs build on each
other, as nights do:

1. PostgreSQL restarts (``pg_ctl restart -m fast``) while the training run is open: the run completes,
   nothing is lost, a first champion is made.
2. The MLflow server is killed right after training, and again between creating the new version and
   aliasing it: each ``register`` try fails with a clear error, Airflow retries it once the server is
   back, the model is registered once and the forced promotion moves ``champion`` exactly once.
3. The S3 endpoint goes away: ``snapshot`` fails naming the bucket, the endpoint, the connection and the
   fix; nothing is written anywhere and the champion stays.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.airflow_runs import capture, task_states, try_numbers
from tests.support.mlflow_stores import MlflowServer
from tests.support.postgres import private_postgres
from tests.support.s3_servers import isolate_aws, s3_client
from tests.support.services import service_missing
from tests.support.worlds import build_dag, lean_world

pytestmark = [pytest.mark.integration, pytest.mark.services]

CITY = "berlin"
TEMPLATE = "fault_outage"
MODEL = f"{TEMPLATE}.{CITY}"
#: The first run's training lasts seconds (the lean city's 60 rounds take well under one: 3,000 rounds at a rate
#: so low that its early stopping does not end them soon), so that the restart, sent within a poll (0.2 s) of the
#: training run being seen open, falls inside it; the test checks that it did (the run was RUNNING after it).
SLOW_TRAINING = {"num_boost_round": 3000, "learning_rate": 0.003}


class _Moto:
    """moto's S3 in this process, stoppable and restartable on the same port (its objects stay in memory)."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._server_class = ThreadedMotoServer
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, self.port = self.server.get_host_and_port()
        self.url = f"http://{host}:{self.port}"

    def stop(self) -> None:
        self.server.stop()

    def start_again(self) -> None:
        self.server = self._server_class(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, airflow_db: Path, dags_dir: Path) -> Iterator[dict[str, Any]]:

    root = tmp_path_factory.mktemp("outages")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    try:
        moto = _Moto()
    except Exception as exc:  # noqa: BLE001 - any failure to start means the service is missing
        service_missing(f"moto's S3 server cannot start on 127.0.0.1 ({exc}); install moto[server]")
        return
    lake = lean_world(root / "world", dags_dir, CITY, template=TEMPLATE, data_root=root / "lake")
    s3 = s3_client(moto.url)
    bucket = f"airflow-ml-faults-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    for path in sorted((lake / "raw").rglob("*.parquet")):
        s3.upload_file(str(path), bucket, f"data/{path.relative_to(lake).as_posix()}")
    with private_postgres() as postgres, pytest.MonkeyPatch.context() as mp:
        server = MlflowServer(root / "mlflow", postgres.create_database("mlflow"))
        server.start()
        isolate_aws(mp, moto.url)
        mp.setenv("AIRFLOW_ML_DATA_ROOT", f"s3://{bucket}/data")
        mp.setenv(
            "AIRFLOW_CONN_MLFLOW_DEFAULT", json.dumps({"conn_type": "mlflow", "extra": {"tracking_uri": server.url}})
        )
        try:
            yield {
                "root": root / "world",
                "moto": moto,
                "s3": s3,
                "bucket": bucket,
                "postgres": postgres,
                "server": server,
                "client": server.client(),
            }
        finally:
            server.stop()
            moto.stop()


def _run(world: dict[str, Any], dag: Any, conf: dict[str, Any] | None = None) -> dict[str, Any]:
    started = time.monotonic()
    run = dag.test(run_conf=conf or {})
    return {
        "run_id": run.run_id,
        "state": str(run.state),
        "tasks": task_states(MODEL, run.run_id),
        "tries": try_numbers(MODEL, run.run_id),
        "seconds": time.monotonic() - started,
    }


def _alias(client: Any, alias: str) -> str | None:
    from airflow_ml.ml.model_registry import version_by_alias

    version = version_by_alias(client, MODEL, alias)
    return str(version.version) if version is not None else None


def _versions(client: Any) -> list[str]:
    return sorted(str(v.version) for v in client.search_model_versions(f"name='{MODEL}'"))


def _runs(client: Any, filter_string: str = "") -> list[Any]:
    ids = [e.experiment_id for e in client.search_experiments()]
    return list(client.search_runs(ids, filter_string=filter_string, max_results=500)) if ids else []


@pytest.fixture(scope="module")
def postgres_restarted(world: dict[str, Any]) -> dict[str, Any]:
    """A first run during whose training the MLflow server's PostgreSQL is restarted."""
    client, postgres = world["client"], world["postgres"]
    seen: dict[str, Any] = {}
    done = threading.Event()

    def restart_during_training() -> None:
        open_training = "tags.`airflow.task_id` = 'train' and attributes.status = 'RUNNING'"
        while not done.is_set():
            try:
                running = _runs(client, open_training)
            except Exception:  # noqa: BLE001 - the server is busy; ask again
                running = []
            if running:
                seen["run_id"] = running[0].info.run_id
                seen["before"] = postgres.postmaster_start()
                postgres.restart()
                seen["after"] = postgres.postmaster_start()
                seen["status_after_restart"] = client.get_run(seen["run_id"]).info.status
                return
            time.sleep(0.2)

    watcher = threading.Thread(target=restart_during_training, daemon=True)
    watcher.start()
    try:
        result = _run(world, build_dag(world["root"], MODEL), SLOW_TRAINING)
    finally:
        done.set()
        watcher.join(60)
    return {**result, "restart": seen}


def test_postgresql_restarted_during_training_loses_nothing(
    world: dict[str, Any], postgres_restarted: dict[str, Any]
) -> None:
    client = world["client"]
    restart = postgres_restarted["restart"]
    assert restart.get("run_id"), "the watcher never saw the training run open: the fault was not injected"
    assert restart["after"] != restart["before"], "PostgreSQL did not restart"
    assert restart["status_after_restart"] == "RUNNING", "the restart must fall inside the training run"

    assert postgres_restarted["state"] == "success", postgres_restarted
    training = client.get_run(restart["run_id"])
    assert training.info.status == "FINISHED"
    assert training.data.metrics["holdout_rmse"] > 0
    assert training.data.params["num_boost_round"] == str(SLOW_TRAINING["num_boost_round"])
    assert {a.path for a in client.list_artifacts(restart["run_id"])} >= {"lineage", "importance"}
    # One training run for the DAG run, and it is the one registered and promoted.
    trainings = _runs(
        client, f"tags.`airflow.run_id` = '{postgres_restarted['run_id']}' and tags.`airflow.task_id` = 'train'"
    )
    assert [r.info.run_id for r in trainings] == [restart["run_id"]]
    assert _versions(client) == ["1"]
    champion = client.get_model_version_by_alias(MODEL, "champion")
    assert (str(champion.version), champion.run_id) == ("1", restart["run_id"])
    assert champion.tags["gate.decision"] == "promoted"


class _CuttingRelay:
    """A TCP relay in front of the MLflow server. Once armed, it kills the server when a request to set an
    alias arrives and drops that request: the server dies between registering a version and aliasing it.

    A relay makes that moment exact; the fault itself is the real server process being SIGKILLed.
    """

    ALIAS_CALL = b"POST /api/2.0/mlflow/registered-models/alias"

    def __init__(self, upstream_port: int, on_cut: Any) -> None:
        self.upstream_port = upstream_port
        self.on_cut = on_cut
        self.armed = threading.Event()
        self.cut = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=30)
        except OSError:  # the server is down: the client's connection ends without an answer
            client.close()
            return
        upstream.settimeout(None)
        threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()
        self._pump(client, upstream, True)

    def _pump(self, source: socket.socket, target: socket.socket, inspect: bool) -> None:
        try:
            while data := source.recv(65536):
                if inspect and self.armed.is_set() and data.startswith(self.ALIAS_CALL):
                    self.armed.clear()
                    self.on_cut()
                    self.cut.set()
                    break
                target.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, target):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()


@pytest.fixture(scope="module")
def mlflow_outage(world: dict[str, Any], postgres_restarted: dict[str, Any]) -> dict[str, Any]:
    """A forced run during whose registration the MLflow server dies twice.

    The server is killed when training ends, so register's first try finds it down; it comes back when
    that try has failed. In the second try it is killed again right after the new version is created,
    before the version gets its ``challenger`` alias; it comes back, and the third try must finish that
    version rather than register the model twice. The run's MLflow connection goes through the relay.
    """
    server = world["server"]
    relay = _CuttingRelay(server.port, server.kill)
    failures: list[str] = []
    dag = build_dag(world["root"], MODEL)

    def kill_server(context: Any) -> None:
        server.kill()

    def back_again() -> None:
        server.start()
        if not relay.cut.is_set():
            relay.armed.set()

    dag.get_task("train").on_success_callback = [kill_server]
    capture(dag, "register", "on_retry", failures, then=back_again)
    with pytest.MonkeyPatch.context() as mp:
        # MLflow's client would itself retry for minutes; the fault is about Airflow's retry of the task.
        mp.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        mp.setenv(
            "AIRFLOW_CONN_MLFLOW_DEFAULT", json.dumps({"conn_type": "mlflow", "extra": {"tracking_uri": relay.url}})
        )
        try:
            result = _run(world, dag, {"promotion_mode": "force", "reason": "fault test: mlflow outage"})
        finally:
            relay.close()
            if not server.process.alive:
                server.start()
    return {**result, "failures": failures, "relay_url": relay.url, "cut": relay.cut.is_set()}


def test_mlflow_down_during_register_is_retried_and_promotes_once(
    world: dict[str, Any], mlflow_outage: dict[str, Any]
) -> None:
    client, url = world["client"], mlflow_outage["relay_url"]
    assert mlflow_outage["cut"], "the server was never killed between creating the version and aliasing it"
    assert mlflow_outage["state"] == "success", mlflow_outage
    assert mlflow_outage["tries"]["register"] == 3, mlflow_outage["tries"]
    assert len(mlflow_outage["failures"]) == 2, mlflow_outage["failures"]
    for message in mlflow_outage["failures"]:
        assert message.startswith("MlflowUnreachable: ")
        assert f"the MLflow tracking server at {url} is unreachable while registering model '{MODEL}'" in message
        assert "connection 'mlflow_default'" in message

    # The version the second try created is the one the third try aliased: the model is registered once.
    assert _versions(client) == ["1", "2"], "a retry must not register the same training run twice"
    assert _alias(client, "champion") == "2"
    assert _alias(client, "previous-champion") == "1"
    assert _alias(client, "challenger") == "2"
    version = client.get_model_version(MODEL, "2")
    assert version.tags["airflow.try_number"] == "2"
    assert version.tags["gate.decision"] == "forced"
    assert version.tags["airflow.run_id"] == mlflow_outage["run_id"]


@pytest.fixture(scope="module")
def s3_down(world: dict[str, Any], mlflow_outage: dict[str, Any]) -> dict[str, Any]:
    """A run while the S3 endpoint is down; the endpoint comes back afterwards, for the checks."""
    client, moto = world["client"], world["moto"]
    before = {"runs": len(_runs(client)), "versions": _versions(client)}
    failures: list[str] = []
    dag = build_dag(world["root"], MODEL)
    capture(dag, "snapshot", "on_retry", failures)
    capture(dag, "snapshot", "on_failure", failures)
    moto.stop()
    try:
        result = _run(world, dag)
    finally:
        moto.start_again()
    return {**result, "failures": failures, "before": before}


def test_s3_unreachable_fails_the_snapshot_clearly_and_writes_nothing(
    world: dict[str, Any], s3_down: dict[str, Any]
) -> None:
    from airflow_ml.data.snapshot import snapshot_location

    client, bucket = world["client"], world["bucket"]
    assert s3_down["state"] == "failed"
    tasks = s3_down["tasks"]
    assert tasks["snapshot"] == "failed"
    assert {tasks[t] for t in tasks if t != "snapshot"} == {"upstream_failed"}, tasks
    assert len(s3_down["failures"]) == 3, "every try (retries: 2) fails the same way"
    message = s3_down["failures"][-1]
    assert message.startswith("StorageUnreachable: ")
    assert f"cannot reach the storage of 's3://{bucket}/data/" in message
    assert f" at {world['moto'].url} " in message
    assert "Airflow connection 'aws_default' of type aws" in message
    assert "endpoint_url" in message

    snapshot = snapshot_location(f"s3://{bucket}/data/snapshots", TEMPLATE, CITY, s3_down["run_id"])
    prefix = snapshot.removeprefix(f"s3://{bucket}/")
    assert world["s3"].list_objects_v2(Bucket=bucket, Prefix=prefix).get("KeyCount") == 0
    assert len(_runs(client)) == s3_down["before"]["runs"], "no MLflow run may start without data"
    assert _versions(client) == s3_down["before"]["versions"]
    assert _alias(client, "champion") == "2"
    assert _alias(client, "previous-champion") == "1"
