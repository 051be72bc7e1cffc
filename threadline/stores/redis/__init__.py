"""The Redis store (``redis://``, ``rediss://``, ``unix://``), in LangChain's key layout.

``_ops`` builds each operation's commands as pure generators; ``_store`` runs them on
redis-py's sync and async clients; ``_connect`` makes the pools and tells where a call
failed (connecting, waiting for the pool, or after sending a write).
"""
