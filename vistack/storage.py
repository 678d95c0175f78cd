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

from vistack import access
from vistack.access import DEFAULT_TENANT, SHARED_TENANT, Action, Principal, Resource, owner_principal

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    owner TEXT NOT NULL,
    created_at REAL NOT NULL,
    data TEXT NOT NULL,
    tenant TEXT NOT NULL DEFAULT 'default',
    PRIMARY KEY (kind, id)
);
CREATE INDEX IF NOT EXISTS objects_kind_owner ON objects (kind, owner, created_at);
"""
# State directories from before tenants: every object joins the default tenant (the one anonymous callers and
# API keys without a tenant use), so nothing becomes unreachable when auth is turned on.
_MIGRATIONS = (
    ("tenant", "ALTER TABLE objects ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default'"),
)
_INDEXES = "CREATE INDEX IF NOT EXISTS objects_kind_tenant ON objects (kind, tenant, created_at);"
_COLUMNS = "kind, id, owner, created_at, data, tenant"

Owner = Principal | str
Row = tuple[str, str, "Owner", dict[str, Any]]
"""(kind, id, owner, data) of one object written by ``put_rows``."""
"""Who owns a new object: a principal (its id and tenant are stored), or a plain id in the default tenant."""


def owner_parts(owner: Owner) -> tuple[str, str]:
    """(owner id, tenant) of a new object's owner."""
    if isinstance(owner, Principal):
        return owner.id, owner.tenant
    return owner, DEFAULT_TENANT


@dataclass(frozen=True)
class StoredObject:
    kind: str
    id: str
    owner: str
    created_at: float
    data: dict[str, Any]
    tenant: str = DEFAULT_TENANT

    @property
    def owner_principal(self) -> Principal:
        """The principal that owns this object (what a resumed background job acts as)."""
        return owner_principal(self.owner, self.tenant)

    def resource(self, type_: str | None = None) -> Resource:
        return Resource(type_ or self.kind, self.id, self.owner, self.tenant)


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
            columns = {r[1] for r in conn.execute("PRAGMA table_info(objects)")}
            for column, ddl in _MIGRATIONS:
                if column not in columns:
                    conn.execute(ddl)
            conn.executescript(_INDEXES)
            self._db = conn
        return self._db

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # --- synchronous core -------------------------------------------------------------------

    def put_sync(self, kind: str, id: str, owner: Owner, data: dict[str, Any],
                 created_at: float | None = None) -> StoredObject:
        """Insert or replace; a replaced object keeps its owner and tenant, and its creation time unless given."""
        owner_id, tenant = owner_parts(owner)
        created = time.time() if created_at is None else created_at
        payload = json.dumps(data, default=str)
        with self._lock:
            row = self._conn.execute("SELECT created_at, owner, tenant FROM objects WHERE kind=? AND id=?",
                                     (kind, id)).fetchone()
            if row is not None:  # an update never moves an object to another owner or tenant
                created = row[0] if created_at is None else created
                owner_id, tenant = row[1], row[2]
            self._conn.execute(
                f"INSERT OR REPLACE INTO objects ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                (kind, id, owner_id, created, payload, tenant),
            )
        return StoredObject(kind, id, owner_id, created, data, tenant)

    def get_sync(self, kind: str, id: str) -> StoredObject | None:
        with self._lock:
            row = self._conn.execute(f"SELECT {_COLUMNS} FROM objects WHERE kind=? AND id=?", (kind, id)).fetchone()
        return _row(row) if row else None

    def list_sync(self, kind: str, owner: Principal | str | None = None,
                  id_prefix: str | None = None) -> list[StoredObject]:
        """Objects of ``kind`` in creation order: all (``owner`` None), those a principal may read, or those
        owned by a plain owner id."""
        query = f"SELECT {_COLUMNS} FROM objects WHERE kind=?"
        args: tuple[Any, ...] = (kind,)
        if id_prefix is not None:
            query += " AND substr(id, 1, ?) = ?"
            args += (len(id_prefix), id_prefix)
        if isinstance(owner, str):  # a plain owner id: exactly that owner's objects
            query += " AND owner=?"
            args += (owner,)
        elif isinstance(owner, Principal) and not owner.is_admin and not access.has_rules():
            query += " AND tenant IN (?, ?)"  # the default rule, in SQL; rules are checked per object below
            args += (owner.tenant, SHARED_TENANT)
        with self._lock:
            rows = self._conn.execute(query + " ORDER BY created_at, id", args).fetchall()
        found = [_row(r) for r in rows]
        if isinstance(owner, Principal):
            found = [o for o in found if access.allows(owner, Action.read, o.resource())]
        return found

    def delete_sync(self, kind: str, id: str) -> bool:
        with self._lock:
            cur = self._conn.execute("DELETE FROM objects WHERE kind=? AND id=?", (kind, id))
        return cur.rowcount > 0

    def put_many_sync(self, kind: str, records: list[tuple[str, dict[str, Any]]], owner: Owner) -> None:
        """Insert several objects in one transaction, in order (each a microsecond after the last),
        so readers see all of them or none, and list order is insertion order."""
        base = time.time()
        owner_id, tenant = owner_parts(owner)
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                for i, (id, data) in enumerate(records):
                    conn.execute(
                        f"INSERT OR REPLACE INTO objects ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                        (kind, id, owner_id, base + i * 1e-6, json.dumps(data, default=str), tenant),
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def put_rows_sync(self, rows: list[Row]) -> None:
        """Insert or replace objects of any kinds in one transaction (all visible, or none after a crash); a
        replaced object keeps its owner, tenant and creation time, like ``put``."""
        base = time.time()
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                for i, (kind, id, owner, data) in enumerate(rows):
                    owner_id, tenant = owner_parts(owner)
                    created = base + i * 1e-6
                    old = conn.execute("SELECT created_at, owner, tenant FROM objects WHERE kind=? AND id=?",
                                       (kind, id)).fetchone()
                    if old is not None:
                        created, owner_id, tenant = old
                    conn.execute(f"INSERT OR REPLACE INTO objects ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                                 (kind, id, owner_id, created, json.dumps(data, default=str), tenant))
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

    async def put(self, kind: str, id: str, owner: Owner, data: dict[str, Any]) -> StoredObject:
        return await asyncio.to_thread(self.put_sync, kind, id, owner, data)

    async def get(self, kind: str, id: str) -> StoredObject | None:
        return await asyncio.to_thread(self.get_sync, kind, id)

    async def list(self, kind: str, owner: Principal | str | None = None,
                   id_prefix: str | None = None) -> list[StoredObject]:
        return await asyncio.to_thread(self.list_sync, kind, owner, id_prefix)

    async def delete(self, kind: str, id: str) -> bool:
        return await asyncio.to_thread(self.delete_sync, kind, id)

    async def put_many(self, kind: str, records: list[tuple[str, dict[str, Any]]], owner: Owner) -> None:
        await asyncio.to_thread(self.put_many_sync, kind, records, owner)

    async def put_rows(self, rows: list[Row]) -> None:
        await asyncio.to_thread(self.put_rows_sync, rows)

    async def delete_prefix(self, kind: str, id_prefix: str) -> int:
        return await asyncio.to_thread(self.delete_prefix_sync, kind, id_prefix)


def _row(row: tuple) -> StoredObject:
    return StoredObject(kind=row[0], id=row[1], owner=row[2], created_at=row[3], data=json.loads(row[4]),
                        tenant=row[5])
