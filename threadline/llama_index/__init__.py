"""threadline as LlamaIndex's chat store.

Needs ``pip install "threadline[llama-index]"`` (llama-index-core).
:class:`ThreadlineChatStore` is a real ``BaseChatStore``: give it to
``ChatMemoryBuffer.from_defaults(chat_store=..., chat_store_key=...)`` and the
conversation lives in any threadline store, a session like every other (listed, searched
and shown by ``threadline sessions``, readable by LangChain chains and the other
integrations). LlamaIndex's newer ``Memory`` takes a different interface
(``AsyncDBChatStore``, with archived messages): :class:`ThreadlineDBChatStore` is that one,
``Memory.from_defaults(chat_store=ThreadlineDBChatStore(url), session_id=...)``.
:func:`to_llama_index` / :func:`from_llama_index` convert single
messages, losslessly.

>>> from threadline.llama_index import ThreadlineChatStore
>>> memory = ChatMemoryBuffer.from_defaults(
...     chat_store=ThreadlineChatStore("sqlite:///chat.db"), chat_store_key="user-1")
"""

from threadline.llama_index._convert import from_llama_index, to_llama_index
from threadline.llama_index._db_store import ThreadlineDBChatStore
from threadline.llama_index._store import ThreadlineChatStore

__all__ = ["ThreadlineChatStore", "ThreadlineDBChatStore", "from_llama_index", "to_llama_index"]
