"""The Redis store (``redis://``, ``rediss://``, ``unix://``), in LangChain's key layout.

``_keys`` names the keys and finds where a prefix's namespace meets another's;
``_scripts`` holds the Lua scripts that check, atomically, that a session's list is the
store's before using it; ``_ops`` builds each operation's commands as pure generators
(``_records``: those of a session's records, and their scripts; ``_sessions``: titles,
metadata, owners, recent-first listing, stats and forks; ``_layout``: the layout version
and its upgrades); ``_store`` runs them on redis-py's sync and async clients
(``_session_store``: the sessions API's shells); ``_connect`` makes the pools and tells
where a call failed (connecting, waiting for the pool, or after sending a write).

``redis+cluster://`` (Redis Cluster) reuses them on another key layout: ``_cluster_keys``
puts every key of a session in one hash slot and shards the index; ``_cluster_scripts``
are the session scripts without the writes to other slots; ``_cluster_ops`` orders those
writes around them and merges listings across shards; ``_cluster_store`` drives them on
redis-py's ``RedisCluster`` (appends sent once to the slot's master, ``wait_replicas``).
"""
