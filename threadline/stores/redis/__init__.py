"""The Redis store (``redis://``, ``rediss://``, ``unix://``), in LangChain's key layout.

``_ops`` builds each operation's commands as pure generators; ``_store`` runs them on
redis-py's sync and async clients.
"""
