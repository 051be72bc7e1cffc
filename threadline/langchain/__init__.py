"""threadline inside LangChain apps, and LangChain inside threadline.

Needs ``pip install "threadline[langchain]"`` (langchain-core). Three things:

- **Messages** both ways, losslessly: :func:`to_langchain`, :func:`from_langchain`.
- **Histories** for LangChain code, on threadline stores: :class:`LangChainHistory`,
  :func:`history_factory` (a ``get_session_history`` for LangChain's
  ``RunnableWithMessageHistory``) and drop-in classes with LangChain's constructors
  (``SQLChatMessageHistory``, ``PostgresChatMessageHistory``, ``RedisChatMessageHistory``,
  ``DynamoDBChatMessageHistory``, ``CosmosDBChatMessageHistory``,
  ``FileChatMessageHistory``): a LangChain app changes one import line.
- **Runnables**: threadline's ``|``, ``RunnableWithMessageHistory`` and
  ``ConversationChain`` take LangChain chains and chat models as they are (wrapped in
  :class:`LangChainRunnable`); :func:`as_langchain` puts a threadline runnable inside a
  LangChain chain.

>>> from threadline.langchain import history_factory
>>> chain_with_history = RunnableWithMessageHistory(chain, history_factory("sqlite:///c.db"))
"""

from threadline.langchain._history import (
    CosmosDBChatMessageHistory,
    DynamoDBChatMessageHistory,
    FileChatMessageHistory,
    LangChainHistory,
    PostgresChatMessageHistory,
    RedisChatMessageHistory,
    SQLChatMessageHistory,
    history_factory,
)
from threadline.langchain._messages import from_langchain, to_langchain
from threadline.langchain._runnables import LangChainRunnable, as_langchain

__all__ = [
    "CosmosDBChatMessageHistory",
    "DynamoDBChatMessageHistory",
    "FileChatMessageHistory",
    "LangChainHistory",
    "LangChainRunnable",
    "PostgresChatMessageHistory",
    "RedisChatMessageHistory",
    "SQLChatMessageHistory",
    "as_langchain",
    "from_langchain",
    "history_factory",
    "to_langchain",
]
