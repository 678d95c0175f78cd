"""Which local files an ingest sends, and how many pages each counts for in progress reports.

Shared by :meth:`vistack.client.AsyncVistack.ingest` and ``vistack ingest``.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

SUPPORTED = {".pdf", ".png", ".jpg", ".jpeg", ".txt", ".md", ".markdown"}


def collect_paths(paths: list[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files to ingest (directories recursively), and the paths skipped with why."""
    found: list[Path] = []
    skipped: list[tuple[str, str]] = []
    for raw in paths:
        p = Path(raw).expanduser()
        if p.is_dir():
            for child in sorted(p.rglob("*")):
                if child.is_file() and child.suffix.lower() in SUPPORTED:
                    found.append(child)
        elif p.is_file():
            if p.suffix.lower() in SUPPORTED:
                found.append(p)
            else:
                skipped.append((str(p), f"unsupported type '{p.suffix or 'no extension'}'"))
        else:
            skipped.append((str(p), "no such file or directory"))
    return list(dict.fromkeys(found)), skipped


def estimate_pages(path: Path) -> int:
    """Pages for the progress bar (the server counts for real)."""
    if path.suffix.lower() == ".pdf":
        try:
            import pymupdf

            with pymupdf.open(path) as doc:
                return max(doc.page_count, 1)
        except (RuntimeError, ValueError, OSError):  # a broken file still counts as one unit of progress
            return 1
    if path.suffix.lower() in (".txt", ".md", ".markdown"):
        return max(1, -(-path.stat().st_size // 3000))
    return 1


def content_type(path: Path) -> str:
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"
