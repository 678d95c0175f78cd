"""Plain-text and markdown documents, cut into "pages" at paragraph boundaries.

Text files have no pages, but chunks must never cross one and citations
name one: pages of about ``text_page_chars`` characters give both. Markdown
pipe tables become table blocks; a heading stays with what follows.
"""

from __future__ import annotations

import re

from .detect import decode_text
from .errors import EmptyDocumentError, TooManyPagesError, UnsupportedDocumentError, display_name
from .model import Block, ExtractOptions
from .normalize import normalize_text

_MD_HEADING = re.compile(r"(#{1,6}\s[^\n]*)(\n#{1,6}\s[^\n]*)*")
_MD_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")


def text_pages(data: bytes, filename: str, options: ExtractOptions) -> list[list[Block]]:
    """The blocks of each page; empty or overlong files raise a ``DocumentError``."""
    text = decode_text(data)
    if text is None:  # detect_kind said text; cannot happen, but never mis-read binary
        raise UnsupportedDocumentError(f"{display_name(filename)} is not a text file.", filename=filename)
    text = normalize_text(text.replace("\r\n", "\n").replace("\r", "\n"))
    paragraphs = _paragraph_blocks(text, options.text_page_chars)
    if not paragraphs:
        raise EmptyDocumentError(f"{display_name(filename)} contains no text.", filename=filename)
    pages: list[list[Block]] = [[]]
    size = 0
    for block in paragraphs:
        if pages[-1] and size + len(block.text) > options.text_page_chars:
            pages.append([])
            size = 0
        pages[-1].append(block)
        size += len(block.text) + 2
    if len(pages) > options.max_pages:
        raise TooManyPagesError(
            f"{display_name(filename)} is too long ({len(pages):,} pages of ~{options.text_page_chars:,} characters); "
            f"at most {options.max_pages:,} pages are accepted. Split it into smaller files.",
            filename=filename,
        )
    return pages


def _paragraph_blocks(text: str, max_chars: int) -> list[Block]:
    """Paragraphs (blank-line separated) as blocks; pipe tables as table blocks; long paragraphs split."""
    blocks: list[Block] = []
    zero = (0.0, 0.0, 0.0, 0.0)
    for para in re.split(r"\n[ \t]*\n", text):
        lines = para.split("\n")
        # Split the paragraph into runs of table lines and other lines.
        runs: list[tuple[bool, list[str]]] = []
        i = 0
        while i < len(lines):
            if lines[i].strip().startswith("|") and i + 1 < len(lines) and _MD_TABLE_SEPARATOR.match(lines[i + 1]):
                j = i + 2
                while j < len(lines) and lines[j].strip().startswith("|"):
                    j += 1
                runs.append((True, lines[i:j]))
                i = j
                continue
            if runs and not runs[-1][0]:
                runs[-1][1].append(lines[i])
            else:
                runs.append((False, [lines[i]]))
            i += 1
        for is_table, run in runs:
            chunk = "\n".join(line.rstrip() for line in run).strip("\n")
            if not chunk.strip():
                continue
            if is_table:
                blocks.append(Block(chunk.strip(), zero, "table"))
            else:
                blocks.extend(Block(piece, zero, "text") for piece in _split_long(chunk.strip(), max_chars))
    # A heading alone is no passage: keep it with what follows (same page, same chunk).
    merged: list[Block] = []
    for block in blocks:
        if merged and merged[-1].kind == "text" and _MD_HEADING.fullmatch(merged[-1].text) and block.kind == "text":
            merged[-1] = Block(f"{merged[-1].text}\n{block.text}", zero, "text")
        else:
            merged.append(block)
    return merged


def _split_long(text: str, max_chars: int) -> list[str]:
    """Split a paragraph longer than ``max_chars`` at line, then sentence, then word boundaries."""
    if len(text) <= max_chars:
        return [text]
    for pattern in (r"(?<=\n)", r"(?<=[.!?])\s+", r"\s+"):
        pieces = [p for p in re.split(pattern, text) if p.strip()]
        if len(pieces) > 1:
            out: list[str] = []
            current = ""
            for piece in pieces:
                candidate = f"{current} {piece}".strip() if pattern != r"(?<=\n)" else current + piece
                if current and len(candidate) > max_chars:
                    out.append(current.strip())
                    current = piece
                else:
                    current = candidate
            if current.strip():
                out.append(current.strip())
            return [p for piece in out for p in _split_long(piece, max_chars)]
    return [text[i : i + max_chars] for i in range(0, len(text), max_chars)]
