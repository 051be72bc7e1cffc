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

from threadline._errors import (
    ConfigurationError,
    DamagedMessageError,
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
    SkippedMessageWarning,
    StoreConnectionError,
    StoreError,
    StoreTimeoutError,
    ThreadlineError,
)
from threadline.core._history import (
    BaseChatMessageHistory,
    ChatMessageHistory,
    InMemoryChatMessageHistory,
)
from threadline.core._parsers import StrOutputParser
from threadline.core._prompts import (
    AIMessagePromptTemplate,
    ChatPromptTemplate,
    ChatPromptValue,
    HumanMessagePromptTemplate,
    MessagesPlaceholder,
    PromptTemplate,
    StringPromptValue,
    SystemMessagePromptTemplate,
)
from threadline.core._runnables import (
    Runnable,
    RunnableConfig,
    RunnableLambda,
    RunnableParallel,
    RunnablePassthrough,
    RunnableSequence,
)
from threadline.core._with_history import ConfigurableFieldSpec, RunnableWithMessageHistory
from threadline.messages._chunks import (
    AIMessageChunk,
    ChatMessageChunk,
    FunctionMessageChunk,
    HumanMessageChunk,
    SystemMessageChunk,
    ToolMessageChunk,
)
from threadline.messages._convert import convert_to_messages, get_buffer_string
from threadline.messages._serialization import (
    message_to_dict,
    messages_from_dict,
    messages_to_dict,
)
from threadline.messages._values import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
)
from threadline.models._base import BaseChatModel
from threadline.models._fake import EchoChatModel, FakeListChatModel

if TYPE_CHECKING:
    from threadline.memory._buffer import (
        ConversationBufferMemory,
        ConversationBufferWindowMemory,
    )
    from threadline.memory._chain import ConversationChain
    from threadline.memory._summary import CompactionWarning, SummaryBufferHistory, SummaryInfo
    from threadline.memory._summary_memory import (
        SUMMARY_PROMPT,
        ConversationSummaryBufferMemory,
        ConversationSummaryMemory,
    )
    from threadline.memory._token import ConversationTokenBufferMemory
    from threadline.models._local import LocalChatModel
    from threadline.models._names import get_chat_model
    from threadline.models._openai import ChatOpenAI
    from threadline.models._tokens import count_tokens
    from threadline.models._trim import trim_messages
    from threadline.stores import (
        SessionInfo,
        SessionPage,
        Store,
        StoreHistory,
        StoreURL,
        open_store,
    )
    from threadline.stores._transfer import (
        CopyReport,
        copy_sessions,
        export_sessions,
        file_source,
        import_sessions,
    )
    from threadline.stores.compat._cosmos import CosmosDBChatMessageHistory
    from threadline.stores.compat._dynamodb import DynamoDBChatMessageHistory
    from threadline.stores.compat._postgres import PostgresChatMessageHistory
    from threadline.stores.compat._redis import RedisChatMessageHistory
    from threadline.stores.compat._sql import SQLChatMessageHistory
    from threadline.stores.file._history import FileChatMessageHistory
    from threadline.stores.file._paths import history_path

__version__ = "0.1.0"

# Public names whose modules are imported on first access: "name": "module".
_LAZY: dict[str, str] = {
    "ChatOpenAI": "threadline.models._openai",
    "CompactionWarning": "threadline.memory._summary",
    "ConversationBufferMemory": "threadline.memory._buffer",
    "ConversationBufferWindowMemory": "threadline.memory._buffer",
    "ConversationChain": "threadline.memory._chain",
    "ConversationSummaryBufferMemory": "threadline.memory._summary_memory",
    "ConversationSummaryMemory": "threadline.memory._summary_memory",
    "ConversationTokenBufferMemory": "threadline.memory._token",
    "CopyReport": "threadline.stores._transfer",
    "CosmosDBChatMessageHistory": "threadline.stores.compat._cosmos",
    "DynamoDBChatMessageHistory": "threadline.stores.compat._dynamodb",
    "FileChatMessageHistory": "threadline.stores.file._history",
    "history_path": "threadline.stores.file._paths",
    "LocalChatModel": "threadline.models._local",
    "PostgresChatMessageHistory": "threadline.stores.compat._postgres",
    "RedisChatMessageHistory": "threadline.stores.compat._redis",
    "SQLChatMessageHistory": "threadline.stores.compat._sql",
    "SUMMARY_PROMPT": "threadline.memory._summary_memory",
    "SessionInfo": "threadline.stores",
    "SessionPage": "threadline.stores",
    "Store": "threadline.stores",
    "StoreHistory": "threadline.stores",
    "StoreURL": "threadline.stores",
    "SummaryBufferHistory": "threadline.memory._summary",
    "SummaryInfo": "threadline.memory._summary",
    "copy_sessions": "threadline.stores._transfer",
    "count_tokens": "threadline.models._tokens",
    "export_sessions": "threadline.stores._transfer",
    "file_source": "threadline.stores._transfer",
    "get_chat_model": "threadline.models._names",
    "import_sessions": "threadline.stores._transfer",
    "open_store": "threadline.stores",
    "trim_messages": "threadline.models._trim",
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
    "ChatMessage",
    "ChatMessageChunk",
    "ChatMessageHistory",
    "ChatOpenAI",
    "ChatPromptTemplate",
    "ChatPromptValue",
    "CompactionWarning",
    "ConfigurableFieldSpec",
    "ConfigurationError",
    "ConversationBufferMemory",
    "ConversationBufferWindowMemory",
    "ConversationChain",
    "ConversationSummaryBufferMemory",
    "ConversationSummaryMemory",
    "ConversationTokenBufferMemory",
    "CopyReport",
    "CosmosDBChatMessageHistory",
    "DamagedMessageError",
    "DynamoDBChatMessageHistory",
    "EchoChatModel",
    "FakeListChatModel",
    "FileChatMessageHistory",
    "FunctionMessage",
    "FunctionMessageChunk",
    "HistoryFileError",
    "HumanMessage",
    "HumanMessageChunk",
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
    "RemoveMessage",
    "Runnable",
    "RunnableConfig",
    "RunnableLambda",
    "RunnableParallel",
    "RunnablePassthrough",
    "RunnableSequence",
    "RunnableWithMessageHistory",
    "SQLChatMessageHistory",
    "SUMMARY_PROMPT",
    "SessionInfo",
    "SessionPage",
    "SkippedMessageWarning",
    "Store",
    "StoreConnectionError",
    "StoreError",
    "StoreHistory",
    "StoreTimeoutError",
    "StoreURL",
    "StrOutputParser",
    "StringPromptValue",
    "SummaryBufferHistory",
    "SummaryInfo",
    "SystemMessage",
    "SystemMessageChunk",
    "SystemMessagePromptTemplate",
    "ThreadlineError",
    "ToolMessage",
    "ToolMessageChunk",
    "convert_to_messages",
    "copy_sessions",
    "count_tokens",
    "export_sessions",
    "file_source",
    "get_buffer_string",
    "get_chat_model",
    "history_path",
    "import_sessions",
    "message_to_dict",
    "messages_from_dict",
    "messages_to_dict",
    "open_store",
    "trim_messages",
]
