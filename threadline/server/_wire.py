"""Request bodies of the Responses and Chat Completions routes, as pydantic models.

Only the fields the server acts on are declared; any other field is ignored, since the
SDKs send more than a server must honour (``include``, ``user``, ``stream_options``...).
A declared field of the wrong type is a 400 naming it (see ``_errors``). Items and chat
messages stay plain JSON here: :mod:`~threadline.server._items` and ``_chat`` convert
them and name the offending index.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

__all__ = ["ChatRequest", "ConversationRef", "ResponseRequest", "check_metadata"]


def check_metadata(value: dict[str, str] | None) -> dict[str, str] | None:
    """OpenAI's limits: at most 16 pairs, keys up to 64 characters, values up to 512."""
    if value is None:
        return None
    if len(value) > 16:
        raise ValueError("at most 16 key-value pairs")
    for key, item in value.items():
        if not 0 < len(key) <= 64:
            raise ValueError(f"key {key[:70]!r}: 1 to 64 characters")
        if len(item) > 512:
            raise ValueError(f"value of {key!r}: at most 512 characters")
    return value


class ConversationRef(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str


class ResponseRequest(BaseModel):
    """``POST /v1/responses``."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    input: str | list[Any] = Field(default_factory=list)
    instructions: str | None = None
    conversation: str | ConversationRef | None = None
    previous_response_id: str | None = None
    store: StrictBool | None = True
    stream: StrictBool | None = False
    max_output_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    metadata: dict[str, str] | None = None

    _metadata = field_validator("metadata")(check_metadata)

    @property
    def conversation_id(self) -> str | None:
        if isinstance(self.conversation, ConversationRef):
            return self.conversation.id
        return self.conversation


class ChatRequest(BaseModel):
    """``POST /v1/chat/completions``."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    messages: list[dict[str, Any]] = Field(min_length=1)
    stream: StrictBool | None = False
    stream_options: dict[str, Any] | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
