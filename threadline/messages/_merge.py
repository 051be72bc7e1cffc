"""How the fields of streamed chunks combine, as LangChain's ``utils._merge`` does.

Strings concatenate, dicts merge key by key, lists join with their elements merged
by ``index`` (the pieces of one tool call or content block), counters add up. One
difference: a few keys that name rather than stream (``id``, ``model_name``...) keep
one copy when both sides agree, because threadline's OpenAI client repeats them on every
chunk. Values of different types cannot merge and raise :class:`ChunkMergeError`.
"""

from __future__ import annotations

from typing import Any

from threadline._errors import InputError

__all__ = ["ChunkMergeError", "add_usage", "merge_dicts", "merge_lists", "merge_obj"]

# String values kept once when equal on both sides instead of concatenated. LangChain
# keeps the first three; the others are what an OpenAI-compatible stream repeats.
_SAME_VALUE_KEYS = frozenset({"id", "output_version", "model_provider", "model_name",
                              "model", "system_fingerprint", "service_tier"})
# Integers that identify or date rather than count: the last one wins.
_LAST_WINS_KEYS = frozenset({"index", "created", "timestamp"})


class ChunkMergeError(InputError, TypeError):
    """Two chunks hold values under one key that cannot be combined (a TypeError, as in
    LangChain, and an :class:`~threadline.InputError`)."""


def merge_dicts(left: dict[str, Any], *others: dict[str, Any]) -> dict[str, Any]:
    """A new dict: ``left`` with each of ``others`` merged into it in turn."""
    merged = left.copy()
    for right in others:
        for key, value in right.items():
            if key not in merged or (value is not None and merged[key] is None):
                merged[key] = value
                continue
            current = merged[key]
            if value is None:
                continue
            if type(current) is not type(value):
                raise ChunkMergeError(f'additional_kwargs["{key}"] already exists in this '
                                      f"message, but with a different type.")
            if isinstance(current, str):
                if (key == "index" and current.startswith("lc_")) or (
                        key in _SAME_VALUE_KEYS and current == value):
                    continue
                merged[key] = current + value
            elif isinstance(current, dict):
                merged[key] = merge_dicts(current, value)
            elif isinstance(current, list):
                merged[key] = merge_lists(current, value)
            elif current == value:
                continue
            elif isinstance(current, int) and not isinstance(current, bool):
                merged[key] = value if key in _LAST_WINS_KEYS else current + value
            else:
                # Differing booleans land here too: True + False must not become 1.
                raise ChunkMergeError(f"Additional kwargs key {key} already exists in left "
                                      f"dict and value has unsupported type {type(current)}.")
    return merged


def _mergeable_index(element: Any) -> bool:
    if not isinstance(element, dict) or "index" not in element:
        return False
    index = element["index"]
    return isinstance(index, int) or (isinstance(index, str) and index.startswith("lc_"))


def merge_lists(left: list[Any] | None, *others: list[Any] | None) -> list[Any] | None:
    """A new list: the elements of ``others`` appended to ``left``, except that a dict
    with the ``index`` of one already there (and no other ``id``) merges into it."""
    merged = None if left is None else list(left)
    for other in others:
        if other is None:
            continue
        if merged is None:
            merged = list(other)
            continue
        for element in other:
            if not _mergeable_index(element):
                merged.append(element)
                continue
            new_id = element.get("id")
            for position, existing in enumerate(merged):
                if (isinstance(existing, dict) and "index" in existing
                        and existing["index"] == element["index"]
                        and (existing.get("id") in (None, "") or new_id in (None, "")
                             or existing.get("id") == new_id)):
                    merged[position] = merge_dicts(existing, _without_type(existing, element))
                    break
            else:
                merged.append(element)
    return merged


def _without_type(existing: dict[str, Any], element: dict[str, Any]) -> dict[str, Any]:
    # The first piece names the block's type; later pieces ("text_block_delta") must not
    # change it. A "non_standard" piece wraps its fields in "value".
    if element.get("type") == "non_standard" and "value" in element and existing.get("type"):
        value = {k: v for k, v in element["value"].items() if k != "type"}
        if existing["type"] != "non_standard":
            return {"extras": value}
        return {"value": value, "index": element["index"]}
    if "type" in element:
        return {k: v for k, v in element.items() if k != "type"}
    return element


def merge_obj(left: Any, right: Any) -> Any:
    """Two values of one field combined: a missing side gives the other; str, dict and
    list combine as above; anything else must be equal."""
    if left is None or right is None:
        return left if left is not None else right
    if type(left) is not type(right):
        raise ChunkMergeError(f"left and right are of different types. Left type: "
                              f"{type(left)}. Right type: {type(right)}.")
    if isinstance(left, str):
        return left + right
    if isinstance(left, dict):
        return merge_dicts(left, right)
    if isinstance(left, list):
        return merge_lists(left, right)
    if left == right:
        return left
    raise InputError(f"Unable to merge {left=} and {right=}. Both must be of type str, "
                     f"dict, or list, or else be two equal objects.")


def add_usage(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    """Two ``usage_metadata`` dicts added up, nested token details included."""
    if not (left or right):
        return {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
    if not (left and right):
        return dict(left or right or {})
    return _add_counts(left, right)


def _add_counts(left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
    total: dict[str, Any] = {}
    for key in (*left, *(k for k in right if k not in left)):
        a, b = left.get(key, 0), right.get(key, 0)
        if isinstance(a, int) and isinstance(b, int):
            total[key] = a + b
        elif isinstance(left.get(key, {}), dict) and isinstance(right.get(key, {}), dict):
            total[key] = _add_counts(left.get(key, {}), right.get(key, {}))
        else:
            raise InputError(f"usage_metadata[{key!r}] cannot be added: {a!r} and {b!r}")
    return total
