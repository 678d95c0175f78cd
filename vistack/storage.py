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
    """Opens its database on first use, so the stack can hand it to services before it starts."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    @property
    def _conn(self) -> sqlite3.Connection:
        """The connection; callers hold ``_lock`` (first use creates the file and schema)."""
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            self._db = conn
        return self._db

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

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

    def put_many_sync(self, kind: str, records: list[tuple[str, dict[str, Any]]], owner: str) -> None:
        """Insert several objects in one transaction, in order (each a microsecond after the last),
        so readers see all of them or none, and list order is insertion order."""
        base = time.time()
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                for i, (id, data) in enumerate(records):
                    conn.execute(
                        "INSERT OR REPLACE INTO objects (kind, id, owner, created_at, data) VALUES (?, ?, ?, ?, ?)",
                        (kind, id, owner, base + i * 1e-6, json.dumps(data, default=str)),
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def delete_prefix_sync(self, kind: str, id_prefix: str) -> int:
        with self._lock:
            cur = self._conn.execute(
                "DELETE FROM objects WHERE kind=? AND substr(id, 1, ?) = ?", (kind, len(id_prefix), id_prefix)
            )
        return cur.rowcount

    # --- async wrappers (never block the event loop on disk) --------------------------------

    async def put(self, kind: str, id: str, owner: str, data: dict[str, Any]) -> StoredObject:
        return await asyncio.to_thread(self.put_sync, kind, id, owner, data)

    async def get(self, kind: str, id: str) -> StoredObject | None:
        return await asyncio.to_thread(self.get_sync, kind, id)

    async def list(self, kind: str, owner: str | None = None, id_prefix: str | None = None) -> list[StoredObject]:
        return await asyncio.to_thread(self.list_sync, kind, owner, id_prefix)

    async def delete(self, kind: str, id: str) -> bool:
        return await asyncio.to_thread(self.delete_sync, kind, id)

    async def put_many(self, kind: str, records: list[tuple[str, dict[str, Any]]], owner: str) -> None:
        await asyncio.to_thread(self.put_many_sync, kind, records, owner)

    async def delete_prefix(self, kind: str, id_prefix: str) -> int:
        return await asyncio.to_thread(self.delete_prefix_sync, kind, id_prefix)


def _row(row: tuple) -> StoredObject:
    return StoredObject(kind=row[0], id=row[1], owner=row[2], created_at=row[3], data=json.loads(row[4]))
