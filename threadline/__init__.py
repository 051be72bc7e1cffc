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
    ModelError,
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

__version__ = "0.1.0"

# Public names whose modules are imported on first access: "name": "module".
_LAZY: dict[str, str] = {
    "ConversationBufferMemory": "threadline._legacy",
    "ConversationBufferWindowMemory": "threadline._legacy",
    "ConversationChain": "threadline._legacy",
    "FileChatMessageHistory": "threadline._file_history",
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
    "ChatPromptTemplate",
    "ChatPromptValue",
    "ConfigurableFieldSpec",
    "ConfigurationError",
    "ConversationBufferMemory",
    "ConversationBufferWindowMemory",
    "ConversationChain",
    "EchoChatModel",
    "FakeListChatModel",
    "FileChatMessageHistory",
    "HistoryFileError",
    "HumanMessage",
    "HumanMessagePromptTemplate",
    "InMemoryChatMessageHistory",
    "InputError",
    "MessageFormatError",
    "MessagesPlaceholder",
    "MissingConfigError",
    "MissingDependencyError",
    "MissingVariableError",
    "ModelError",
    "PromptTemplate",
    "Runnable",
    "RunnableConfig",
    "RunnableLambda",
    "RunnableParallel",
    "RunnablePassthrough",
    "RunnableSequence",
    "RunnableWithMessageHistory",
    "StoreConnectionError",
    "StoreError",
    "StrOutputParser",
    "StringPromptValue",
    "SystemMessage",
    "SystemMessagePromptTemplate",
    "ThreadlineError",
    "ToolMessage",
    "convert_to_messages",
    "get_buffer_string",
    "message_to_dict",
    "messages_from_dict",
    "messages_to_dict",
]
