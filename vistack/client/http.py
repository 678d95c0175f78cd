"""Async HTTP client for the routes the CLI and SDK users need most."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any, Self

import httpx


class VistackAPIError(Exception):
    """An error answer from the server, with its status and message (``code``: the error's code, if any)."""

    def __init__(self, status_code: int, message: str, code: str | None = None) -> None:
        super().__init__(f"{status_code}: {message}")
        self.status_code = status_code
        self.message = message
        self.code = code


class VistackClient:
    def __init__(self, base_url: str = "http://127.0.0.1:8321", *, transport: httpx.AsyncBaseTransport | None = None,
                 timeout: float = 300.0, headers: dict[str, str] | None = None) -> None:
        self._http = httpx.AsyncClient(base_url=base_url, transport=transport, timeout=timeout, headers=headers)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TransportError as e:
            raise VistackAPIError(503, f"cannot reach the vistack server at {self._http.base_url}: {e}") from e
        if response.status_code >= 400:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text
            raise VistackAPIError(response.status_code, message)
        return response.json() if response.content else None

    # files
    async def upload_file(self, path: Path, purpose: str = "assistants") -> dict:
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        with path.open("rb") as fh:
            return await self._request("POST", "/v1/files", data={"purpose": purpose},
                                       files={"file": (path.name, fh, content_type)})

    # vector stores
    async def list_vector_stores(self) -> list[dict]:
        stores: list[dict] = []
        after = None
        while True:
            params = {"limit": 100, "order": "asc", **({"after": after} if after else {})}
            page = await self._request("GET", "/v1/vector_stores", params=params)
            stores.extend(page["data"])
            if not page["has_more"]:
                return stores
            after = page["last_id"]

    async def find_vector_store(self, name_or_id: str) -> dict | None:
        for store in await self.list_vector_stores():
            if store["id"] == name_or_id or store.get("name") == name_or_id:
                return store
        return None

    async def create_vector_store(self, name: str, **extra: Any) -> dict:
        return await self._request("POST", "/v1/vector_stores", json={"name": name, **extra})

    async def create_file_batch(self, store_id: str, file_ids: list[str], attributes: dict | None = None) -> dict:
        body: dict[str, Any] = {"file_ids": file_ids}
        if attributes:
            body["attributes"] = attributes
        return await self._request("POST", f"/v1/vector_stores/{store_id}/file_batches", json=body)

    async def get_vector_store_file(self, store_id: str, file_id: str) -> dict:
        return await self._request("GET", f"/v1/vector_stores/{store_id}/files/{file_id}")

    async def search(self, store_id: str, query: str, *, max_num_results: int = 10, search_mode: str = "hybrid",
                     filters: dict | None = None) -> dict:
        body: dict[str, Any] = {"query": query, "max_num_results": max_num_results, "search_mode": search_mode}
        if filters:
            body["filters"] = filters
        return await self._request("POST", f"/v1/vector_stores/{store_id}/search", json=body)

    # safety
    async def list_shields(self) -> list[dict]:
        return (await self._request("GET", "/v1/shields"))["data"]

    async def run_shield(self, shield_id: str, messages: list[dict]) -> dict:
        """``{"violation": None}`` or the violation (level, user_message, metadata.violation_type)."""
        return await self._request("POST", "/v1/safety/run-shield", json={"shield_id": shield_id, "messages": messages})

    async def moderate(self, text: str | list[str], model: str | None = None) -> dict:
        """OpenAI's moderation object; ``model`` picks the shield by its model (default: the server's default)."""
        body: dict[str, Any] = {"input": text}
        if model:
            body["model"] = model
        return await self._request("POST", "/v1/moderations", json=body)
