"""threadline: memory for LLM applications.

Stateful conversations whose messages live in pluggable, persistent chat message
histories, with the names LangChain users know::

    from threadline import ChatPromptTemplate, RunnableWithMessageHistory, ...

Everything public is re-exported here; the modules behind it are private. Names whose
modules pull in optional dependencies are imported on first use (see ``_LAZY``), so
``import threadline`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from threadline._chat_model import BaseChatModel
from threadline._errors import (
    ConfigurationError,
    HistoryFileError,
    InputError,
    MessageFormatError,
    MissingConfigError,
    MissingDependencyError,
    MissingVariableError,
    ModelConnectionError,
    ModelError,
    ModelHTTPError,
    ModelRateLimitError,
    ModelResponseError,
    ModelTimeoutError,
    StoreConnectionError,
    StoreError,
    ThreadlineError,
)
from threadline._fake_models import EchoChatModel, FakeListChatModel
from threadline._history import (
    BaseChatMessageHistory,
    ChatMessageHistory,
    InMemoryChatMessageHistory,
)
from threadline._messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    convert_to_messages,
    get_buffer_string,
)
from threadline._parsers import StrOutputParser
from threadline._prompts import (
    AIMessagePromptTemplate,
    ChatPromptTemplate,
    ChatPromptValue,
    HumanMessagePromptTemplate,
    MessagesPlaceholder,
    PromptTemplate,
    StringPromptValue,
    SystemMessagePromptTemplate,
)
from threadline._runnables import (
    Runnable,
    RunnableConfig,
    RunnableLambda,
    RunnableParallel,
    RunnablePassthrough,
    RunnableSequence,
)
from threadline._serialization import (
    message_to_dict,
    messages_from_dict,
    messages_to_dict,
)
from threadline._with_history import ConfigurableFieldSpec, RunnableWithMessageHistory

if TYPE_CHECKING:
    from threadline._file_history import FileChatMessageHistory
    from threadline._legacy import (
        ConversationBufferMemory,
        ConversationBufferWindowMemory,
        ConversationChain,
    )
    from threadline._local_model import LocalChatModel
    from threadline._model_names import get_chat_model
    from threadline._openai import ChatOpenAI
    from threadline._token_memory import ConversationTokenBufferMemory
    from threadline._tokens import count_tokens
    from threadline._trim import trim_messages
    from threadline.stores import (
        SessionInfo,
        SessionPage,
        Store,
        StoreHistory,
        StoreURL,
        open_store,
    )
    from threadline.stores._cosmos_langchain import CosmosDBChatMessageHistory
    from threadline.stores._dynamodb_langchain import DynamoDBChatMessageHistory
    from threadline.stores._langchain import SQLChatMessageHistory
    from threadline.stores._postgres_langchain import PostgresChatMessageHistory
    from threadline.stores._redis import RedisChatMessageHistory
    from threadline.stores._transfer import (
        CopyReport,
        copy_sessions,
        export_sessions,
        file_source,
        import_sessions,
    )

__version__ = "0.1.0"

# Public names whose modules are imported on first access: "name": "module".
_LAZY: dict[str, str] = {
    "ChatOpenAI": "threadline._openai",
    "ConversationBufferMemory": "threadline._legacy",
    "ConversationBufferWindowMemory": "threadline._legacy",
    "ConversationChain": "threadline._legacy",
    "ConversationTokenBufferMemory": "threadline._token_memory",
    "CopyReport": "threadline.stores._transfer",
    "CosmosDBChatMessageHistory": "threadline.stores._cosmos_langchain",
    "DynamoDBChatMessageHistory": "threadline.stores._dynamodb_langchain",
    "FileChatMessageHistory": "threadline._file_history",
    "LocalChatModel": "threadline._local_model",
    "PostgresChatMessageHistory": "threadline.stores._postgres_langchain",
    "RedisChatMessageHistory": "threadline.stores._redis",
    "SQLChatMessageHistory": "threadline.stores._langchain",
    "SessionInfo": "threadline.stores",
    "SessionPage": "threadline.stores",
    "Store": "threadline.stores",
    "StoreHistory": "threadline.stores",
    "StoreURL": "threadline.stores",
    "copy_sessions": "threadline.stores._transfer",
    "count_tokens": "threadline._tokens",
    "export_sessions": "threadline.stores._transfer",
    "file_source": "threadline.stores._transfer",
    "get_chat_model": "threadline._model_names",
    "import_sessions": "threadline.stores._transfer",
    "open_store": "threadline.stores",
    "trim_messages": "threadline._trim",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'threadline' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "AIMessage",
    "AIMessageChunk",
    "AIMessagePromptTemplate",
    "BaseChatMessageHistory",
    "BaseChatModel",
    "BaseMessage",
    "ChatMessageHistory",
    "ChatOpenAI",
    "ChatPromptTemplate",
    "ChatPromptValue",
    "ConfigurableFieldSpec",
    "ConfigurationError",
    "ConversationBufferMemory",
    "ConversationBufferWindowMemory",
    "ConversationChain",
    "ConversationTokenBufferMemory",
    "CopyReport",
    "CosmosDBChatMessageHistory",
    "DynamoDBChatMessageHistory",
    "EchoChatModel",
    "FakeListChatModel",
    "FileChatMessageHistory",
    "HistoryFileError",
    "HumanMessage",
    "HumanMessagePromptTemplate",
    "InMemoryChatMessageHistory",
    "InputError",
    "LocalChatModel",
    "MessageFormatError",
    "MessagesPlaceholder",
    "MissingConfigError",
    "MissingDependencyError",
    "MissingVariableError",
    "ModelConnectionError",
    "ModelError",
    "ModelHTTPError",
    "ModelRateLimitError",
    "ModelResponseError",
    "ModelTimeoutError",
    "PostgresChatMessageHistory",
    "PromptTemplate",
    "RedisChatMessageHistory",
    "Runnable",
    "RunnableConfig",
    "RunnableLambda",
    "RunnableParallel",
    "RunnablePassthrough",
    "RunnableSequence",
    "RunnableWithMessageHistory",
    "SQLChatMessageHistory",
    "SessionInfo",
    "SessionPage",
    "Store",
    "StoreConnectionError",
    "StoreError",
    "StoreHistory",
    "StoreURL",
    "StrOutputParser",
    "StringPromptValue",
    "SystemMessage",
    "SystemMessagePromptTemplate",
    "ThreadlineError",
    "ToolMessage",
    "convert_to_messages",
    "copy_sessions",
    "count_tokens",
    "export_sessions",
    "file_source",
    "get_buffer_string",
    "get_chat_model",
    "import_sessions",
    "message_to_dict",
    "messages_from_dict",
    "messages_to_dict",
    "open_store",
    "trim_messages",
]
