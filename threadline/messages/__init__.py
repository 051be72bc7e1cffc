"""Messages: the values every other part of threadline passes around.

``_values`` holds the slotted message classes (``HumanMessage``, ``AIMessage``, ...), chunk
merging and ``convert_to_messages``; ``_serialization`` reads and writes LangChain's message
dict format, the one format stores keep. This package imports nothing of threadline but
``threadline._errors``. Users import these names from :mod:`threadline`.
"""
