"""SQL stores: SQLite, PostgreSQL and MySQL/MariaDB.

``_common`` has the pure helpers every SQL backend shares (names, prefix ranges, LIKE
escaping, migrations); ``_sqlite`` is the stdlib SQLite store; ``_server`` the Store layer
shared by the client/server databases, whose statements are built by the pure
``_postgres_statements`` / ``_mysql_statements`` and run by ``_postgres`` / ``_mysql``.
"""
