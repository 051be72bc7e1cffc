"""The wire format of the Conversations API: one pydantic model per request body and per
answer, so ``/openapi.json`` documents them (the routes are in
:mod:`~threadline.server._conversations`).

The shapes are OpenAI's (``openai.types.conversations``); what OpenAI lacks is marked
*extension*. Request bodies refuse unknown fields (a 400 naming the field): a field
this server does not know is never dropped silently. Metadata and titles are checked
here with the store's own rules, so a bad value is a 400 naming ``metadata`` or
``title`` before anything is stored. Items stay plain dicts: they are converted (and
refused with a 400 naming the item) by :func:`~threadline.server._items.input_messages`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, field_validator

from threadline._errors import InputError
from threadline.stores._sessions import check_metadata, check_title

__all__ = ["MAX_EXPIRY", "MAX_ITEMS", "MIN_EXPIRY", "ConversationCreate",
           "ConversationDeleted", "ConversationList", "ConversationMatch", "ConversationObject",
           "ConversationUpdate", "ExpiresAfter", "ForkRequest", "ItemList", "ItemsCreate"]

#: Items one request may add (OpenAI's limit).
MAX_ITEMS = 20
#: Bounds of ``expires_after.seconds``: a minute to a year.
MIN_EXPIRY = 60
MAX_EXPIRY = 31_536_000


def _metadata(value: dict[str, str] | None) -> dict[str, str] | None:
    try:
        return check_metadata(value)
    except InputError as exc:
        raise ValueError(str(exc)) from None


def _title(value: str | None) -> str | None:
    try:
        return check_title(value)
    except InputError as exc:
        raise ValueError(str(exc)) from None


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExpiresAfter(_Body):
    """*Extension*: the conversation is deleted ``seconds`` after its last activity."""

    anchor: Literal["last_active_at"] = "last_active_at"
    seconds: int = Field(ge=MIN_EXPIRY, le=MAX_EXPIRY)


class ConversationCreate(_Body):
    items: list[dict[str, Any]] | None = Field(None, max_length=MAX_ITEMS)
    metadata: dict[str, str] | None = None
    #: Accepted for compatibility; this server does no abuse monitoring with it.
    safety_identifier: str | None = None
    title: str | None = Field(None, description="Extension: the conversation's title.")
    expires_after: ExpiresAfter | None = None

    _check_metadata = field_validator("metadata")(_metadata)
    _check_title = field_validator("title")(_title)


class ConversationUpdate(_Body):
    """Only the fields given change; ``null`` clears one."""

    metadata: dict[str, str] | None = None
    title: str | None = Field(None, description="Extension: the conversation's title.")
    expires_after: ExpiresAfter | None = Field(
        None, description="Extension: null keeps the conversation forever.")

    _check_metadata = field_validator("metadata")(_metadata)
    _check_title = field_validator("title")(_title)


class ItemsCreate(_Body):
    items: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_ITEMS)


class ForkRequest(_Body):
    """*Extension*: fork a conversation, keeping its items up to and including
    ``item_id`` (default: all)."""

    item_id: str | None = None
    title: str | None = None

    _check_title = field_validator("title")(_title)


class ConversationObject(BaseModel):
    """OpenAI's ``Conversation`` plus what the store knows of it (extensions)."""

    id: str
    object: Literal["conversation"] = "conversation"
    created_at: int
    metadata: dict[str, str]
    title: str | None = None
    updated_at: int | None = None
    message_count: int = 0
    parent: str | None = None
    fork_point: int | None = None
    expires_at: int | None = None


class ConversationMatch(ConversationObject):
    """*Extension*: a conversation found by ``GET /v1/conversations?q=``, with the text
    around its first match."""

    snippet: str


class ConversationDeleted(BaseModel):
    id: str
    object: Literal["conversation.deleted"] = "conversation.deleted"
    deleted: bool = True


class ItemList(BaseModel):
    object: Literal["list"] = "list"
    data: list[dict[str, Any]]
    first_id: str | None
    last_id: str | None
    has_more: bool


class ConversationList(BaseModel):
    """*Extension*: a page of conversations, most recent first; pass ``next_cursor`` as
    ``after`` for the next one."""

    object: Literal["list"] = "list"
    data: list[SerializeAsAny[ConversationObject]]
    first_id: str | None
    last_id: str | None
    has_more: bool
    next_cursor: str | None
