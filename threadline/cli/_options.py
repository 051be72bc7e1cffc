"""Model options from the command line: ``-o temperature 0.2 -o max_tokens 200``.

As in simonw/llm, ``-o NAME VALUE`` may be repeated. Each name is checked against
:data:`MODEL_OPTIONS` and its value converted and range-checked before the model is
called, so ``-o temprature 1`` or ``-o temperature hot`` is a usage error naming the
option, not a request the server refuses (or, worse, ignores). The options go into every
request of the command, as per-call keywords of ``stream``: the OpenAI-compatible model
puts them into the request body, the local model into llama.cpp's, and the offline test
models (fake, echo) ignore them. They are never stored with the conversation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from threadline.cli._report import UsageError

__all__ = ["MODEL_OPTIONS", "parse_options"]


def _number(low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = float(text)
        if not low <= value <= high:  # also NaN
            raise ValueError
        return value

    parse.__doc__ = f"a number from {low:g} to {high:g}"
    return parse


def _whole(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < low:
            raise ValueError
        return value

    parse.__doc__ = f"a whole number >= {low}"
    return parse


def _stop(text: str) -> list[str]:
    if not text:
        raise ValueError
    return [text]


_stop.__doc__ = "a non-empty string"

#: Option name -> the function that converts its value (its docstring says what is
#: accepted). The names are the OpenAI request's, which llama.cpp accepts too.
MODEL_OPTIONS: dict[str, Callable[[str], Any]] = {
    "temperature": _number(0, 2),
    "top_p": _number(0, 1),
    "max_tokens": _whole(1),
    "seed": _whole(0),
    "frequency_penalty": _number(-2, 2),
    "presence_penalty": _number(-2, 2),
    "stop": _stop,
}


def parse_options(pairs: Sequence[Sequence[str]] | None) -> dict[str, Any]:
    """``[("temperature", "0.2")]`` -> ``{"temperature": 0.2}``; a bad name or value is a
    :class:`UsageError` naming the option and what it accepts.

    >>> parse_options([["temperature", "0.2"], ["max_tokens", "200"]])
    {'temperature': 0.2, 'max_tokens': 200}
    """
    options: dict[str, Any] = {}
    for name, text in pairs or ():
        key = name.strip().lower().replace("-", "_")
        convert = MODEL_OPTIONS.get(key)
        if convert is None:
            raise UsageError(f"unknown model option {name!r:.40} (-o NAME VALUE); accepted: "
                             f"{', '.join(sorted(MODEL_OPTIONS))}")
        try:
            options[key] = convert(text.strip())
        except ValueError:
            raise UsageError(f"model option {key} must be {convert.__doc__}, got "
                             f"{text!r:.40}") from None
    return options
