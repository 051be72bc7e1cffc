"""The Azure Cosmos DB store (``cosmos://``).

``_docs`` (documents and partition keys) and ``_ops`` (operations as generators of
requests) are pure, as are ``_record_docs`` and ``_record_ops`` (records),
``_session_docs`` and ``_session_ops`` (titles, metadata, listing, stats) and ``_setup``;
``_store`` drives them with azure-cosmos, sync and async (``_faults``: its errors).
"""
