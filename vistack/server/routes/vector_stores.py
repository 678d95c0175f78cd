"""``/v1/vector_stores`` (OpenAI shapes) and ``/v1/vector-io`` (Llama Stack chunks)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, Body, Depends, Query, Response

from vistack.api.vector_stores import (
    AttachFileRequest,
    CreateFileBatchRequest,
    CreateVectorStoreRequest,
    FileBatchObject,
    FileContentResponse,
    FileStatus,
    InsertChunksRequest,
    ListResponse,
    QueryChunksRequest,
    QueryChunksResponse,
    SearchRequest,
    SearchResponsePage,
    UpdateFileAttributesRequest,
    UpdateVectorStoreRequest,
    VectorStoreDeleteResponse,
    VectorStoreFileDeleteResponse,
    VectorStoreFileObject,
    VectorStoreObject,
)
from vistack.context import current_principal
from vistack.server.deps import get_vector_stores

if TYPE_CHECKING:  # the service (and its heavy imports) loads only when a distribution enables it
    from vistack.rag.vector_stores import VectorStoreService

router = APIRouter(prefix="/v1", tags=["Vector Stores"])
io_router = APIRouter(prefix="/v1", tags=["Vector IO"])

Limit = Annotated[int, Query(ge=1, le=100)]
OrderQ = Annotated[Literal["asc", "desc"], Query()]


Service = Annotated["VectorStoreService", Depends(get_vector_stores)]


@router.post("/vector_stores", response_model=VectorStoreObject, summary="Create a vector store.")
async def create_vector_store(body: CreateVectorStoreRequest, svc: Service) -> VectorStoreObject:
    return await svc.create_store(body, current_principal())


@router.get("/vector_stores", response_model=ListResponse, summary="List vector stores.")
async def list_vector_stores(svc: Service, limit: Limit = 20, order: OrderQ = "desc",
                             after: str | None = None, before: str | None = None) -> ListResponse:
    return await svc.list_stores(current_principal(), limit, order, after, before)


@router.get("/vector_stores/{vector_store_id}", response_model=VectorStoreObject, summary="Get a vector store.")
async def get_vector_store(vector_store_id: str, svc: Service) -> VectorStoreObject:
    return await svc.get_store(vector_store_id, current_principal())


@router.post("/vector_stores/{vector_store_id}", response_model=VectorStoreObject, summary="Update a vector store.")
async def update_vector_store(vector_store_id: str, body: UpdateVectorStoreRequest, svc: Service) -> VectorStoreObject:
    return await svc.update_store(vector_store_id, body, current_principal())


@router.delete("/vector_stores/{vector_store_id}", response_model=VectorStoreDeleteResponse, summary="Delete a vector store.")
async def delete_vector_store(vector_store_id: str, svc: Service) -> VectorStoreDeleteResponse:
    return await svc.delete_store(vector_store_id, current_principal())


@router.post("/vector_stores/{vector_store_id}/search", response_model=SearchResponsePage, summary="Search a vector store.")
async def search_vector_store(vector_store_id: str, body: SearchRequest, svc: Service) -> SearchResponsePage:
    return await svc.search(vector_store_id, body, current_principal())


@router.post("/vector_stores/{vector_store_id}/files", response_model=VectorStoreFileObject,
             summary="Attach a file (ingestion runs in the background).")
async def attach_file(vector_store_id: str, body: AttachFileRequest, svc: Service) -> VectorStoreFileObject:
    return await svc.attach_file(vector_store_id, body, current_principal())


@router.get("/vector_stores/{vector_store_id}/files", response_model=ListResponse, summary="List a store's files.")
async def list_files(vector_store_id: str, svc: Service, limit: Limit = 20, order: OrderQ = "desc",
                     after: str | None = None, before: str | None = None,
                     filter: Annotated[FileStatus | None, Query()] = None) -> ListResponse:
    return await svc.list_files(vector_store_id, current_principal(), limit, order, after, before, filter)


@router.get("/vector_stores/{vector_store_id}/files/{file_id}", response_model=VectorStoreFileObject,
            summary="Get an attached file.")
async def get_file(vector_store_id: str, file_id: str, svc: Service) -> VectorStoreFileObject:
    return await svc.get_file(vector_store_id, file_id, current_principal())


@router.get("/vector_stores/{vector_store_id}/files/{file_id}/content", response_model=FileContentResponse,
            summary="The stored chunks of an attached file.")
async def file_content(vector_store_id: str, file_id: str, svc: Service, include_embeddings: bool = False,
                       include_metadata: bool = False) -> FileContentResponse:
    return await svc.file_content(vector_store_id, file_id, current_principal(), include_embeddings, include_metadata)


@router.post("/vector_stores/{vector_store_id}/files/{file_id}", response_model=VectorStoreFileObject,
             summary="Update an attached file's attributes.")
async def update_file(vector_store_id: str, file_id: str, body: UpdateFileAttributesRequest,
                      svc: Service) -> VectorStoreFileObject:
    return await svc.update_file_attributes(vector_store_id, file_id, body.attributes, current_principal())


@router.delete("/vector_stores/{vector_store_id}/files/{file_id}", response_model=VectorStoreFileDeleteResponse,
               summary="Detach a file and delete its chunks.")
async def delete_file(vector_store_id: str, file_id: str, svc: Service) -> VectorStoreFileDeleteResponse:
    return await svc.delete_file(vector_store_id, file_id, current_principal())


@router.post("/vector_stores/{vector_store_id}/file_batches", response_model=FileBatchObject,
             summary="Attach several files at once.")
async def create_file_batch(vector_store_id: str, body: CreateFileBatchRequest, svc: Service) -> FileBatchObject:
    return await svc.create_batch(vector_store_id, body, current_principal())


@router.get("/vector_stores/{vector_store_id}/file_batches/{batch_id}", response_model=FileBatchObject,
            summary="Get a file batch.")
async def get_file_batch(vector_store_id: str, batch_id: str, svc: Service) -> FileBatchObject:
    return await svc.get_batch(vector_store_id, batch_id, current_principal())


@router.post("/vector_stores/{vector_store_id}/file_batches/{batch_id}/cancel", response_model=FileBatchObject,
             summary="Cancel a file batch.")
async def cancel_file_batch(vector_store_id: str, batch_id: str, svc: Service) -> FileBatchObject:
    return await svc.cancel_batch(vector_store_id, batch_id, current_principal())


@router.get("/vector_stores/{vector_store_id}/file_batches/{batch_id}/files", response_model=ListResponse,
            summary="List the files of a batch.")
async def list_batch_files(vector_store_id: str, batch_id: str, svc: Service, limit: Limit = 20,
                           order: OrderQ = "desc", after: str | None = None, before: str | None = None,
                           filter: Annotated[FileStatus | None, Query()] = None) -> ListResponse:
    await svc.get_batch(vector_store_id, batch_id, current_principal())
    return await svc.list_files(vector_store_id, current_principal(), limit, order, after, before, filter, batch_id)


@io_router.post("/vector-io/insert", status_code=204, summary="Insert chunks (with or without embeddings).")
async def insert_chunks(body: Annotated[InsertChunksRequest, Body()], svc: Service) -> Response:
    await svc.insert_chunks(body, current_principal())
    return Response(status_code=204)


@io_router.post("/vector-io/query", response_model=QueryChunksResponse, summary="Query chunks.")
async def query_chunks(body: QueryChunksRequest, svc: Service) -> QueryChunksResponse:
    return await svc.query_chunks(body, current_principal())
