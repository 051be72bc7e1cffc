"""SQL stores: SQLite, PostgreSQL and MySQL/MariaDB.

``_common`` has the pure helpers every SQL backend shares (names, prefix ranges, LIKE
escaping, migrations); ``_sqlite`` is the stdlib SQLite store; ``_server`` the Store layer
shared by the client/server databases, whose statements are built by the pure
``_postgres_statements`` / ``_mysql_statements`` and run by ``_postgres`` / ``_mysql``.
Records (LangGraph checkpoints and the like) follow the same split: ``_records_sql``
has the shared layout and scan ranges, ``_sqlite_records`` the SQLite half,
``_server_records`` the Store layer whose ops ``_postgres_records`` / ``_mysql_records``
build.
"""
