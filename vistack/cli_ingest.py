"""``vistack ingest`` and ``vistack search``: against a server, or in-process.

In-process mode runs the distribution's ASGI app inside the CLI and talks to
it through ``httpx.ASGITransport``, so both modes share one code path.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from vistack.client import VistackAPIError, VistackClient
from vistack.client.paths import collect_paths, estimate_pages

POLL_S = 0.5

console = Console()

IN_PROCESS_URL = "http://vistack.inprocess"


@contextlib.asynccontextmanager
async def open_target(server: str | None, distribution: str | None) -> AsyncIterator[tuple[str, Any]]:
    """``(base_url, app)``: a server's URL (``app`` None), or the distribution's ASGI app run in-process.

    In-process, the app's lifespan runs around the block and clients reach the app
    through an ASGI transport (``VistackClient``: ``httpx.ASGITransport``; ``AsyncVistack(app=...)``
    builds the one its ``openai`` SDK needs), so both modes share one code path.
    """
    if server:
        yield server, None
        return
    from vistack.config import load_distribution
    from vistack.server.app import create_app

    app = create_app(load_distribution(distribution))
    async with app.router.lifespan_context(app):
        yield IN_PROCESS_URL, app


@contextlib.asynccontextmanager
async def open_client(server: str | None, distribution: str | None) -> AsyncIterator[VistackClient]:
    async with open_target(server, distribution) as (base_url, app), \
            VistackClient(base_url, transport=httpx.ASGITransport(app=app) if app else None) as client:
        yield client


async def ingest(paths: list[str], store_name: str, server: str | None, distribution: str | None,
                 timeout_s: float) -> int:
    files, skipped = collect_paths(paths)
    if not files and not skipped:
        console.print("[yellow]nothing to ingest[/yellow]")
        return 1
    async with open_client(server, distribution) as client:
        store = await client.find_vector_store(store_name) or await client.create_vector_store(store_name)
        pages = {p: estimate_pages(p) for p in files}
        rows: list[tuple[str, int, str, str]] = [(s, 0, "skipped", why) for s, why in skipped]
        uploaded: dict[str, Path] = {}
        with _progress() as progress:
            task = progress.add_task("uploading", total=sum(pages.values()) or 1)
            for path in files:
                try:
                    uploaded[(await client.upload_file(path))["id"]] = path
                except VistackAPIError as e:
                    rows.append((str(path), pages[path], "failed", f"upload: {e.message}"))
                    progress.advance(task, pages[path])
            progress.update(task, description="ingesting")
            if uploaded:
                await client.create_file_batch(store["id"], list(uploaded))
            remaining = dict(uploaded)
            deadline = time.monotonic() + timeout_s
            while remaining and time.monotonic() < deadline:
                await asyncio.sleep(POLL_S)
                for file_id, path in list(remaining.items()):
                    info = await client.get_vector_store_file(store["id"], file_id)
                    if info["status"] == "in_progress":
                        continue
                    error = (info.get("last_error") or {}).get("message", "")
                    rows.append((str(path), pages[path], info["status"], error))
                    progress.advance(task, pages[path])
                    del remaining[file_id]
            for path in remaining.values():
                rows.append((str(path), pages[path], "in_progress", f"still running after {timeout_s:.0f}s"))
    _summary(store, rows)
    return 0 if all(status == "completed" for _, _, status, _ in rows) else 1


def _progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("pages"), TimeElapsedColumn(), console=console)


def _summary(store: dict, rows: list[tuple[str, int, str, str]]) -> None:
    table = Table(title=f"vector store '{store.get('name')}' ({store['id']})")
    for col in ("file", "pages", "status", "reason"):
        table.add_column(col, justify="right" if col == "pages" else "left")
    colors = {"completed": "green", "failed": "red", "skipped": "yellow", "cancelled": "yellow"}
    for path, n, status, why in sorted(rows):
        table.add_row(path, str(n), f"[{colors.get(status, 'white')}]{status}[/]", why)
    console.print(table)
    done = sum(1 for r in rows if r[2] == "completed")
    console.print(f"{done} of {len(rows)} files ingested, {sum(r[1] for r in rows if r[2] == 'completed')} pages")


async def search(store_name: str, query: str, server: str | None, distribution: str | None, k: int, mode: str) -> int:
    async with open_client(server, distribution) as client:
        store = await client.find_vector_store(store_name)
        if store is None:
            console.print(f"[red]no vector store named '{store_name}'[/red]")
            return 1
        result = await client.search(store["id"], query, max_num_results=k, search_mode=mode)
    table = Table(title=f"'{query}' in {store_name} ({mode})")
    for col in ("#", "file", "page", "score", "snippet"):
        table.add_column(col)
    for i, hit in enumerate(result["data"], 1):
        attrs = hit.get("attributes") or {}
        page = attrs.get("page")
        text = " ".join(" ".join(c["text"] for c in hit["content"]).split())
        table.add_row(str(i), hit["filename"], str(int(page)) if page is not None else "",
                      f"{hit['score']:.4f}", text[:120] + ("…" if len(text) > 120 else ""))
    console.print(table)
    return 0
