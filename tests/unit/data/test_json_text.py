"""Records as text (airflow_ml.data.json_text): json.dumps(indent=1, default=str)'s text, in json's C encoder."""

from __future__ import annotations

import datetime as dt
import enum
import json
import random
from decimal import Decimal
from typing import Any

import pytest

from airflow_ml.data.json_text import dumps_indented, with_item


class Level(enum.IntEnum):
    HIGH = 3


def _drift_record() -> dict[str, Any]:
    """Shaped as a city's drift.json after the review: sections, a list of per-test entries, q-values by name."""
    columns = [
        {"column": f"f{i:02d}", "statistic": "psi", "value": 0.1 / (i + 1), "reference_n": 6088, "season": None}
        for i in range(5)
    ]
    return {
        "status": "passed",
        "checks": [],
        "calibration": {"columns": columns, "stopped_by": [], "fleet": {"family": {"joined_since_review": []}}},
        "fleet_review": {"q_values": {f"f{i:02d}.psi": 1.0 for i in range(5)}, "flagged": {}, "would_stop": False},
    }


def _random_value(rng: random.Random, depth: int) -> Any:
    scalars: list[Any] = [
        rng.random(),
        -rng.randint(0, 10**20),
        rng.choice(["", "oslo", 'a "quoted"\nline', "Zürich ✓", "\x00\t"]),
        rng.choice([True, False, None, float("nan"), float("inf"), -0.0]),
        dt.datetime(2026, 3, rng.randint(1, 28), tzinfo=dt.UTC),  # through default=str
        Decimal("1.25"),
        Level.HIGH,
    ]
    if depth >= 4 or rng.random() < 0.4:
        return rng.choice(scalars)
    size = rng.randint(0, 4)
    if rng.random() < 0.5:
        keys: list[Any] = ["a", "b", 1, 2.5, True, None, Level.HIGH, "é"]
        return {rng.choice(keys): _random_value(rng, depth + 1) for _ in range(size)}
    items = [_random_value(rng, depth + 1) for _ in range(size)]
    return tuple(items) if rng.random() < 0.2 else items


@pytest.mark.parametrize(
    "payload",
    [
        _drift_record(),
        {},
        [],
        {"a": {}, "b": [], "c": [[]], "d": [{}], "e": [[1, 2], [3]], "f": {"g": {"h": {"i": [None]}}}},
        {7: "int key", 2.5: "float key", True: "bool key", None: "null key", float("nan"): "nan key"},
        [1, [2, [3, [4]]], {"x": (5, 6)}],
        "a bare string",
        3.0,
        dt.date(2026, 3, 1),
    ],
    ids=lambda value: type(value).__name__,
)
def test_the_text_is_json_dumps_indent_1s(payload: Any) -> None:
    assert dumps_indented(payload) == json.dumps(payload, indent=1, default=str)


def test_random_nested_payloads_read_as_json_dumps_indent_1_writes_them() -> None:
    rng = random.Random(14)
    payloads = [_random_value(rng, 0) for _ in range(500)]

    assert [dumps_indented(p) for p in payloads] == [json.dumps(p, indent=1, default=str) for p in payloads]


def test_no_value_goes_through_the_pure_python_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    """The point of the module: ``indent=`` makes json encode every value in Python (three times slower)."""

    def pure_python(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the pure-Python encoder was used")

    monkeypatch.setattr(json.encoder, "_make_iterencode", pure_python)

    assert json.loads(dumps_indented(_drift_record())) == _drift_record()
    with pytest.raises(AssertionError, match="pure-Python"):
        json.dumps(_drift_record(), indent=1)  # the check above would see it


def test_a_key_json_cannot_write_is_refused_as_json_refuses_it() -> None:
    with pytest.raises(TypeError, match="keys must be str, int, float, bool or None, not tuple"):
        dumps_indented({"section": {(1, 2): "x", "nested": {}}})


REVIEW = {"q_values": {"x1.psi": 0.01}, "flagged": {"x1": 0.01}, "would_stop": False}


@pytest.mark.parametrize(
    "record",
    [
        {"status": "passed", "calibration": {"columns": [{"column": "x1", "p_value": 0.5}]}},  # no review yet
        {"status": "passed", "fleet_review": {"q_values": {"x1.psi": 0.9}, "flagged": {}}},  # last night's, last
        {"status": "passed", "fleet_review": None, "checks": [{"fleet_review": 1}], "z": "x"},  # in the middle
        {"fleet_review": [1, {"a": []}]},  # the only item
        {"note": 'a line "fleet_review": inside a string\n "fleet_review": ', "nested": {"fleet_review": {}}},
    ],
    ids=["added", "replaced-last", "replaced-in-place", "replaced-only", "look-alikes"],
)
def test_an_item_set_in_the_text_reads_as_the_record_set_and_encoded_again(record: dict[str, Any]) -> None:
    text = dumps_indented(record)

    assert with_item(text, "fleet_review", REVIEW) == dumps_indented({**record, "fleet_review": REVIEW})


def test_random_records_get_the_item_as_if_decoded_set_and_encoded_again() -> None:
    rng = random.Random(14)
    for _ in range(400):
        record = {rng.choice("abcdefgh"): _random_value(rng, 1) for _ in range(rng.randint(1, 6))}
        if rng.random() < 0.5:  # last night's review, somewhere among the items
            at = rng.randrange(len(record) + 1)
            items = list(record.items())
            record = dict([*items[:at], ("fleet_review", _random_value(rng, 1)), *items[at:]])
        value = _random_value(rng, 0)
        text = dumps_indented(record)
        assert with_item(text, "fleet_review", value) == dumps_indented({**json.loads(text), "fleet_review": value})


@pytest.mark.parametrize(
    "text",
    [
        "{}",
        json.dumps({"status": "passed"}),  # compact
        json.dumps({"status": "passed"}, indent=2),
        dumps_indented({"status": "passed"}) + "\n",
        '{\n "fleet_review": 1,\n "fleet_review": 2\n}',  # a key twice: which one a reader keeps is its choice
        "[\n 1\n]",
    ],
    ids=["empty", "compact", "indent-2", "trailing-newline", "key-twice", "a-list"],
)
def test_text_not_laid_out_as_dumps_indented_writes_it_is_left_to_a_parser(text: str) -> None:
    assert with_item(text, "fleet_review", REVIEW) is None


def test_a_payload_that_holds_itself_is_refused_as_json_refuses_it() -> None:
    payload: dict[str, Any] = {"a": [1]}
    payload["a"].append(payload)

    with pytest.raises(ValueError, match="Circular reference"):
        dumps_indented(payload)
