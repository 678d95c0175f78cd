"""SQLite metadata store for every stored object, each with its owner.

One table keyed by (kind, id) holds JSON documents plus the owning
principal, so files, vector stores, responses, conversations and registered
models all record ownership from day one and later isolation needs no
migration. Calls run in a worker thread; one connection, serialized by a lock
(SQLite in WAL mode is fast enough for metadata and keeps things simple).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    owner TEXT NOT NULL,
    created_at REAL NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX IF NOT EXISTS objects_kind_owner ON objects (kind, owner, created_at);
"""


@dataclass(frozen=True)
class StoredObject:
    kind: str
    id: str
    owner: str
    created_at: float
    data: dict[str, Any]


class MetadataStore:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # --- synchronous core -------------------------------------------------------------------

    def put_sync(self, kind: str, id: str, owner: str, data: dict[str, Any], created_at: float | None = None) -> StoredObject:
        created = time.time() if created_at is None else created_at
        payload = json.dumps(data, default=str)
        with self._lock:
            row = self._conn.execute("SELECT created_at FROM objects WHERE kind=? AND id=?", (kind, id)).fetchone()
            if row is not None and created_at is None:
                created = row[0]
            self._conn.execute(
                "INSERT OR REPLACE INTO objects (kind, id, owner, created_at, data) VALUES (?, ?, ?, ?, ?)",
                (kind, id, owner, created, payload),
            )
        return StoredObject(kind, id, owner, created, data)

    def get_sync(self, kind: str, id: str) -> StoredObject | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT kind, id, owner, created_at, data FROM objects WHERE kind=? AND id=?", (kind, id)
            ).fetchone()
        return _row(row) if row else None

    def list_sync(self, kind: str, owner: str | None = None, id_prefix: str | None = None) -> list[StoredObject]:
        query = "SELECT kind, id, owner, created_at, data FROM objects WHERE kind=?"
        args: tuple[Any, ...] = (kind,)
        if id_prefix is not None:
            query += " AND substr(id, 1, ?) = ?"
            args += (len(id_prefix), id_prefix)
        if owner is not None:
            query += " AND owner=?"
            args += (owner,)
        with self._lock:
            rows = self._conn.execute(query + " ORDER BY created_at, id", args).fetchall()
        return [_row(r) for r in rows]

    def delete_sync(self, kind: str, id: str) -> bool:
        with self._lock:
            cur = self._conn.execute("DELETE FROM objects WHERE kind=? AND id=?", (kind, id))
        return cur.rowcount > 0

    # --- async wrappers (never block the event loop on disk) --------------------------------

    async def put(self, kind: str, id: str, owner: str, data: dict[str, Any]) -> StoredObject:
        return await asyncio.to_thread(self.put_sync, kind, id, owner, data)

    async def get(self, kind: str, id: str) -> StoredObject | None:
        return await asyncio.to_thread(self.get_sync, kind, id)

    async def list(self, kind: str, owner: str | None = None, id_prefix: str | None = None) -> list[StoredObject]:
        return await asyncio.to_thread(self.list_sync, kind, owner, id_prefix)

    async def delete(self, kind: str, id: str) -> bool:
        return await asyncio.to_thread(self.delete_sync, kind, id)


def _row(row: tuple) -> StoredObject:
    return StoredObject(kind=row[0], id=row[1], owner=row[2], created_at=row[3], data=json.loads(row[4]))
