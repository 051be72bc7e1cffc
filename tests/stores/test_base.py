from __future__ import annotations

import json
import warnings

import pytest

from threadline import (
    AIMessage,
    HumanMessage,
    InputError,
    MessageFormatError,
    SkippedMessageWarning,
)
from threadline.stores._base import (
    MAX_MESSAGE_CHARS,
    decode_message,
    decode_messages,
    encode_message,
    session_key,
    validate_identifier,
    validate_session_id,
)

from .scenarios import POISON


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


# -- decoding poisoned rows ----------------------------------------------------------------


@pytest.mark.parametrize(("label", "row"), POISON, ids=[label for label, _ in POISON])
def test_poisoned_row_raises_only_message_format_error(label: str, row: str) -> None:
    with pytest.raises(MessageFormatError):
        decode_message(row)
    with pytest.raises(MessageFormatError):
        decode_message(row.encode())
    good = [encode_message(HumanMessage("q")), encode_message(AIMessage("a"))]
    with pytest.raises(MessageFormatError) as info:
        decode_messages([*good, row, *good], session_id="s1")
    assert (info.value.session_id, info.value.position) == ("s1", 2)
    assert "message 2 of session 's1'" in str(info.value)
    with pytest.raises(MessageFormatError) as info:
        decode_messages([row, *good], session_id="s1", from_end=True)
    assert info.value.position == -3 and "counting back from the newest" in str(info.value)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kept = decode_messages([*good, row, *good], session_id="s1", skip_invalid=True)
    assert [m.text for m in kept] == ["q", "a", "q", "a"]
    assert [type(w.message) for w in caught] == [SkippedMessageWarning]
    assert isinstance(caught[0].message, SkippedMessageWarning)
    assert caught[0].message.error.position == 2


def test_deep_but_readable_json_round_trips() -> None:
    """Nesting the parser can hold is read, and written back, without RecursionError."""
    deep = {"type": "human", "data": {"content": "x", "additional_kwargs": {"k": []}}}
    node: list[object] = deep["data"]["additional_kwargs"]["k"]  # type: ignore[index]
    for _ in range(400):
        child: list[object] = []
        node.append(child)
        node = child
    text = json.dumps(deep)
    message = decode_messages([text, text])[0]
    assert decode_message(encode_message(message)) == message


def test_oversized_row_refused() -> None:
    with pytest.raises(MessageFormatError, match="characters long"):
        decode_message(" " * (MAX_MESSAGE_CHARS + 1))
