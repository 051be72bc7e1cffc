"""Mustache templates, as LangChain renders them (``template_format="mustache"``).

A template is parsed once into a tree of text, variable and section nodes; rendering
walks the tree. The rules follow LangChain's renderer so a ported prompt prints the same:

* ``{{name}}`` is HTML-escaped (``& < > "``), ``{{{name}}}`` and ``{{&name}}`` are not;
  a missing, ``None`` or empty value prints nothing, while ``0`` and ``False`` print.
* ``{{a.b}}`` walks dicts (any ``Mapping``) and lists only, never attributes, so a
  template cannot reach into the Python objects it is given.
* ``{{#s}}...{{/s}}`` repeats over a list, enters a mapping, or shows once for another
  truthy value; ``{{^s}}...{{/s}}`` shows when ``s`` is missing or falsy.
* Tags alone on their line (sections, comments, partials, ``{{=<% %>=}}``) take the line
  with them. Partials (``{{>name}}``) render nothing: there is no partials table.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeAlias

from threadline._errors import InputError

__all__ = ["Mustache"]

_MISSING = object()
_STANDALONE = frozenset("#^/!>=")

# A node: ("text", str) | ("var", path, escape) | ("section", path, inverted, children).
# A path is None for "." (the current scope), else the dotted key split into parts.
_Node: TypeAlias = tuple[Any, ...]


def _tokens(template: str) -> Iterator[tuple[str, str]]:
    """(sigil, key) pairs; sigil "" is text, "{" an unescaped variable, "v" a variable."""
    ldel, rdel = "{{", "}}"
    pos = 0
    end_of = len(template)
    while True:
        start = template.find(ldel, pos)
        if start < 0:
            yield "", template[pos:]
            return
        text = template[pos:start]
        inner = start + len(ldel)
        if ldel == "{{" and template.startswith("{", inner):
            close = template.find("}" + rdel, inner)
            sigil, body, after = "{", template[inner + 1:close], close + 1 + len(rdel)
        else:
            close = template.find(rdel, inner)
            body, after = template[inner:close], close + len(rdel)
            sigil = body[:1] if body[:1] and body[:1] in "#^/!>=&" else "v"
            if sigil != "v":
                body = body[1:]
        if close < 0:
            raise InputError(f"unclosed mustache tag at {template[start:start + 30]!r}")
        if sigil in _STANDALONE:
            line_start = template.rfind("\n", 0, start) + 1
            line_end = template.find("\n", after)
            before = template[line_start:start]
            rest = template[after:line_end if line_end >= 0 else end_of]
            if not before.strip(" \t") and not rest.strip(" \t\r"):
                text = text[:len(text) - len(before)]
                after = line_end + 1 if line_end >= 0 else end_of
        if text:
            yield "", text
        pos = after
        if sigil == "=":
            parts = body.rstrip("=").split()
            if len(parts) != 2:
                raise InputError(f"bad mustache delimiter tag {{{{={body}}}}}")
            ldel, rdel = parts
            continue
        yield sigil, body.strip()


def _path(key: str) -> tuple[str, ...] | None:
    return None if key == "." else tuple(key.split("."))


def _parse(template: str) -> tuple[list[_Node], list[str]]:
    """The node tree and the top-level variable names (outside any section), sorted."""
    root: list[_Node] = []
    stack: list[tuple[str, list[_Node]]] = [("", root)]
    names: set[str] = set()
    for sigil, key in _tokens(template):
        nodes = stack[-1][1]
        if sigil == "":
            nodes.append(("text", key))
            continue
        if sigil in "v{&#^" and key != "." and len(stack) == 1:
            names.add(key.split(".")[0])
        if sigil in "v{&":
            nodes.append(("var", _path(key), sigil == "v"))
        elif sigil in "#^":
            children: list[_Node] = []
            nodes.append(("section", _path(key), sigil == "^", children))
            stack.append((key, children))
        elif sigil == "/":
            if len(stack) == 1 or stack[-1][0] != key:
                raise InputError(f"mustache end tag {{{{/{key}}}}} does not close an open "
                                 f"section in {template!r:.80}")
            stack.pop()
    if len(stack) > 1:
        raise InputError(f"mustache section {{{{#{stack[-1][0]}}}}} is never closed "
                         f"in {template!r:.80}")
    return root, sorted(names)


def _lookup(path: tuple[str, ...] | None, scopes: list[Any]) -> Any:
    if path is None:
        return scopes[-1]
    for scope in reversed(scopes):
        value = scope
        for part in path:
            if isinstance(value, Mapping):
                try:
                    value = value[part]
                except (KeyError, TypeError):
                    break
            elif isinstance(value, list | tuple):
                try:
                    value = value[int(part)]
                except (ValueError, IndexError):
                    break
            else:
                break
        else:
            return value
    return _MISSING


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is _MISSING or value is None:
        return ""
    if not value and not isinstance(value, int | float):
        return ""  # [] and {} print nothing; 0 and False print
    return str(value)


def _escape(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def _render(nodes: list[_Node], scopes: list[Any], out: list[str]) -> None:
    for node in nodes:
        kind = node[0]
        if kind == "text":
            out.append(node[1])
        elif kind == "var":
            text = _text(_lookup(node[1], scopes))
            out.append(_escape(text) if node[2] else text)
        else:
            value = _lookup(node[1], scopes)
            present = value is not _MISSING and bool(value)
            if node[2]:
                if not present:
                    _render(node[3], scopes, out)
            elif not present:
                continue
            elif isinstance(value, Sequence | Iterator) and not isinstance(value, str):
                for item in value:
                    _render(node[3], [*scopes, item], out)
            else:
                _render(node[3], [*scopes, value], out)


class Mustache:
    """A parsed mustache template: ``Mustache("Hi {{name}}").format({"name": "Al"})``."""

    __slots__ = ("_nodes", "template", "variables")
    strict = False  # a missing variable renders as nothing

    def __init__(self, template: str) -> None:
        if not isinstance(template, str):
            raise InputError(f"a template must be a str, got {type(template).__name__}")
        self.template = template
        self._nodes, self.variables = _parse(template)

    def format(self, values: Mapping[str, Any]) -> str:
        out: list[str] = []
        _render(self._nodes, [values], out)
        return "".join(out)
