"""pydantic-ai message histories in any threadline history.

Needs ``pip install "threadline[pydantic-ai]"`` (pydantic-ai-slim). pydantic-ai has no
store of its own; every threadline history (any store URL) reads and writes its
``list[ModelMessage]``:

- ``history.pydantic_ai_messages()`` for ``agent.run(..., message_history=...)``, and
  ``history.add_pydantic_ai_messages(result.new_messages())`` after the run (async:
  ``apydantic_ai_messages``, ``aadd_pydantic_ai_messages``);
- :func:`from_pydantic_ai` / :func:`to_pydantic_ai` for the messages themselves.

The parts threadline can show are stored as its messages (system, human, AI with tool
calls, tool), so ``threadline sessions show``, search and other frameworks see the
conversation; pydantic-ai's own JSON of every part is kept with them, so what an agent
run wrote reads back equal. Messages other frameworks wrote read as the parts they map
to, so an agent can continue a LangChain chain's session.

>>> from threadline import open_store
>>> history = open_store("sqlite:///chat.db").history("user-1")
>>> result = agent.run_sync("hi", message_history=history.pydantic_ai_messages())
>>> history.add_pydantic_ai_messages(result.new_messages())
"""

from threadline.pydantic_ai._convert import from_pydantic_ai, to_pydantic_ai

__all__ = ["from_pydantic_ai", "to_pydantic_ai"]
