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

The core also offers conversions *to* a framework (``history.pydantic_ai_messages()``).
Those are :data:`FUNCTIONS`, looked up by name with :func:`integration`: the same lazy
``"module:function"`` strings, so the core still imports no integration until one is
used. An integration module raises
:class:`~threadline._errors.MissingDependencyError` on import when its framework is not
installed, so the first call names the package and the extra to install.

(pydantic-ai's ``"message"`` converter refuses: one ``ModelRequest`` holds several parts,
shown as several threadline messages, and a converter gives one; its error names
``history.add_pydantic_ai_messages``.)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Literal

__all__ = ["CONVERTERS", "FUNCTIONS", "convert", "describe", "framework_of", "integration"]

Kind = Literal["message", "runnable"]

#: kind -> framework package -> "module:function" taking the object, returning ours or None.
CONVERTERS: dict[str, dict[str, str]] = {
    "message": {"langchain_core": "threadline.langchain._messages:message_from_langchain",
                # refuses, naming add_pydantic_ai_messages: a request is several messages
                "pydantic_ai": "threadline.pydantic_ai._convert:message_from_pydantic_ai"},
    "runnable": {"langchain_core": "threadline.langchain._runnables:runnable_from_langchain"},
}

#: name -> "module:function" of an integration's function that the core calls by name.
FUNCTIONS: dict[str, str] = {
    "to_pydantic_ai": "threadline.pydantic_ai._convert:to_pydantic_ai",
    "from_pydantic_ai": "threadline.pydantic_ai._convert:from_pydantic_ai",
}

_loaded: dict[str, Callable[..., Any]] = {}


def _load(target: str) -> Callable[..., Any]:
    function = _loaded.get(target)
    if function is None:
        module, _, name = target.partition(":")
        function = _loaded[target] = getattr(importlib.import_module(module), name)
    return function


def integration(name: str) -> Callable[..., Any]:
    """The integration function registered under ``name`` in :data:`FUNCTIONS`,
    imported on first use; a :class:`~threadline._errors.MissingDependencyError`
    (an ``ImportError``) names what to install when its framework is missing."""
    return _load(FUNCTIONS[name])


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
    return _load(target)(obj)


def describe(obj: object) -> str:
    """``"a langchain_core Document"`` for a framework's object, else its class name."""
    framework = framework_of(obj)
    name = type(obj).__name__
    return f"a {framework} {name}" if framework else name
