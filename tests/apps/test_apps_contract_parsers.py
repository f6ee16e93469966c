"""The parsers the producer and the consumer share (apps/common/contract.py), alone."""

from __future__ import annotations

import pytest

from apps.common import contract


@pytest.mark.parametrize("value", [0, 1, -1, 42, contract.COUNT_MIN, contract.COUNT_MAX])
def test_a_count_reads_back_as_written(value: int) -> None:
    assert contract.parse_count(contract.format_count(value)) == value


@pytest.mark.parametrize(
    "text",
    ["", "+5", " 12", "12 ", "1_000", "007", "-0", "5\n", "\u0661\u0662", "1e3", "0x10", "--1"],
)
def test_a_count_in_another_form_is_refused(text: str) -> None:
    with pytest.raises(contract.ContractError, match="canonical form"):
        contract.parse_count(text)


@pytest.mark.parametrize("text", [str(contract.COUNT_MAX + 1), str(contract.COUNT_MIN - 1)])
def test_a_count_out_of_range_is_refused(text: str) -> None:
    with pytest.raises(contract.ContractError, match="out of signed 64-bit range"):
        contract.parse_count(text)


@pytest.mark.parametrize("value", [True, 1.0, "1", contract.COUNT_MAX + 1])
def test_only_an_int_in_range_is_a_count(value: object) -> None:
    assert not contract.valid_count(value)
    if isinstance(value, int) and not isinstance(value, bool):
        with pytest.raises(contract.ContractError):
            contract.format_count(value)


@pytest.mark.parametrize(
    ("key", "valid"),
    [("a", True), ("A-z_0.9:x", True), ("k" * 64, True), ("k" * 65, False), ("", False),
     ("nl-key\n", False), ("sp ace", False), ("\u00e9", False), (7, False)],
)  # fmt: skip
def test_a_key_is_matched_whole(key: object, valid: bool) -> None:
    assert contract.valid_key(key) is valid


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json", "request body is not valid JSON"),
        (b"\xff\xfe{", "request body is not valid JSON"),
        (b"[1]", "request body must be a JSON object"),
        (b'{"count": NaN}', "NaN is not a JSON number"),
        (b'{"a": 1, "a": 1}', "names 'a' more than once"),
        (b"[" * 5000, "request body is nested too deeply"),
    ],
)
def test_a_body_that_is_not_one_strict_json_object_is_refused(raw: bytes, message: str) -> None:
    with pytest.raises(contract.BodyError, match=message):
        contract.parse_body(raw)


def test_a_strict_json_object_is_read() -> None:
    assert contract.parse_body(b'{"count": 5, "x": {"y": [1, 2]}}') == {
        "count": 5,
        "x": {"y": [1, 2]},
    }
