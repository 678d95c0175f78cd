"""``/v1/conversations`` (OpenAI / Llama Stack 0.7 shapes)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, Depends, Query

from vistack.api.conversations import (
    AddItemsRequest,
    Conversation,
    ConversationDeleted,
    ConversationItemDeleted,
    ConversationItemList,
    CreateConversationRequest,
    UpdateConversationRequest,
)
from vistack.api.responses import Item
from vistack.server.deps import get_conversations

if TYPE_CHECKING:
    from vistack.agents.conversations import ConversationsService

router = APIRouter(prefix="/v1", tags=["Conversations"])

Service = Annotated["ConversationsService", Depends(get_conversations)]


@router.post("/conversations", response_model=Conversation, summary="Create a conversation.")
async def create_conversation(body: CreateConversationRequest, svc: Service) -> Conversation:
    return await svc.create(body)


@router.get("/conversations/{conversation_id}", response_model=Conversation, summary="Retrieve a conversation.")
async def get_conversation(conversation_id: str, svc: Service) -> Conversation:
    return await svc.get(conversation_id)


@router.post("/conversations/{conversation_id}", response_model=Conversation,
             summary="Update a conversation's metadata.")
async def update_conversation(conversation_id: str, body: UpdateConversationRequest, svc: Service) -> Conversation:
    return await svc.update(conversation_id, body)


@router.delete("/conversations/{conversation_id}", response_model=ConversationDeleted,
               summary="Delete a conversation and its items.")
async def delete_conversation(conversation_id: str, svc: Service) -> ConversationDeleted:
    return await svc.delete(conversation_id)


@router.post("/conversations/{conversation_id}/items", response_model=ConversationItemList,
             summary="Add items (up to 20 at a time).")
async def add_items(conversation_id: str, body: AddItemsRequest, svc: Service) -> ConversationItemList:
    return await svc.add_items(conversation_id, body)


@router.get("/conversations/{conversation_id}/items", response_model=ConversationItemList, summary="List items.")
async def list_items(
    conversation_id: str,
    svc: Service,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Literal["asc", "desc"] = "desc",
    include: Annotated[list[str] | None, Query()] = None,
) -> ConversationItemList:
    return await svc.list_items(conversation_id, limit=limit, order=order, after=after, include=include)


@router.get("/conversations/{conversation_id}/items/{item_id}", response_model=Item, summary="Retrieve an item.")
async def get_item(conversation_id: str, item_id: str, svc: Service) -> Item:
    return await svc.get_item(conversation_id, item_id)


@router.delete("/conversations/{conversation_id}/items/{item_id}", response_model=ConversationItemDeleted,
               summary="Delete an item.")
async def delete_item(conversation_id: str, item_id: str, svc: Service) -> ConversationItemDeleted:
    return await svc.delete_item(conversation_id, item_id)
