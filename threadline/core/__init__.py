"""The composition core: runnables, prompts, parsers and chat histories.

``prompt | model | parser``: runnables (``_runnables``, with the pure helpers in
``_plumbing`` and ``RunnableBranch``/``@chain`` in ``_compose``), prompts (string templates
in ``_templates`` and ``_mustache``, message templates in ``_message_templates``, chat
prompts in ``_prompts``) and parsers (``_parsers``); the runnable forms of the message
utilities (``_message_ops``); the history contract and the in-memory history
(``_history``), and ``RunnableWithMessageHistory`` (``_with_history``), which wraps a chain
with any history. Depends only on
:mod:`threadline.messages`. Users import these names from :mod:`threadline`.
"""
