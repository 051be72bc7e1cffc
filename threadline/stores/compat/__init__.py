"""LangChain-shaped history classes: LangChain's constructors, threadline's stores.

``SQLChatMessageHistory``, ``PostgresChatMessageHistory``, ``RedisChatMessageHistory``,
``CosmosDBChatMessageHistory`` and ``DynamoDBChatMessageHistory`` each accept the
arguments of the LangChain class of that name and are light views
(:class:`~threadline.stores.StoreHistory`) on a shared store of the matching backend.
"""
