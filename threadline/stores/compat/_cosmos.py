"""LangChain's ``CosmosDBChatMessageHistory`` shape, and its endpoint / connection strings.

The class is a view on a shared :class:`~threadline.stores.cosmos._store.CosmosStore`: this
module only maps LangChain's arguments (endpoint, key or connection string, database,
container, user and session ids) to a ``cosmos://`` URL and a session key.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from threadline._errors import ConfigurationError, InputError
from threadline.stores._base import StoreHistory, session_key
from threadline.stores._url import StoreURL
from threadline.stores.cosmos._docs import _name

__all__ = ["CosmosDBChatMessageHistory", "endpoint_url", "parse_connection_string"]


def parse_connection_string(text: str) -> tuple[str, str]:
    """``(endpoint, key)`` from ``AccountEndpoint=https://…;AccountKey=…;``."""
    fields: dict[str, str] = {}
    for part in text.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep:
            fields[name.strip().lower()] = value.strip()
    endpoint, key = fields.get("accountendpoint"), fields.get("accountkey")
    if not endpoint or not key:
        raise ConfigurationError(
            "a Cosmos DB connection string looks like "
            "'AccountEndpoint=https://ACCOUNT.documents.azure.com:443/;AccountKey=…;'"
        )
    return endpoint, key


def endpoint_url(endpoint: str, key: str | None, database: str, container: str,
                 **query: str) -> StoreURL:
    """The ``cosmos://`` URL of an ``https://HOST:PORT/`` endpoint, database and container."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigurationError(
            f"a Cosmos DB endpoint looks like 'https://ACCOUNT.documents.azure.com:443/', "
            f"got {endpoint!r}"
        )
    if parts.scheme == "http":
        query = {**query, "tls": "false"}
    return StoreURL("cosmos", "key" if key is not None else None, key, parts.hostname,
                    parts.port, f"/{_name(database, 'database')}/{_name(container, 'container')}",
                    tuple(query.items()))


class CosmosDBChatMessageHistory(StoreHistory):
    """LangChain's ``CosmosDBChatMessageHistory``, with no lost writes and no size cap.

    Same constructor as ``langchain_community.chat_message_histories
    .CosmosDBChatMessageHistory``; the session is ``session_key(user_id, session_id)``.
    Objects created per turn share one store (one client) per endpoint and container.

    >>> history = CosmosDBChatMessageHistory(
    ...     "https://acct.documents.azure.com:443/", "chat", "messages",
    ...     session_id="s1", user_id="u1", credential=KEY)
    >>> history.add_user_message("hi")
    """

    def __init__(self, cosmos_endpoint: str, cosmos_database: str, cosmos_container: str,
                 session_id: str, user_id: str, credential: Any = None,
                 connection_string: str | None = None, ttl: int | None = None,
                 cosmos_client_kwargs: dict[str, Any] | None = None, *,
                 store_options: dict[str, Any] | None = None) -> None:
        from threadline.stores import shared_store

        options = dict(store_options or {})
        client_kwargs = dict(cosmos_client_kwargs or {})
        if "connection_verify" in client_kwargs:
            options.setdefault("verify", bool(client_kwargs.pop("connection_verify")))
        if client_kwargs:
            raise InputError(f"cosmos_client_kwargs {sorted(client_kwargs)} are not supported "
                             "(only connection_verify); use store_options")
        key: str | None = None
        if credential is not None:
            if isinstance(credential, str):
                key = credential
            else:
                options["credential"] = credential
        elif connection_string is not None:
            cosmos_endpoint, key = parse_connection_string(connection_string)
        else:
            raise InputError("Either a connection string or a credential must be set.")
        url = endpoint_url(cosmos_endpoint, key, cosmos_database, cosmos_container)
        self.cosmos_endpoint = cosmos_endpoint
        self.cosmos_database = cosmos_database
        self.cosmos_container = cosmos_container
        self.user_id = user_id
        self.conversation_id = session_id
        # LangChain treats a falsy ttl as "no expiry".
        super().__init__(shared_store(url, **options), session_key(user_id, session_id),
                         ttl=ttl or None)

    def prepare_cosmos(self) -> None:
        """Create the database and container if needed (LangChain's name for setup)."""
        self.store.setup()

    def load_messages(self) -> None:
        """Nothing to do: messages are read from the store on each access."""

    def upsert_messages(self) -> None:
        """Nothing to do: each add is written at once."""

    def __enter__(self) -> CosmosDBChatMessageHistory:
        self.prepare_cosmos()
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def __repr__(self) -> str:
        return (f"CosmosDBChatMessageHistory({self.cosmos_endpoint!r}, "
                f"{self.cosmos_database!r}, {self.cosmos_container!r}, "
                f"session_id={self.conversation_id!r}, user_id={self.user_id!r})")
