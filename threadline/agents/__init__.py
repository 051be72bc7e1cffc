"""threadline as the memory of OpenAI Agents SDK agents.

Needs ``pip install "threadline[agents]"`` (openai-agents). :class:`ThreadlineSession`
implements the SDK's ``Session`` protocol on any threadline store, so an agent's
conversation lives beside those of LangChain chains, LangGraph graphs and the server:
one store URL, one ``threadline sessions`` view.

>>> from threadline.agents import ThreadlineSession
>>> session = ThreadlineSession("postgresql://localhost/app", "user-42", ttl=86400)
>>> result = await Runner.run(agent, "What did I ask before?", session=session)

Every Responses input item round-trips unchanged; how items map to messages is in
:mod:`threadline.agents._items`.
"""

from threadline.agents._session import ThreadlineSession

__all__ = ["ThreadlineSession"]
