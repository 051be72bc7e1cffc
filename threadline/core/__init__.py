"""The composition core: runnables, prompts, parsers and chat histories.

``prompt | model | parser`` (``_runnables``, ``_prompts``, ``_parsers``), the history
contract and the in-memory history (``_history``), and ``RunnableWithMessageHistory``
(``_with_history``), which wraps a chain with any history. Depends only on
:mod:`threadline.messages`. Users import these names from :mod:`threadline`.
"""
