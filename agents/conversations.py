"""The Conversations service: a conversation is metadata plus an ordered list of items.

Items are stored one record each (``conversation_item`` kind, id
``{conv_id}/{item_id}``) in insertion order, so appending a response's
items never rewrites the history, and a batch is written in one
transaction (all or nothing). Every conversation records its owner; a
caller who does not own it gets the same 404 as for an unknown id.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from pydantic import TypeAdapter

from vistack.access import Action, Principal, require
from vistack.api import ConversationItemNotFoundError, ConversationNotFoundError, InvalidParameterError
from vistack.api.conversations import (
    CONVERSATION_ID_PATTERN,
    AddItemsRequest,
    Conversation,
    ConversationDeleted,
    ConversationItemDeleted,
    ConversationItemList,
    CreateConversationRequest,
    UpdateConversationRequest,
)
from vistack.api.responses import FileSearchCallItem, Item
from vistack.context import current_principal
from vistack.pagination import Order, paginate
from vistack.storage import MetadataStore, Owner, Row, StoredObject

CONVERSATION_KIND = "conversation"
ITEM_KIND = "conversation_item"
INCLUDE_SEARCH_RESULTS = "file_search_call.results"

_ITEM = TypeAdapter(Item)
_ITEM_PREFIX = {
    "message": "msg",
    "function_call": "fc",
    "function_call_output": "fco",
    "file_search_call": "fs",
    "mcp_call": "mcp",
    "mcp_list_tools": "mcpl",
    "mcp_approval_request": "mcpr",
    "mcp_approval_response": "mcpa",
}


def new_conversation_id() -> str:
    return f"conv_{secrets.token_hex(24)}"


def with_id(item: Any) -> Any:
    """The item with an id: ``msg_`` + 48 hex for messages, a type prefix for other items."""
    if getattr(item, "id", None):
        return item
    return item.model_copy(update={"id": f"{_ITEM_PREFIX.get(item.type, 'item')}_{secrets.token_hex(24)}"})


def check_conversation_id(conversation_id: str, param: str = "conversation_id") -> None:
    if not CONVERSATION_ID_PATTERN.fullmatch(conversation_id):
        raise InvalidParameterError(
            param,
            conversation_id,
            "Conversation ID must match format 'conv_' followed by 48 lowercase hex characters.",
        )


class ConversationsService:
    def __init__(self, store: MetadataStore) -> None:
        self.store = store

    # ----- conversations -----------------------------------------------------------------------

    async def create(self, req: CreateConversationRequest, owner: Principal | None = None) -> Conversation:
        owner = owner or current_principal()
        conv = Conversation(id=new_conversation_id(), created_at=int(time.time()), metadata=req.metadata)
        if req.items:  # items first: until the conversation's own record exists they are unreachable
            await self._append(conv.id, [with_id(i) for i in req.items], owner)
        await self.store.put(CONVERSATION_KIND, conv.id, owner, conv.model_dump(mode="json", exclude={"items"}))
        return conv

    async def get(self, conversation_id: str) -> Conversation:
        return Conversation.model_validate((await self._owned(conversation_id)).data)

    async def update(self, conversation_id: str, req: UpdateConversationRequest) -> Conversation:
        found = await self._owned(conversation_id, Action.update)
        conv = Conversation.model_validate(found.data).model_copy(update={"metadata": req.metadata})
        await self.store.put(CONVERSATION_KIND, conv.id, found.owner_principal, conv.model_dump(mode="json", exclude={"items"}))
        return conv

    async def delete(self, conversation_id: str) -> ConversationDeleted:
        await self._owned(conversation_id, Action.delete)
        await self.store.delete(CONVERSATION_KIND, conversation_id)  # gone at once; its items go next
        await self.store.delete_prefix(ITEM_KIND, f"{conversation_id}/")
        return ConversationDeleted(id=conversation_id)

    # ----- items -------------------------------------------------------------------------------

    async def add_items(self, conversation_id: str, req: AddItemsRequest) -> ConversationItemList:
        found = await self._owned(conversation_id, Action.update)
        items = [with_id(i) for i in req.items]
        await self._append(conversation_id, items, found.owner_principal)
        return _item_list(items, has_more=False)

    async def append(self, conversation_id: str, items: list[Any]) -> list[Any]:
        """Append items (a response's input and output) as the conversation's owner; returns them with ids."""
        stamped = [with_id(i) for i in items]
        await self.store.put_rows(await self.item_rows(conversation_id, stamped))
        return stamped

    async def item_rows(self, conversation_id: str, items: list[Any]) -> list[Row]:
        """Rows that append ``items`` (with ids), for a caller writing them in one transaction with its own."""
        found = await self._owned(conversation_id, Action.update)
        owner = found.owner_principal
        return [(ITEM_KIND, f"{conversation_id}/{i.id}", owner, i.model_dump(mode="json", by_alias=True))
                for i in items]

    async def list_items(
        self,
        conversation_id: str,
        *,
        limit: int = 20,
        order: Order = "desc",
        after: str | None = None,
        include: list[str] | None = None,
    ) -> ConversationItemList:
        items = await self.all_items(conversation_id)
        page, has_more = paginate(items, ident=lambda i: i.id, limit=limit, order=order, after=after)
        return _item_list([_shown(i, include) for i in page], has_more)

    async def all_items(self, conversation_id: str) -> list[Any]:
        """Every item, oldest first (the context a response continues from)."""
        await self._owned(conversation_id)
        records = await self.store.list(ITEM_KIND, id_prefix=f"{conversation_id}/")
        return [_ITEM.validate_python(r.data) for r in records]

    async def get_item(self, conversation_id: str, item_id: str) -> Any:
        await self._owned(conversation_id)
        found = await self.store.get(ITEM_KIND, f"{conversation_id}/{item_id}")
        if found is None:
            raise ConversationItemNotFoundError(item_id, conversation_id)
        return _ITEM.validate_python(found.data)

    async def delete_item(self, conversation_id: str, item_id: str) -> ConversationItemDeleted:
        await self._owned(conversation_id, Action.update)
        if not await self.store.delete(ITEM_KIND, f"{conversation_id}/{item_id}"):
            raise ConversationItemNotFoundError(item_id, conversation_id)
        return ConversationItemDeleted(id=item_id)

    # ----- internals ---------------------------------------------------------------------------

    async def _owned(self, conversation_id: str, action: Action = Action.read) -> StoredObject:
        """The conversation when the caller may ``action`` it; otherwise the 404 of an unknown id."""
        check_conversation_id(conversation_id)
        found = await self.store.get(CONVERSATION_KIND, conversation_id)
        if found is None:
            raise ConversationNotFoundError(conversation_id)
        require(current_principal(), action, found.resource(CONVERSATION_KIND), ConversationNotFoundError(conversation_id))
        return found

    async def _append(self, conversation_id: str, items: list[Any], owner: Owner) -> None:
        records = [(f"{conversation_id}/{i.id}", i.model_dump(mode="json", by_alias=True)) for i in items]
        await self.store.put_many(ITEM_KIND, records, owner)


def _shown(item: Any, include: list[str] | None) -> Any:
    """File-search results are returned only when asked for (``include=file_search_call.results``), as OpenAI does."""
    if isinstance(item, FileSearchCallItem) and INCLUDE_SEARCH_RESULTS not in (include or []):
        return item.model_copy(update={"results": None})
    return item


def _item_list(items: list[Any], has_more: bool) -> ConversationItemList:
    return ConversationItemList.page(items, has_more)  # type: ignore[return-value]
