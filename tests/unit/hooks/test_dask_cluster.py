"""The ``dask`` connection type (airflow_ml.hooks.dask_cluster): the scheduler's address and TLS files, checked."""

from __future__ import annotations

import json

import pytest

from airflow_ml.get_provider_info import get_provider_info
from airflow_ml.hooks.dask_cluster import DaskClusterHook
from airflow_ml.ml.dask_settings import ClusterAddress
from tests.support.dask_clusters import process_cluster


def set_conn(monkeypatch: pytest.MonkeyPatch, conn_id: str, conn: dict) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))


def test_the_provider_defines_the_dask_connection_type_with_this_hook() -> None:
    types = {t["connection-type"]: t for t in get_provider_info()["connection-types"]}
    assert types["dask"]["hook-class-name"] == f"{DaskClusterHook.__module__}.{DaskClusterHook.__name__}"
    assert DaskClusterHook.conn_type == "dask"
    assert set(types["dask"]["conn-fields"]) == {"ca_file", "cert_file", "key_file"}


def test_a_whole_address_or_scheme_host_and_port(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(monkeypatch, "dask_a", {"conn_type": "dask", "host": "tcp://dask-scheduler:8786"})
    set_conn(monkeypatch, "dask_b", {"conn_type": "dask", "host": "scheduler.internal", "port": 9786})
    tls = {"ca_file": "/certs/ca.pem", "cert_file": "/certs/client.pem", "key_file": "/certs/client.key"}
    set_conn(monkeypatch, "dask_c", {"conn_type": "dask", "host": "tls://10.0.0.5:8786", "extra": tls})

    assert DaskClusterHook("dask_a").get_conn() == ClusterAddress("tcp://dask-scheduler:8786")
    assert DaskClusterHook("dask_b").get_conn().address == "tcp://scheduler.internal:9786"
    secure = DaskClusterHook("dask_c").get_conn()
    assert secure.uses_tls
    assert (secure.ca_file, secure.key_file) == ("/certs/ca.pem", "/certs/client.key")


@pytest.mark.parametrize(
    ("conn", "expected"),
    [
        ({"host": ""}, r"'dask_bad' has no host.*AIRFLOW_CONN_DASK_DEFAULT"),
        ({"host": "http://scheduler:8786"}, r"'http://scheduler:8786' is not tcp://host:port or tls://host:port"),
        ({"host": "tcp://scheduler:99999"}, r"port 1-65535"),
        ({"host": "tls://scheduler:8786"}, r"a tls:// scheduler needs ca_file"),
        ({"host": "tcp://s:8786", "extra": {"ca_file": "/ca.pem"}}, r"TLS files are set but .*use tls://host:port"),
        (
            {"host": "tls://s:8786", "extra": {"ca_file": "/ca", "cert_file": "/c"}},
            r"cert_file and key_file go together",
        ),
    ],
)
def test_a_bad_connection_names_itself_the_value_and_the_fix(
    monkeypatch: pytest.MonkeyPatch, conn: dict, expected: str
) -> None:
    set_conn(monkeypatch, "dask_bad", {"conn_type": "dask", **conn})
    with pytest.raises(ValueError, match=rf"Airflow connection 'dask_bad'.*{expected}|{expected}"):
        DaskClusterHook("dask_bad").get_conn()


@pytest.mark.slow
def test_the_test_button_asks_the_real_scheduler(monkeypatch: pytest.MonkeyPatch) -> None:
    with process_cluster() as cluster:
        set_conn(monkeypatch, "dask_live", {"conn_type": "dask", "host": cluster.scheduler_address})
        ok, message = DaskClusterHook("dask_live").test_connection()
    assert ok
    assert "answered with 2 worker(s)" in message
    set_conn(monkeypatch, "dask_gone", {"conn_type": "dask", "host": "tcp://127.0.0.1:1"})
    ok, message = DaskClusterHook("dask_gone").test_connection()
    assert not ok
    assert "'dask_gone' did not answer" in message
