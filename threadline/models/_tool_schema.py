"""Tools as OpenAI function schemas: ``convert_to_openai_tool(get_weather)``.

A tool may be an OpenAI tool dict (kept as is), a bare ``{"name", "parameters"}`` dict,
a pydantic model class (its ``model_json_schema()``), or a plain function: its signature's
type hints become a JSON schema (builtins, ``list``/``dict``, ``Literal``, ``Enum``,
unions), its docstring's first part the description and its Google-style ``Args:`` entries
the parameters' descriptions. Pure; used by :meth:`ChatOpenAI.bind_tools`.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from typing import Any, Literal

from threadline._errors import InputError

__all__ = ["convert_to_openai_tool"]


_SIMPLE_TYPES: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    type(None): {"type": "null"},
    Any: {},
    list: {"type": "array"},
    dict: {"type": "object"},
}


def _json_schema(annotation: Any) -> dict[str, Any]:
    """A JSON schema for a type hint: builtins, list/dict, Literal, Enum, unions."""
    if annotation in _SIMPLE_TYPES:
        return dict(_SIMPLE_TYPES[annotation])
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Literal:
        return {"enum": list(args)}
    if origin in (typing.Union, types.UnionType):
        options = [_json_schema(arg) for arg in args if arg is not type(None)]
        if type(None) in args:
            options.append({"type": "null"})
        return options[0] if len(options) == 1 else {"anyOf": options}
    if origin in (list, tuple, set, frozenset, Sequence):
        items = [a for a in args if a is not Ellipsis]
        schema: dict[str, Any] = {"type": "array"}
        if len(items) == 1 or (items and origin is not tuple):
            schema["items"] = _json_schema(items[0])
        return schema
    if origin in (dict, Mapping):
        schema = {"type": "object"}
        if len(args) == 2:
            schema["additionalProperties"] = _json_schema(args[1])
        return schema
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return {"enum": [member.value for member in annotation]}
    return {}


_ARG_LINE = re.compile(r"^\s*(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The description (text before any section) and Google-style ``Args:`` entries."""
    description: list[str] = []
    params: dict[str, str] = {}
    section = ""
    current = ""
    for line in inspect.cleandoc(doc).splitlines():
        stripped = line.strip()
        if stripped in ("Args:", "Arguments:", "Parameters:"):
            section = "args"
            continue
        if stripped.endswith(":") and stripped[:-1].istitle() and not line.startswith(" "):
            section = "other"
            continue
        if not section:
            description.append(line)
        elif section == "args" and stripped:
            match = _ARG_LINE.match(line)
            if match and not line.startswith("        "):
                current = match.group(1).lstrip("*")
                params[current] = match.group(2).strip()
            elif current:
                params[current] = f"{params[current]} {stripped}".strip()
    return " ".join(" ".join(description).split()), params


def _function_tool(func: Callable[..., Any]) -> dict[str, Any]:
    name = getattr(func, "__name__", None)
    if not name or name == "<lambda>":
        raise InputError("a tool function needs a name; use a def, not a lambda")
    try:
        hints = typing.get_type_hints(func)
    except Exception:  # unresolvable forward references: fall back to untyped
        hints = {}
    description, param_docs = _parse_docstring(inspect.getdoc(func) or "")
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in inspect.signature(func).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        schema = _json_schema(hints.get(param.name, Any))
        if param.name in param_docs:
            schema["description"] = param_docs[param.name]
        if param.default is param.empty:
            required.append(param.name)
        elif param.default is None or isinstance(param.default, str | int | float | bool):
            schema["default"] = param.default
        properties[param.name] = schema
    parameters: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        parameters["required"] = required
    function: dict[str, Any] = {"name": name, "parameters": parameters}
    if description:
        function["description"] = description
    return {"type": "function", "function": function}


def convert_to_openai_tool(tool: Any) -> dict[str, Any]:
    """A tool as an OpenAI ``{"type": "function", "function": {...}}`` dict.

    Accepts that dict itself, a bare ``{"name", "description", "parameters"}`` dict, a
    pydantic model class, or a plain function with type hints and a docstring (its
    ``Args:`` section describes the parameters)::

        def get_weather(city: str, unit: Literal["C", "F"] = "C") -> str:
            '''The current weather in a city.'''
    """
    if isinstance(tool, dict):
        if tool.get("type") == "function" and isinstance(tool.get("function"), dict):
            return tool
        if isinstance(tool.get("name"), str):
            function = {key: tool[key] for key in ("name", "description", "parameters",
                                                   "strict") if key in tool}
            function.setdefault("parameters", {"type": "object", "properties": {}})
            return {"type": "function", "function": function}
    elif isinstance(tool, type) and callable(getattr(tool, "model_json_schema", None)):
        schema = dict(tool.model_json_schema())  # type: ignore[attr-defined]
        schema.pop("title", None)
        description = schema.pop("description", None) or inspect.getdoc(tool)
        function = {"name": tool.__name__, "parameters": schema}
        if description:
            function["description"] = description
        return {"type": "function", "function": function}
    elif callable(tool):
        return _function_tool(tool)
    raise InputError(
        f"cannot use {tool!r:.80} as a tool; pass a function with type hints, a pydantic "
        "model class, or an OpenAI tool dict {'type': 'function', 'function': {...}}"
    )
