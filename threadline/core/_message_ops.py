"""LangChain's message utilities with their runnable form.

:func:`merge_message_runs` and :func:`filter_messages` do their work in
:mod:`threadline.messages._transform`; called without messages, each returns a runnable
that applies it to its input, as in LangChain::

    chain = filter_messages(exclude_types=["system"]) | merge_message_runs() | model

The runnable is this layer's concept, so the wrapping lives here, not in messages.
"""

from __future__ import annotations

import functools
from typing import Any

from threadline.core._runnables import RunnableLambda
from threadline.messages import _transform

__all__ = ["filter_messages", "merge_message_runs"]


def merge_message_runs(messages: Any = None, **options: Any) -> Any:
    """Merge each run of consecutive messages of one type into one message; without
    ``messages``, a runnable that merges its input. ``chunk_separator`` (default
    ``"\\n"``) joins text contents.

    >>> [m.content for m in merge_message_runs([HumanMessage("a"), HumanMessage("b"),
    ...                                         AIMessage("c")])]
    ['a\\nb', 'c']
    """
    if messages is None:
        return RunnableLambda(functools.partial(_transform.merge_message_runs, **options),
                              name="merge_message_runs")
    return _transform.merge_message_runs(messages, **options)


def filter_messages(messages: Any = None, **options: Any) -> Any:
    """The messages that meet one of the ``include_*`` conditions (``include_names``,
    ``include_types``, ``include_ids``; all messages when none is given) and none of the
    ``exclude_*`` ones (and ``exclude_tool_calls``); without ``messages``, a runnable that
    filters its input.

    >>> filter_messages([SystemMessage("s"), HumanMessage("h")], exclude_types=["system"])
    [HumanMessage(content='h', additional_kwargs={}, response_metadata={})]
    """
    if messages is None:
        return RunnableLambda(functools.partial(_transform.filter_messages, **options),
                              name="filter_messages")
    return _transform.filter_messages(messages, **options)
