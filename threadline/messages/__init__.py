"""Messages: the values every other part of threadline passes around.

``_values`` holds the slotted message classes (``HumanMessage``, ``AIMessage``,
``ToolMessage``, ``ChatMessage``...), ``_chunks`` the pieces of streamed messages and their
merging, ``_convert`` the checks and coercions of what users pass as messages
(``check_messages``, ``convert_to_messages``, ``get_buffer_string``), and
``_serialization`` LangChain's message dict format, the one format stores keep. This
package imports nothing of threadline but ``_errors`` and ``_foreign``. Users import
these names from :mod:`threadline`.
"""
