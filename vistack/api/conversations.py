"""Conversations API wire models (OpenAI / Llama Stack 0.7 shapes).

A conversation is an id, metadata and an ordered list of items (the same
item types as the Responses API). Ids are ``conv_`` + 48 hex; message items
get ``msg_`` + 48 hex, other items ``item_`` + 48 hex when the client gave none.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from .datatypes import ObjectList
from .responses import Item, default_item_type

CONVERSATION_ID_PATTERN = re.compile(r"^conv_[0-9a-f]{48}$")
MAX_ITEMS_PER_CALL = 20

Metadata = dict[str, str]


class Conversation(BaseModel):
    id: str
    object: Literal["conversation"] = "conversation"
    created_at: int
    metadata: Metadata | None = None
    items: list[dict[str, Any]] | None = None


class _WithItems(BaseModel):
    @model_validator(mode="before")
    @classmethod
    def _message_type_default(cls, value: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get("items"), list):
            value = {**value, "items": [default_item_type(i) for i in value["items"]]}
        return value


class CreateConversationRequest(_WithItems):
    items: list[Item] | None = Field(default=None, max_length=MAX_ITEMS_PER_CALL)
    metadata: Metadata | None = Field(default=None, max_length=16)


class UpdateConversationRequest(BaseModel):
    metadata: Metadata = Field(max_length=16)


class AddItemsRequest(_WithItems):
    items: list[Item] = Field(min_length=1, max_length=MAX_ITEMS_PER_CALL)


class ConversationDeleted(BaseModel):
    id: str
    object: Literal["conversation.deleted"] = "conversation.deleted"
    deleted: bool = True


class ConversationItemList(ObjectList[Item]):
    """Items of a conversation (a page of them)."""


class ConversationItemDeleted(BaseModel):
    id: str
    object: Literal["conversation.item.deleted"] = "conversation.item.deleted"
    deleted: bool = True
