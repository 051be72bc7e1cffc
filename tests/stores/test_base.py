from __future__ import annotations

import pytest

from threadline import AIMessage, HumanMessage, InputError, MessageFormatError
from threadline.stores._base import (
    decode_messages,
    encode_message,
    session_key,
    validate_identifier,
    validate_session_id,
)


def test_decode_messages_matches_one_by_one_for_str_and_bytes() -> None:
    messages = [HumanMessage("a ,] [ \u2028"), AIMessage("b", id="1")]
    texts = [encode_message(m) for m in messages]
    assert decode_messages(texts) == messages
    assert decode_messages([t.encode() for t in texts]) == messages
    assert decode_messages([]) == []


def test_a_row_holding_two_values_cannot_smuggle_a_message() -> None:
    good = encode_message(HumanMessage("ok"))
    with pytest.raises(MessageFormatError, match="not valid JSON"):
        decode_messages([good, good + "," + good])


def test_a_bad_row_is_reported() -> None:
    with pytest.raises(MessageFormatError, match="unknown message type 'alien'"):
        decode_messages([encode_message(HumanMessage("ok")), '{"type": "alien", "data": {}}'])


def test_session_key_has_no_collisions() -> None:
    assert session_key("a/b", "c") != session_key("a", "b/c")
    assert session_key("u1", "c1") == "u1/c1"
    with pytest.raises(InputError):
        session_key()


@pytest.mark.parametrize("bad", ["", "a\x00b", 3, "x" * 20_000])
def test_bad_session_ids(bad: object) -> None:
    with pytest.raises(InputError):
        validate_session_id(bad)


@pytest.mark.parametrize("bad", ["1abc", "a-b", "a b", 'x"; DROP TABLE t; --', "x" * 64, ""])
def test_bad_identifiers(bad: str) -> None:
    with pytest.raises(InputError):
        validate_identifier(bad)
