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
    InputTypeError,
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
    ChatMessagePromptTemplate,
    ChatPromptTemplate,
    ChatPromptValue,
    ChatPromptValueConcrete,
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
    BaseMessageChunk,
    ChatMessageChunk,
    FunctionMessageChunk,
    HumanMessageChunk,
    SystemMessageChunk,
    ToolMessageChunk,
    merge_content,
    message_chunk_to_message,
)
from threadline.messages._convert import (
    MessageLikeRepresentation,
    convert_to_messages,
    get_buffer_string,
)
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
from threadline.models._fake import (
    EchoChatModel,
    FakeListChatModel,
    FakeMessagesListChatModel,
    GenericFakeChatModel,
    ParrotFakeChatModel,
)

if TYPE_CHECKING:
    from threadline.core._compose import RunnableBranch, RunnableGenerator, chain
    from threadline.core._message_ops import filter_messages, merge_message_runs
    from threadline.memory._buffer import (
        ConversationBufferMemory,
        ConversationBufferWindowMemory,
    )
    from threadline.memory._chain import ConversationChain
    from threadline.memory._simple import ReadOnlySharedMemory, SimpleMemory
    from threadline.memory._summary import CompactionWarning, SummaryBufferHistory, SummaryInfo
    from threadline.memory._summary_memory import (
        SUMMARY_PROMPT,
        ConversationSummaryBufferMemory,
        ConversationSummaryMemory,
    )
    from threadline.memory._token import ConversationTokenBufferMemory
    from threadline.messages._openai_format import (
        convert_to_openai_data_block,
        convert_to_openai_image_block,
        convert_to_openai_messages,
        is_data_content_block,
    )
    from threadline.messages._tool_calls import (
        InvalidToolCall,
        ToolCall,
        ToolCallChunk,
        invalid_tool_call,
        tool_call,
        tool_call_chunk,
    )
    from threadline.models._llm import LLM, FakeListLLM, FakeListLLMError, FakeStreamingListLLM
    from threadline.models._local import LocalChatModel
    from threadline.models._names import get_chat_model
    from threadline.models._openai import ChatOpenAI
    from threadline.models._tokens import count_tokens, count_tokens_approximately
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
    "FakeListLLM": "threadline.models._llm",
    "FakeListLLMError": "threadline.models._llm",
    "FakeStreamingListLLM": "threadline.models._llm",
    "FileChatMessageHistory": "threadline.stores.file._history",
    "InvalidToolCall": "threadline.messages._tool_calls",
    "LLM": "threadline.models._llm",
    "LocalChatModel": "threadline.models._local",
    "PostgresChatMessageHistory": "threadline.stores.compat._postgres",
    "ReadOnlySharedMemory": "threadline.memory._simple",
    "RedisChatMessageHistory": "threadline.stores.compat._redis",
    "RunnableBranch": "threadline.core._compose",
    "RunnableGenerator": "threadline.core._compose",
    "SQLChatMessageHistory": "threadline.stores.compat._sql",
    "SUMMARY_PROMPT": "threadline.memory._summary_memory",
    "SessionInfo": "threadline.stores",
    "SessionPage": "threadline.stores",
    "SimpleMemory": "threadline.memory._simple",
    "Store": "threadline.stores",
    "StoreHistory": "threadline.stores",
    "StoreURL": "threadline.stores",
    "SummaryBufferHistory": "threadline.memory._summary",
    "SummaryInfo": "threadline.memory._summary",
    "ToolCall": "threadline.messages._tool_calls",
    "ToolCallChunk": "threadline.messages._tool_calls",
    "chain": "threadline.core._compose",
    "convert_to_openai_data_block": "threadline.messages._openai_format",
    "convert_to_openai_image_block": "threadline.messages._openai_format",
    "convert_to_openai_messages": "threadline.messages._openai_format",
    "copy_sessions": "threadline.stores._transfer",
    "count_tokens": "threadline.models._tokens",
    "count_tokens_approximately": "threadline.models._tokens",
    "export_sessions": "threadline.stores._transfer",
    "file_source": "threadline.stores._transfer",
    "filter_messages": "threadline.core._message_ops",
    "get_chat_model": "threadline.models._names",
    "history_path": "threadline.stores.file._paths",
    "import_sessions": "threadline.stores._transfer",
    "invalid_tool_call": "threadline.messages._tool_calls",
    "is_data_content_block": "threadline.messages._openai_format",
    "merge_message_runs": "threadline.core._message_ops",
    "open_store": "threadline.stores",
    "tool_call": "threadline.messages._tool_calls",
    "tool_call_chunk": "threadline.messages._tool_calls",
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
    "BaseMessageChunk",
    "ChatMessage",
    "ChatMessageChunk",
    "ChatMessageHistory",
    "ChatMessagePromptTemplate",
    "ChatOpenAI",
    "ChatPromptTemplate",
    "ChatPromptValue",
    "ChatPromptValueConcrete",
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
    "FakeListLLM",
    "FakeListLLMError",
    "FakeMessagesListChatModel",
    "FakeStreamingListLLM",
    "FileChatMessageHistory",
    "FunctionMessage",
    "FunctionMessageChunk",
    "GenericFakeChatModel",
    "HistoryFileError",
    "HumanMessage",
    "HumanMessageChunk",
    "HumanMessagePromptTemplate",
    "InMemoryChatMessageHistory",
    "InputError",
    "InputTypeError",
    "InvalidToolCall",
    "LLM",
    "LocalChatModel",
    "MessageFormatError",
    "MessageLikeRepresentation",
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
    "ParrotFakeChatModel",
    "PostgresChatMessageHistory",
    "PromptTemplate",
    "ReadOnlySharedMemory",
    "RedisChatMessageHistory",
    "RemoveMessage",
    "Runnable",
    "RunnableBranch",
    "RunnableConfig",
    "RunnableGenerator",
    "RunnableLambda",
    "RunnableParallel",
    "RunnablePassthrough",
    "RunnableSequence",
    "RunnableWithMessageHistory",
    "SQLChatMessageHistory",
    "SUMMARY_PROMPT",
    "SessionInfo",
    "SessionPage",
    "SimpleMemory",
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
    "ToolCall",
    "ToolCallChunk",
    "ToolMessage",
    "ToolMessageChunk",
    "chain",
    "convert_to_messages",
    "convert_to_openai_data_block",
    "convert_to_openai_image_block",
    "convert_to_openai_messages",
    "copy_sessions",
    "count_tokens",
    "count_tokens_approximately",
    "export_sessions",
    "file_source",
    "filter_messages",
    "get_buffer_string",
    "get_chat_model",
    "history_path",
    "import_sessions",
    "invalid_tool_call",
    "is_data_content_block",
    "merge_content",
    "merge_message_runs",
    "message_chunk_to_message",
    "message_to_dict",
    "messages_from_dict",
    "messages_to_dict",
    "open_store",
    "tool_call",
    "tool_call_chunk",
    "trim_messages",
]
