"""Chat models by name: ``get_chat_model("openai:gpt-4o-mini")``.

A name is ``KIND`` or ``KIND:ARGUMENT``. Each kind maps to a lazy ``"module:Class"``
string and a small function that turns the argument and keyword arguments into the
constructor's keywords, so naming a model imports only its own module (``openai:`` needs
httpx, ``local``/``gguf:`` the embedded runtime). Kinds that third-party packages add
come from the ``threadline.chat_models`` entry point group; their argument is passed as
``model=``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from threadline._errors import InputError
from threadline.models._base import BaseChatModel

__all__ = ["FAKE_RESPONSES", "MODEL_NAME_FORMS", "get_chat_model"]

#: What ``get_chat_model("fake")`` answers, in turn, unless given ``responses=[...]``.
FAKE_RESPONSES = [
    "Hello! I'm a fake model: I answer from a fixed list, offline.",
    "Good question. (I'm still a fake model, so I can't really answer it.)",
    "Noted. Everything you say is remembered in this conversation's history.",
    "Thanks for chatting! Pass --model openai:MODEL or --model local for a real model.",
]

#: The accepted forms, as shown in errors and ``--help``.
MODEL_NAME_FORMS = {
    "fake": "canned answers in turn, offline (responses=[...] to choose them)",
    "echo": "repeats your last message",
    "openai:MODEL": "an OpenAI-compatible server (base_url=/OPENAI_BASE_URL, OPENAI_API_KEY)",
    "local": "the embedded local model (default model file)",
    "gguf:/path/model.gguf": "the embedded local model running that GGUF file",
}


def _no_argument(kind: str, argument: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    if argument:
        raise InputError(f"model name {kind!r} takes no argument, got {kind}:{argument}")
    return kwargs


def _fake(kind: str, argument: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    _no_argument(kind, argument, kwargs)
    return {"responses": FAKE_RESPONSES, **kwargs}


def _required(keyword: str, example: str) -> Callable[[str, str, dict[str, Any]],
                                                      dict[str, Any]]:
    def arguments(kind: str, argument: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        if not argument:
            raise InputError(f"model name {kind!r} needs a {keyword} after the colon, "
                             f"e.g. {example!r}")
        if keyword in kwargs:
            raise InputError(f"{kind}:{argument} already names the {keyword}; "
                             f"do not pass {keyword}= too")
        return {keyword: argument, **kwargs}

    return arguments


_Arguments = Callable[[str, str, dict[str, Any]], dict[str, Any]]

# kind -> ("module:Class", keyword builder). Built-ins are looked up the way plugins are.
_KINDS: dict[str, tuple[str, _Arguments]] = {
    "fake": ("threadline.models._fake:FakeListChatModel", _fake),
    "echo": ("threadline.models._fake:EchoChatModel", _no_argument),
    "openai": ("threadline.models._openai:ChatOpenAI", _required("model", "openai:gpt-4o-mini")),
    "local": ("threadline.models._local:LocalChatModel", _no_argument),
    "gguf": ("threadline.models._local:LocalChatModel",
             _required("model_path", "gguf:/models/qwen2.5-0.5b-instruct-q4_k_m.gguf")),
}


def _load(target: str) -> type[BaseChatModel]:
    module, _, name = target.partition(":")
    cls = getattr(importlib.import_module(module), name)
    if not (isinstance(cls, type) and issubclass(cls, BaseChatModel)):
        raise InputError(f"{target} is not a BaseChatModel subclass")
    return cls


def _plugin(kind: str) -> tuple[str, _Arguments] | None:
    from importlib.metadata import entry_points

    for entry in entry_points(group="threadline.chat_models"):
        if entry.name == kind:
            return entry.value, _required("model", f"{kind}:MODEL")
    return None


def _forms() -> str:
    return "; ".join(f"{form!r} ({what})" for form, what in MODEL_NAME_FORMS.items())


def get_chat_model(name: str, **kwargs: Any) -> BaseChatModel:
    """The chat model a name stands for; ``kwargs`` go to its constructor.

    >>> get_chat_model("echo").invoke("ping").content
    'ping'
    >>> get_chat_model("fake", responses=["Hi!"]).invoke("hello").content
    'Hi!'

    Names: ``fake``, ``echo``, ``openai:MODEL`` (:class:`~threadline.ChatOpenAI`; pass
    ``base_url=``/``api_key=`` or set ``OPENAI_BASE_URL``/``OPENAI_API_KEY``), ``local``
    and ``gguf:/path/model.gguf`` (the embedded local model).
    """
    if not isinstance(name, str):
        raise InputError(f"a model name must be a str, got {type(name).__name__}; "
                         f"accepted: {_forms()}")
    kind, _, argument = name.strip().partition(":")
    kind = kind.lower()
    entry = _KINDS.get(kind) or (_plugin(kind) if kind else None)
    if entry is None:
        raise InputError(f"unknown model name {name!r}; accepted: {_forms()}")
    target, arguments = entry
    return _load(target)(**arguments(kind, argument.strip(), dict(kwargs)))
