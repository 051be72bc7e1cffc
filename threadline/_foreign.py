"""Objects of other frameworks, met at threadline's boundaries, and who converts them.

threadline's core never imports LangChain (or any other framework), yet its histories,
``convert_to_messages``, ``|`` and ``RunnableWithMessageHistory`` accept LangChain's
messages and runnables. They do it through this registry: a framework is recognised by
the top-level package of a class in the object's MRO (so ``langchain_openai.ChatOpenAI``
is a ``langchain_core`` object), and its converter is a lazy ``"module:function"``
string, imported on first use, the way store backends are found. Only the integration
module (``threadline.langchain``) knows the framework's types.

A converter returns the threadline value or ``None`` when it does not handle the object;
callers then raise their usual error, which :func:`describe` makes precise ("a
langchain_core Document").
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Literal

__all__ = ["CONVERTERS", "convert", "describe", "framework_of"]

Kind = Literal["message", "runnable"]

#: kind -> framework package -> "module:function" taking the object, returning ours or None.
CONVERTERS: dict[str, dict[str, str]] = {
    "message": {"langchain_core": "threadline.langchain._messages:message_from_langchain"},
    "runnable": {"langchain_core": "threadline.langchain._runnables:runnable_from_langchain"},
}

_loaded: dict[str, Callable[[Any], Any]] = {}


def framework_of(obj: object) -> str | None:
    """The registered framework package an object's class comes from, if any."""
    for klass in type(obj).__mro__:
        root = klass.__module__.partition(".")[0]
        if root in CONVERTERS["message"] or root in CONVERTERS["runnable"]:
            return root
    return None


def convert(kind: Kind, obj: object) -> Any:
    """``obj`` as threadline's own value of this kind, or ``None`` if no converter takes it."""
    framework = framework_of(obj)
    if framework is None:
        return None
    target = CONVERTERS[kind].get(framework)
    if target is None:
        return None
    function = _loaded.get(target)
    if function is None:
        module, _, name = target.partition(":")
        function = _loaded[target] = getattr(importlib.import_module(module), name)
    return function(obj)


def describe(obj: object) -> str:
    """``"a langchain_core Document"`` for a framework's object, else its class name."""
    framework = framework_of(obj)
    name = type(obj).__name__
    return f"a {framework} {name}" if framework else name
