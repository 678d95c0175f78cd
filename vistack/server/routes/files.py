"""``/v1/files``: upload, list, retrieve, download and delete (OpenAI / Llama Stack 0.7 shapes).

Route -> the distribution's files provider (the first one) -> disk. Every
lookup is scoped to the caller (``current_principal()``). Uploads are parsed
by hand from the multipart form so that ``expires_after`` is accepted in every
form clients send (the OpenAI SDK's ``expires_after[anchor]`` /
``expires_after[seconds]`` fields, a JSON string, or top-level ``anchor`` /
``seconds``), and so that a missing ``file`` or a bad ``purpose`` get a clear 400.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile

from vistack.api import BadRequestError
from vistack.api.files import ExpiresAfter, FileDeleteResponse, FileObject, FilePurpose, ListFilesResponse
from vistack.api.protocols import FilesProvider
from vistack.context import current_principal
from vistack.server.deps import get_files

router = APIRouter(prefix="/v1", tags=["Files"])

UPLOAD_CHUNK_BYTES = 1024 * 1024
MAX_LIST_LIMIT = 10000
_PURPOSES = ", ".join(p.value for p in FilePurpose)

_UPLOAD_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "purpose"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "The file to upload."},
                        "purpose": {"type": "string", "enum": [p.value for p in FilePurpose]},
                        "expires_after": {
                            "type": "string",
                            "description": 'Optional JSON {"anchor": "created_at", "seconds": 3600..2592000}; '
                            "the form fields expires_after[anchor] and expires_after[seconds] (as the OpenAI "
                            "SDK sends them) are accepted too.",
                        },
                    },
                }
            }
        },
    }
}


def files_provider(request: Request) -> FilesProvider:
    """The distribution's files provider; 404 naming the fix when there is none.

    404 rather than 503: a distribution without ``files`` is a configuration, not an
    outage (Llama Stack does not mount the routes at all, which is a 404 too), and
    clients such as the OpenAI SDK retry 503s in vain.
    """
    return get_files(request)


@router.post(
    "/files",
    response_model=FileObject,
    summary="Upload a file.",
    openapi_extra=_UPLOAD_SCHEMA,
)
async def create_file(request: Request) -> FileObject:
    provider = files_provider(request)
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise BadRequestError(
            "POST /v1/files expects a multipart/form-data body with a 'file' part and a 'purpose' field "
            f"(got content-type {content_type or 'none'!r})",
            param="file",
        )
    form = await request.form()
    try:
        upload = form.get("file")
        if upload is None:
            raise BadRequestError("missing required multipart field 'file' (the file to upload)", param="file")
        if not isinstance(upload, UploadFile):
            raise BadRequestError(
                "'file' must be a file part (multipart with a filename), not a plain form field", param="file"
            )
        purpose = _purpose(form.get("purpose"))
        expires_after = _expires_after(form)
        info = await provider.create_file(
            filename=upload.filename or "",
            purpose=purpose,
            chunks=_read_chunks(upload),
            owner=current_principal(),
            content_type=upload.content_type,
            expires_after=expires_after,
        )
    finally:
        await form.close()
    return info.file


@router.get("/files", response_model=ListFilesResponse, summary="List files.")
async def list_files(
    request: Request,
    after: Annotated[str | None, Query(description="A file id: the page starts after it")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT)] = MAX_LIST_LIMIT,
    order: Annotated[Literal["asc", "desc"], Query(description="By created_at")] = "desc",
    purpose: Annotated[
        FilePurpose | None,
        Query(description="Only files of this purpose. Without it, page images rendered by ingestion "
              "(purpose vision) are left out; ask with purpose=vision to list them."),
    ] = None,
) -> ListFilesResponse:
    return await files_provider(request).list_files(
        owner=current_principal(), purpose=purpose, order=order, limit=limit, after=after
    )


@router.get("/files/{file_id}", response_model=FileObject, summary="Retrieve a file's metadata.")
async def retrieve_file(request: Request, file_id: str) -> FileObject:
    return (await files_provider(request).get_file(file_id, owner=current_principal())).file


@router.get(
    "/files/{file_id}/content",
    summary="Download a file's bytes.",
    response_class=StreamingResponse,
    responses={200: {"description": "The exact uploaded bytes.", "content": {"application/octet-stream": {}}}},
)
async def file_content(request: Request, file_id: str) -> StreamingResponse:
    provider = files_provider(request)
    owner = current_principal()
    info = await provider.get_file(file_id, owner=owner)
    stream = await provider.iter_content(file_id, owner=owner)
    headers = {
        "Content-Disposition": content_disposition(info.file.filename),
        "Content-Length": str(info.file.bytes),
        "X-Content-Type-Options": "nosniff",
    }
    return StreamingResponse(stream, media_type=info.content_type or "application/octet-stream", headers=headers)


@router.delete("/files/{file_id}", response_model=FileDeleteResponse, summary="Delete a file.")
async def delete_file(request: Request, file_id: str) -> FileDeleteResponse:
    return await files_provider(request).delete_file(file_id, owner=current_principal())


# --- helpers ---------------------------------------------------------------------------------------


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback and the RFC 5987 UTF-8 name."""
    fallback = "".join(c if 32 < ord(c) < 127 and c not in '"\\;%' else "_" for c in filename) or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


async def _read_chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(UPLOAD_CHUNK_BYTES):
        yield chunk


def _purpose(raw: Any) -> FilePurpose:
    if raw is None or raw == "":
        raise BadRequestError(f"missing required form field 'purpose' (one of: {_PURPOSES})", param="purpose")
    if not isinstance(raw, str):
        raise BadRequestError(f"'purpose' must be a plain form field (one of: {_PURPOSES})", param="purpose")
    try:
        return FilePurpose(raw)
    except ValueError:
        raise BadRequestError(f"invalid purpose {raw!r}; expected one of: {_PURPOSES}", param="purpose") from None


def _expires_after(form: FormData) -> ExpiresAfter | None:
    """``expires_after`` in any of the forms clients send, or ``None``."""
    raw: Any = None
    if "expires_after[anchor]" in form or "expires_after[seconds]" in form:
        raw = {k: form.get(f"expires_after[{k}]") for k in ("anchor", "seconds") if f"expires_after[{k}]" in form}
    elif form.get("expires_after") not in (None, ""):
        value = form.get("expires_after")
        if not isinstance(value, str):
            raise BadRequestError("'expires_after' must be a form field", param="expires_after")
        try:
            raw = json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            raise BadRequestError(
                'expires_after must be JSON like {"anchor": "created_at", "seconds": 3600}, '
                f"or the fields expires_after[anchor] and expires_after[seconds] (got {value[:100]!r})",
                param="expires_after",
            ) from None
    elif "anchor" in form or "seconds" in form:
        raw = {k: form.get(k) for k in ("anchor", "seconds") if k in form}
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise BadRequestError("expires_after must be an object with 'anchor' and 'seconds'", param="expires_after")
    if "seconds" not in raw:
        raise BadRequestError("expires_after.seconds is required (3600..2592000)", param="expires_after.seconds")
    try:
        return ExpiresAfter.model_validate(raw)
    except ValidationError as e:
        problems = "; ".join(
            f"expires_after.{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}" for err in e.errors()
        )
        raise BadRequestError(
            f"invalid expires_after ({problems}); anchor must be 'created_at' and seconds between 3600 and 2592000",
            param="expires_after",
        ) from None
