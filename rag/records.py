"""Persisted records behind the Vector Stores API.

The public objects (``VectorStoreObject``, ``VectorStoreFileObject``) are
stored together with what only the server needs: which provider and
embedding model a store uses, a file's content hash and the page images it
produced. ``file_counts`` are derived from the file records on every read,
so they can never drift.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from vistack.access import Principal
from vistack.api.vector_stores import (
    ChunkingStrategy,
    ChunkingStrategyAuto,
    FileCounts,
    VectorStoreFileObject,
    VectorStoreObject,
)
from vistack.storage import MetadataStore, Owner, StoredObject

STORE_KIND = "vector_store"
FILE_KIND = "vector_store_file"
BATCH_KIND = "vector_store_file_batch"


class StoreRecord(BaseModel):
    object: VectorStoreObject
    provider_id: str
    embedding_model: str
    embedding_dimension: int
    chunking_strategy: ChunkingStrategy = Field(default_factory=ChunkingStrategyAuto)
    deleting: bool = False  # set in one write when deletion starts: the store is gone for callers from then on


class FileRecord(BaseModel):
    object: VectorStoreFileObject
    filename: str = ""
    sha256: str | None = None
    duplicate_of: str | None = None
    batch_id: str | None = None
    page_image_file_ids: list[str] = Field(default_factory=list)
    detaching: bool = False  # set in one write when detaching starts: gone for callers, finished at restart
    chunk_count: int = 0
    page_count: int = 0
    attempts: int = 0


class BatchRecord(BaseModel):
    id: str
    vector_store_id: str
    created_at: int
    file_ids: list[str]
    cancelled: bool = False


PAGES_KIND = "vector_store_file_pages"


def file_key(store_id: str, file_id: str) -> str:
    return f"{store_id}/{file_id}"


class Records:
    """Typed access to the three record kinds in the shared metadata store."""

    def __init__(self, store: MetadataStore) -> None:
        self.db = store

    # stores
    async def put_store(self, rec: StoreRecord, owner: Owner) -> None:
        await self.db.put(STORE_KIND, rec.object.id, owner, rec.model_dump(mode="json"))

    async def get_store(self, store_id: str) -> tuple[StoreRecord, StoredObject] | None:
        """The store and its stored object (owner, tenant: what access checks and background work need)."""
        obj = await self.db.get(STORE_KIND, store_id)
        return (StoreRecord.model_validate(obj.data), obj) if obj else None

    async def list_stores(self, owner: Principal | None, *, deleting: bool = False) -> list[StoreRecord]:
        """Live stores the owner may read (``deleting``: only the ones whose deletion a crash interrupted)."""
        found = [StoreRecord.model_validate(o.data) for o in await self.db.list(STORE_KIND, owner)]
        return [r for r in found if r.deleting == deleting]

    async def delete_store(self, store_id: str) -> None:
        await self.db.delete(STORE_KIND, store_id)

    # files
    async def put_file(self, rec: FileRecord, owner: Owner) -> None:
        await self.db.put(
            FILE_KIND, file_key(rec.object.vector_store_id, rec.object.id), owner, rec.model_dump(mode="json")
        )

    async def get_file(self, store_id: str, file_id: str, *, include_detaching: bool = False) -> FileRecord | None:
        obj = await self.db.get(FILE_KIND, file_key(store_id, file_id))
        rec = FileRecord.model_validate(obj.data) if obj else None
        return rec if rec is not None and (include_detaching or not rec.detaching) else None

    async def list_files(self, store_id: str, *, include_detaching: bool = False) -> list[FileRecord]:
        found = [FileRecord.model_validate(o.data) for o in await self.db.list(FILE_KIND, id_prefix=f"{store_id}/")]
        return [f for f in found if include_detaching or not f.detaching]

    async def all_files(self) -> list[tuple[FileRecord, str]]:
        return [(FileRecord.model_validate(o.data), o.owner) for o in await self.db.list(FILE_KIND)]

    async def delete_file(self, store_id: str, file_id: str) -> None:
        await self.db.delete(FILE_KIND, file_key(store_id, file_id))

    # page images of an ingestion under way (a killed run leaves them recorded here, not orphaned)
    async def note_page_image(self, store_id: str, file_id: str, image_id: str, owner: Owner) -> None:
        key = file_key(store_id, file_id)
        found = await self.db.get(PAGES_KIND, key)
        ids = list(found.data.get("ids", [])) if found else []
        ids.append(image_id)
        await self.db.put(PAGES_KIND, key, owner, {"ids": ids})

    async def pending_page_images(self, store_id: str, file_id: str) -> list[str]:
        found = await self.db.get(PAGES_KIND, file_key(store_id, file_id))
        return list(found.data.get("ids", [])) if found else []

    async def forget_page_images(self, store_id: str, file_id: str) -> None:
        await self.db.delete(PAGES_KIND, file_key(store_id, file_id))

    # batches
    async def put_batch(self, rec: BatchRecord, owner: Owner) -> None:
        await self.db.put(BATCH_KIND, rec.id, owner, rec.model_dump(mode="json"))

    async def get_batch(self, batch_id: str) -> BatchRecord | None:
        obj = await self.db.get(BATCH_KIND, batch_id)
        return BatchRecord.model_validate(obj.data) if obj else None

    async def delete_batches_of(self, store_id: str) -> None:
        for o in await self.db.list(BATCH_KIND):
            if o.data.get("vector_store_id") == store_id:
                await self.db.delete(BATCH_KIND, o.id)


def count_files(files: list[FileRecord]) -> FileCounts:
    counts = FileCounts(total=len(files))
    for f in files:
        setattr(counts, f.object.status, getattr(counts, f.object.status) + 1)
    return counts
