"""Stored responses: the response object, its own input items and, for background jobs, the request.

A response stores only the items it was given (what ``input_items``
lists); the history it continued from is found by walking
``previous_response_id`` back, so a long chain costs one record per turn,
not a copy of the whole history per turn. Every record carries its owner;
a caller who does not own a response gets the same 404 as for an unknown id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter

from vistack.access import Action, Principal, allows, require
from vistack.api import ResponseNotFoundError
from vistack.api.responses import CreateResponseRequest, Item, ResponseObject
from vistack.context import current_principal
from vistack.storage import MetadataStore, Owner, Row, StoredObject

RESPONSE_KIND = "response"
MAX_CHAIN = 10_000  # previous_response_id hops followed before giving up (a cycle cannot exist, but be bounded)

_ITEMS = TypeAdapter(list[Item])


@dataclass
class StoredResponse:
    response: ResponseObject
    input: list[Any]
    owner: Principal
    created_at: float
    request: CreateResponseRequest | None = None


class ResponseStore:
    def __init__(self, db: MetadataStore) -> None:
        self.db = db

    async def put(self, response: ResponseObject, input_items: list[Any], owner: Owner,
                  request: CreateResponseRequest | None = None) -> None:
        await self.db.put(*self.row(response, input_items, owner, request))

    @staticmethod
    def row(response: ResponseObject, input_items: list[Any], owner: Owner,
            request: CreateResponseRequest | None = None) -> Row:
        """The stored object; ``request`` is kept only for a background response (what a restart needs to run
        it again)."""
        data: dict[str, Any] = {
            "response": response.model_dump(mode="json", by_alias=True),
            "input": [i.model_dump(mode="json", by_alias=True) for i in input_items],
        }
        if request is not None and response.background:
            data["request"] = request.model_dump(mode="json", by_alias=True, exclude_none=True)
        return (RESPONSE_KIND, response.id, owner, data)

    async def get(self, response_id: str, *, any_owner: bool = False, action: Action = Action.read) -> StoredResponse:
        """The response when the caller may ``action`` it (``any_owner``: internal), else 404 as for an unknown id."""
        found = await self.db.get(RESPONSE_KIND, response_id)
        if found is None:
            raise ResponseNotFoundError(response_id)
        if not any_owner:
            require(current_principal(), action, found.resource(RESPONSE_KIND), ResponseNotFoundError(response_id))
        return _stored(found)

    async def delete(self, response_id: str) -> None:
        await self.get(response_id, action=Action.delete)
        await self.db.delete(RESPONSE_KIND, response_id)

    async def list(self, owner: Principal | None) -> list[StoredResponse]:
        """Oldest first: all of them (``None``) or those ``owner`` may read."""
        return [_stored(o) for o in await self.db.list(RESPONSE_KIND, owner)]

    async def history(self, response_id: str) -> tuple[StoredResponse, list[Any]]:
        """The response and every item of the chain that ends with it (inputs and outputs, oldest first)."""
        head = await self.get(response_id)
        chain = [head]
        seen = {response_id}
        previous = head.response.previous_response_id
        while previous and len(chain) < MAX_CHAIN and previous not in seen:
            seen.add(previous)
            found = await self.db.get(RESPONSE_KIND, previous)
            if found is None or not allows(current_principal(), Action.read, found.resource(RESPONSE_KIND)):
                break  # a deleted (or foreign) ancestor ends the history there
            record = _stored(found)
            chain.append(record)
            previous = record.response.previous_response_id
        items: list[Any] = []
        for record in reversed(chain):
            items.extend(record.input)
            items.extend(record.response.output)
        return head, items


def _stored(obj: StoredObject) -> StoredResponse:
    data = obj.data
    request = data.get("request")
    return StoredResponse(
        response=ResponseObject.model_validate(data["response"]),
        input=_ITEMS.validate_python(data.get("input") or []),
        owner=obj.owner_principal,
        created_at=obj.created_at,
        request=CreateResponseRequest.model_validate(request) if request else None,
    )
