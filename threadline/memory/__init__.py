"""LangChain's legacy conversation memory, and compaction that keeps the history.

``_buffer`` holds the buffer and window memories, ``_simple`` ``SimpleMemory`` and
``ReadOnlySharedMemory``, ``_chain`` ``ConversationChain``,
``_token`` the token-budget memory (which counts with :mod:`threadline.models`).
``_summary_memory`` holds the summarizer and LangChain's two summary memories;
``_summary`` builds :class:`~threadline.SummaryBufferHistory` on them: a store history
that keeps every message and sends the model a stored summary plus the recent window
(it reads the store through the history it wraps). They sit above the core, the models
and the stores, and below the integrations and interfaces. Users import these names from
:mod:`threadline`.
"""
