"""``inline::localfs``: uploaded bytes on the local disk, metadata in the shared SQLite store.

Bytes live at ``<storage_dir>/<file_id>``: names on disk are generated ids
only, so nothing a client sends can choose a path. An upload streams into a
temporary file in the same directory while it is hashed (sha256) and
counted, then is renamed into place atomically; an upload over the cap, a
client that goes away or a failing disk leaves nothing behind. Metadata (the
public ``FileObject`` plus owner, hash and content type) is one ``"file"``
row in the :class:`~vistack.storage.MetadataStore`, so it survives a
restart. Expired files read as not found and are purged when next touched.
All disk work runs in worker threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import tempfile
import time
import unicodedata
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, ConfigDict, Field

from vistack.access import Action, Principal, require
from vistack.api import (
    BadRequestError,
    HealthResponse,
    HealthStatus,
    NotFoundError,
    PayloadTooLargeError,
)
from vistack.api.files import (
    ExpiresAfter,
    FileDeleteResponse,
    FileObject,
    FilePurpose,
    ListFilesResponse,
    new_file_id,
)
from vistack.api.protocols import FilesProvider, StoredFileInfo
from vistack.storage import owner_parts

log = logging.getLogger(__name__)

KIND = "file"
"""The MetadataStore kind of file records."""

UNLISTED_PURPOSES = frozenset({FilePurpose.vision.value})
"""Purposes a listing without ``purpose`` leaves out: ``vision`` files are the page images ingestion
renders (hundreds per store). ``GET /v1/files?purpose=vision`` lists them; their ids resolve as usual."""

FILE_ID_RE = re.compile(r"^file-[0-9a-f]{1,64}$")
READ_CHUNK_BYTES = 1024 * 1024
MAX_FILENAME_BYTES = 255
DEFAULT_FILENAME = "upload"
_TMP_PREFIX = ".upload-"
_TMP_SUFFIX = ".part"
_STALE_TMP_AGE_S = 3600.0
_CONTENT_TYPE_RE = re.compile(
    r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(\s*;\s*[A-Za-z0-9!#$&^_.+-]+=[A-Za-z0-9!#$&^_.+\"-]+)*$"
)


class LocalFSFilesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    storage_dir: str | None = Field(
        default=None, description="Directory for the bytes; default <storage.state_dir>/files"
    )
    max_file_bytes: int = Field(default=512 * 1024 * 1024, ge=1, description="Largest accepted upload, in bytes")
    ttl_secs: int | None = Field(
        default=None,
        ge=1,
        description="Default lifetime of a file when the upload names no expires_after; none: files never expire",
    )
    fsync: bool = Field(default=True, description="fsync each upload before it becomes visible (crash safety)")


def sanitize_filename(name: str | None) -> str:
    """A display name that is safe everywhere: no directories, no control characters, no ``..``.

    Keeps Unicode letters and digits plus ``.``, ``_`` and ``-`` (Llama Stack keeps
    only ASCII ones); everything else, spaces included, becomes ``_``. Directory
    parts (``/`` or ``\\``) are dropped, runs of dots become ``_``, leading dots
    and underscores from them are stripped, and the result is at most 255 UTF-8
    bytes with the extension kept. An empty result is ``"upload"``.
    """
    if not name:
        return DEFAULT_FILENAME
    text = unicodedata.normalize("NFC", str(name)).replace("\x00", "")
    text = text.replace("\\", "/").rsplit("/", 1)[-1]  # strip directories (POSIX and Windows)
    out = []
    for ch in text:
        if ch.isalnum() or ch in "._-":
            out.append(ch)
        elif unicodedata.category(ch)[0] == "C":  # control, format, surrogate, unassigned
            continue
        else:
            out.append("_")
    text = re.sub(r"\.{2,}", "_", "".join(out))
    text = text.lstrip(".")
    if not text.strip("._-"):
        return DEFAULT_FILENAME
    return _truncate_utf8(text, MAX_FILENAME_BYTES)


def _truncate_utf8(name: str, limit: int) -> str:
    if len(name.encode()) <= limit:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or len(ext.encode()) > 32:
        stem, ext = name, ""
    suffix = f".{ext}" if ext else ""
    budget = limit - len(suffix.encode())
    return stem.encode()[:budget].decode("utf-8", "ignore") + suffix


def _clean_content_type(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip()
    return value if len(value) <= 255 and _CONTENT_TYPE_RE.match(value) else None


def file_not_found(file_id: str) -> NotFoundError:
    return NotFoundError(
        f"File '{file_id}' not found. Use GET /v1/files (client.files.list()) to list available files.",
        code="file_not_found",
        param="file_id",
    )


class LocalFSFilesProvider(FilesProvider):
    """Files on the local disk; one metadata row per file in the stack's MetadataStore."""

    config: LocalFSFilesConfig

    def __init__(self, config: LocalFSFilesConfig, deps: dict | None = None) -> None:
        super().__init__(config, deps)
        self._dir: Path | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    @property
    def storage_dir(self) -> Path:
        if self._dir is None:
            if self.config.storage_dir:
                return Path(os.path.expanduser(self.config.storage_dir))
            if self.context is None:
                raise RuntimeError("LocalFSFilesProvider used before initialize(): no state dir")
            return self.context.state_dir / "files"
        return self._dir

    @property
    def _store(self) -> Any:
        if self.context is None or self.context.store is None:
            raise RuntimeError("LocalFSFilesProvider used before initialize(): no metadata store")
        return self.context.store

    async def initialize(self) -> None:
        directory = self.storage_dir
        await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
        self._dir = directory.resolve()
        removed = await asyncio.to_thread(self._remove_stale_temp_files)
        if removed:
            log.info("files: removed %d unfinished upload(s) from %s", removed, self._dir)
        orphans = await self._remove_orphans()
        if orphans:
            log.info("files: removed %d file(s) whose upload was never acknowledged (no metadata) from %s",
                     orphans, self._dir)
        await self._purge_expired()

    async def _remove_orphans(self) -> int:
        """Bytes renamed into place by an upload killed before its metadata row was written: never acknowledged,
        never visible, so removed (only old ones: another process may share the directory)."""
        known = {row.id for row in await self._store.list(KIND)}

        def sweep() -> int:
            count, now = 0, time.time()
            for entry in os.scandir(self.storage_dir):
                if FILE_ID_RE.match(entry.name) and entry.name not in known:
                    with contextlib.suppress(OSError):
                        if now - entry.stat().st_mtime > _STALE_TMP_AGE_S:
                            os.unlink(entry.path)
                            count += 1
            return count

        return await asyncio.to_thread(sweep)

    def _remove_stale_temp_files(self) -> int:
        count = 0
        now = time.time()
        for entry in os.scandir(self.storage_dir):
            if entry.name.startswith(_TMP_PREFIX) and entry.name.endswith(_TMP_SUFFIX):
                with contextlib.suppress(OSError):
                    # Another process sharing the directory may be mid-upload; only old ones go.
                    if now - entry.stat().st_mtime > _STALE_TMP_AGE_S:
                        os.unlink(entry.path)
                        count += 1
        return count

    async def health(self) -> HealthResponse:
        def probe() -> None:
            with tempfile.NamedTemporaryFile(dir=self.storage_dir, prefix=_TMP_PREFIX + "health-", suffix=_TMP_SUFFIX):
                pass

        try:
            await asyncio.to_thread(probe)
        except OSError as e:
            return HealthResponse(
                status=HealthStatus.ERROR, message=f"storage dir {self.storage_dir} is not writable: {e}"
            )
        return HealthResponse(status=HealthStatus.OK)

    # --- paths and records ---------------------------------------------------------------------

    def _path(self, file_id: str) -> Path:
        if not FILE_ID_RE.match(file_id):  # ids are the only names on disk; never build a path from anything else
            raise file_not_found(file_id)
        return self.storage_dir / file_id

    def _info(self, row: Any) -> StoredFileInfo:
        data = row.data
        return StoredFileInfo(
            file=FileObject.model_validate(data["file"]),
            owner=row.owner,
            tenant=row.tenant,
            sha256=data.get("sha256", ""),
            content_type=data.get("content_type"),
        )

    @staticmethod
    def _expired(row: Any, now: float) -> bool:
        expires_at = row.data.get("file", {}).get("expires_at")
        return expires_at is not None and now >= expires_at

    async def _remove(self, file_id: str) -> None:
        """Metadata first: a crash in between leaves unreferenced bytes (swept at startup), never a listed file
        whose bytes are gone."""
        path = self._path(file_id)
        await self._store.delete(KIND, file_id)
        await asyncio.to_thread(_unlink_quietly, path)

    async def _purge_expired(self) -> int:
        now = time.time()
        rows = await self._store.list(KIND)
        expired = [r for r in rows if self._expired(r, now) and self._ours(r)]
        for row in expired:
            await self._remove(row.id)
        return len(expired)

    def _ours(self, row: Any) -> bool:
        recorded = row.data.get("provider_id")
        return not recorded or recorded == self.provider_id

    async def _row(self, file_id: str, owner: Principal | None, *, check_bytes: bool = True,
                   action: Action = Action.read) -> Any:
        """The file's record when ``owner`` (the caller; None: internal, any owner) may ``action`` it, else 404."""
        path = self._path(file_id)
        row = await self._store.get(KIND, file_id)
        if row is None:
            raise file_not_found(file_id)
        if owner is not None:
            require(owner, action, row.resource("file"), file_not_found(file_id))
        if self._expired(row, time.time()):
            if self._ours(row):
                await self._remove(file_id)
            raise file_not_found(file_id)
        if check_bytes and not await asyncio.to_thread(path.is_file):
            if self._ours(row):
                await self._store.delete(KIND, file_id)
                note = "the stale record was removed"
            else:
                note = f"it belongs to files provider '{row.data.get('provider_id')}'"
            raise NotFoundError(
                f"File '{file_id}' not found: its metadata exists but its bytes are missing from {self.storage_dir} "
                f"({note}). Upload the file again.",
                code="file_content_missing",
                param="file_id",
            )
        return row

    # --- FilesProvider -------------------------------------------------------------------------

    async def create_file(
        self,
        *,
        filename: str,
        purpose: FilePurpose,
        chunks: AsyncIterator[bytes],
        owner: Principal,
        content_type: str | None = None,
        expires_after: ExpiresAfter | None = None,
        file_id: str | None = None,
    ) -> StoredFileInfo:
        try:
            purpose = FilePurpose(purpose)
        except ValueError:
            allowed = ", ".join(p.value for p in FilePurpose)
            raise BadRequestError(f"purpose must be one of: {allowed} (got {purpose!r})", param="purpose") from None
        if file_id is not None and (not FILE_ID_RE.match(file_id) or await self._store.get(KIND, file_id)):
            raise BadRequestError(f"file id '{file_id}' is malformed or taken", param="file_id")
        file_id = file_id or new_file_id()
        final = self._path(file_id)
        limit = self.config.max_file_bytes
        hasher = hashlib.sha256()
        size = 0
        handle: IO[bytes] | None = None
        tmp: Path | None = None
        try:
            handle, tmp = await asyncio.to_thread(self._open_temp)
            async for chunk in chunks:
                if not chunk:
                    continue
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLargeError(
                        f"file exceeds the maximum upload size of {limit} bytes ({_human(limit)}); "
                        "raise max_file_bytes in the files provider's config to accept larger files",
                        code="file_too_large",
                        param="file",
                    )
                await asyncio.to_thread(_write_and_hash, handle, hasher, chunk)
            await asyncio.to_thread(self._commit, handle, tmp, final)
            handle = None
            tmp = None
        finally:
            if handle is not None or tmp is not None:
                await asyncio.to_thread(_discard, handle, tmp)

        now = time.time()
        created_at = int(now)
        if expires_after is not None:
            expires_at: int | None = created_at + expires_after.seconds
        elif self.config.ttl_secs:
            expires_at = created_at + self.config.ttl_secs
        else:
            expires_at = None
        obj = FileObject(
            id=file_id,
            bytes=size,
            created_at=created_at,
            expires_at=expires_at,
            filename=sanitize_filename(filename),
            purpose=purpose,
        )
        data = {
            "file": obj.model_dump(mode="json"),
            "sha256": hasher.hexdigest(),
            "content_type": _clean_content_type(content_type),
            "provider_id": self.provider_id,
        }
        try:
            # The store's float timestamp orders uploads within one second; the cursor uses it.
            await asyncio.to_thread(self._store.put_sync, KIND, file_id, owner, data, created_at=now)
        except BaseException:
            await asyncio.to_thread(_unlink_quietly, final)
            raise
        owner_id, tenant = owner_parts(owner)
        return StoredFileInfo(file=obj, owner=owner_id, tenant=tenant, sha256=data["sha256"],
                              content_type=data["content_type"])

    def _open_temp(self) -> tuple[IO[bytes], Path]:
        fd, name = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=_TMP_SUFFIX, dir=self.storage_dir)
        return os.fdopen(fd, "wb"), Path(name)

    def _commit(self, handle: IO[bytes], tmp: Path, final: Path) -> None:
        try:
            handle.flush()
            if self.config.fsync:
                os.fsync(handle.fileno())
        finally:
            handle.close()
        os.replace(tmp, final)

    async def list_files(
        self,
        *,
        owner: Principal | None,
        purpose: FilePurpose | None = None,
        order: str = "desc",
        limit: int = 10000,
        after: str | None = None,
    ) -> ListFilesResponse:
        """One page of the owner's live files; without ``purpose``, files of UNLISTED_PURPOSES are left out.

        ``after`` is any file id of the owner's (a left-out one too): the page starts after it in ``order``.
        """
        if order not in ("asc", "desc"):
            raise BadRequestError(f"order must be 'asc' or 'desc' (got {order!r})", param="order")
        if limit < 1:
            raise BadRequestError(f"limit must be at least 1 (got {limit})", param="limit")
        rows = await self._store.list(KIND, owner)  # ordered by (created_at, id)
        now = time.time()
        cursor: tuple[float, str] | None = None
        if after is not None:
            match = next((r for r in rows if r.id == after), None)
            if match is None:
                raise BadRequestError(
                    f"after: file '{after}' not found; pass the id of a file from the previous page",
                    code="invalid_cursor",
                    param="after",
                )
            cursor = (match.created_at, match.id)
        live = []
        for row in rows:
            if self._expired(row, now):
                if self._ours(row):
                    await self._remove(row.id)
                continue
            live.append(row)
        if purpose is not None:
            purpose_value = FilePurpose(purpose).value
            live = [r for r in live if r.data.get("file", {}).get("purpose") == purpose_value]
        else:  # page images rendered by ingestion would bury the user's own uploads: listed only when asked for
            live = [r for r in live if r.data.get("file", {}).get("purpose") not in UNLISTED_PURPOSES]
        if order == "desc":
            live.reverse()
            if cursor is not None:
                live = [r for r in live if (r.created_at, r.id) < cursor]
        elif cursor is not None:
            live = [r for r in live if (r.created_at, r.id) > cursor]
        page = live[:limit]
        data = [FileObject.model_validate(r.data["file"]) for r in page]
        return ListFilesResponse(
            data=data,
            has_more=len(live) > limit,
            first_id=data[0].id if data else "",
            last_id=data[-1].id if data else "",
        )

    async def get_file(self, file_id: str, owner: Principal | None = None) -> StoredFileInfo:
        return self._info(await self._row(file_id, owner))

    async def iter_content(self, file_id: str, owner: Principal | None = None) -> AsyncIterator[bytes]:
        """Check the file, open it, and return an async iterator of its bytes.

        Await it first (``stream = await files.iter_content(id)``), then ``async for``
        over the result: errors such as an unknown id surface at the ``await``, before
        anything is streamed. The file is opened at the ``await``, so a concurrent
        delete does not cut a download short.
        """
        await self._row(file_id, owner)
        path = self._path(file_id)
        try:
            handle = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError:
            await self._store.delete(KIND, file_id)
            raise file_not_found(file_id) from None
        return _stream(handle)

    async def read_bytes(self, file_id: str, owner: Principal | None = None) -> bytes:
        await self._row(file_id, owner)
        try:
            return await asyncio.to_thread(self._path(file_id).read_bytes)
        except FileNotFoundError:
            await self._store.delete(KIND, file_id)
            raise file_not_found(file_id) from None

    async def local_path(self, file_id: str, owner: Principal | None = None) -> str | None:
        """The stored file itself (written once under its id, never modified), so ingestion reads pages from disk."""
        await self._row(file_id, owner)
        return str(self._path(file_id))

    async def delete_file(self, file_id: str, owner: Principal | None = None) -> FileDeleteResponse:
        await self._row(file_id, owner, check_bytes=False, action=Action.delete)
        await self._remove(file_id)
        return FileDeleteResponse(id=file_id, deleted=True)


async def _stream(handle: IO[bytes]) -> AsyncIterator[bytes]:
    try:
        while True:
            chunk = await asyncio.to_thread(handle.read, READ_CHUNK_BYTES)
            if not chunk:
                return
            yield chunk
    finally:
        await asyncio.to_thread(handle.close)


def _write_and_hash(handle: IO[bytes], hasher: Any, chunk: bytes) -> None:
    handle.write(chunk)
    hasher.update(chunk)


def _discard(handle: IO[bytes] | None, tmp: Path | None) -> None:
    if handle is not None:
        with contextlib.suppress(OSError):
            handle.close()
    if tmp is not None:
        _unlink_quietly(tmp)


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _human(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} bytes"


__all__ = [
    "KIND",
    "UNLISTED_PURPOSES",
    "LocalFSFilesConfig",
    "LocalFSFilesProvider",
    "file_not_found",
    "new_file_id",
    "sanitize_filename",
]
