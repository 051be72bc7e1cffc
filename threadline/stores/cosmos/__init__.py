"""The Azure Cosmos DB store (``cosmos://``).

``_docs`` (documents and partition keys) and ``_ops`` (operations as generators of
requests) are pure, as are ``_record_docs`` and ``_record_ops`` (records); ``_store``
drives them with azure-cosmos, sync and async.
"""
