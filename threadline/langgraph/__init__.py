"""LangGraph on threadline stores: :class:`ThreadlineSaver`, a checkpointer.

Needs ``pip install "threadline[langgraph]"`` (langgraph). Any store URL that keeps
records works (SQLite, PostgreSQL, MySQL/MariaDB, Redis, DynamoDB, Cosmos DB, memory);
a thread is a threadline session with the same id, whose ``messages`` channel the
``threadline sessions`` commands, the chat and the server can read.

>>> from threadline.langgraph import ThreadlineSaver
>>> graph = builder.compile(checkpointer=ThreadlineSaver("sqlite:///chat.db"))
>>> graph.invoke({"messages": [("user", "hi")]}, {"configurable": {"thread_id": "t1"}})
"""

from __future__ import annotations

try:
    import langgraph.checkpoint.base  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    from threadline._errors import MissingDependencyError

    raise MissingDependencyError("langgraph", "langgraph") from exc

from threadline.langgraph._saver import ThreadlineSaver

__all__ = ["ThreadlineSaver"]
