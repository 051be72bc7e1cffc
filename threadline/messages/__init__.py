"""Messages: the values every other part of threadline passes around.

``_base`` holds ``BaseMessage`` and ``_values`` the slotted message classes
(``HumanMessage``, ``AIMessage``, ``ToolMessage``, ``ChatMessage``...), ``_tool_calls`` the
tool call dicts and their factories, ``_chunks`` the pieces of streamed messages and
``_merge`` LangChain's rules for adding them up, ``_convert`` the checks and coercions of
what users pass as messages (``check_messages``, ``convert_to_messages``,
``get_buffer_string``), ``_transform`` merging runs and filtering, ``_openai_format`` the
OpenAI message format, and ``_serialization`` LangChain's message dict format, the one
format stores keep. This
package imports nothing of threadline but ``_errors`` and ``_foreign``. Users import
these names from :mod:`threadline`.
"""
