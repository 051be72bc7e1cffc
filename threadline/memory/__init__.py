"""LangChain's legacy conversation memory: ``ConversationChain`` and the buffer memories.

``_buffer`` holds the buffer and window memories, ``_chain`` ``ConversationChain``,
``_token`` the token-budget memory (which counts with :mod:`threadline.models`). They sit
above the core and the models and below the integrations and interfaces. Users import
these names from :mod:`threadline`.
"""
