"""Files API wire models (OpenAI / Llama Stack 0.7 shapes)."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field


def new_file_id() -> str:
    """A fresh file id (OpenAI's ``file-`` prefix); internal callers may choose one before uploading."""
    return "file-" + uuid.uuid4().hex


class FilePurpose(StrEnum):
    """OpenAI's purposes; Llama Stack knows ``assistants`` and ``batch``, we also accept the rest.

    Rendered page images are stored with purpose ``vision``.
    """

    assistants = "assistants"
    batch = "batch"
    vision = "vision"
    user_data = "user_data"
    fine_tune = "fine-tune"
    evals = "evals"


class ExpiresAfter(BaseModel):
    anchor: Literal["created_at"] = "created_at"
    seconds: int = Field(ge=3600, le=2592000)


class FileObject(BaseModel):
    object: Literal["file"] = "file"
    id: str
    bytes: int
    created_at: int
    expires_at: int | None = None
    filename: str
    purpose: FilePurpose


class ListFilesResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[FileObject]
    has_more: bool = False
    first_id: str = ""
    last_id: str = ""


class FileDeleteResponse(BaseModel):
    id: str
    object: Literal["file"] = "file"
    deleted: bool = True
