"""Shared page layout: text lines -> blocks in reading order, with bounding boxes.

A native PDF text layer and OCR output come as the same PyMuPDF text dict,
so one code path turns both into :class:`~.model.Block` objects: lines are
grouped by the block they came from, joined back into running text, tables
slotted in by position, and boxes mapped to the displayed (rotated) page.
"""

from __future__ import annotations

import re

import pymupdf

from .model import Block, BlockKind
from .normalize import normalize_text


def center(rect: pymupdf.Rect) -> pymupdf.Point:
    """Where a line "is" when deciding whether a table or native text already covers it."""
    return pymupdf.Point((rect.x0 + rect.x1) / 2, (rect.y0 + rect.y1) / 2)


def merge_by_position(first: list[Block], second: list[Block]) -> list[Block]:
    """Insert each block of ``second`` before the first block of ``first`` that starts below it."""
    out = list(first)
    for block in second:
        pos = next((i for i, b in enumerate(out) if b.bbox[1] >= block.bbox[1] and b.kind != "ocr"), None)
        out.insert(len(out) if pos is None else pos, block)
    return out


# A "line" is (block number, bbox, text) in unrotated page coordinates.
Line = tuple[int, pymupdf.Rect, str]


def dict_lines(textdict: dict) -> list[Line]:
    """The non-empty text lines of a PyMuPDF text dict (a native text layer or OCR output alike)."""
    out: list[Line] = []
    for bno, block in enumerate(textdict.get("blocks", ())):
        if block.get("type", 0) != 0:
            continue
        for line in block.get("lines", ()):
            text = _clean_line("".join(span.get("text", "") for span in line.get("spans", ())))
            if text:
                out.append((bno, pymupdf.Rect(line["bbox"]), text))
    return out


def assemble_blocks(
    lines: list[Line], tables: list[tuple[pymupdf.Rect, str]], to_display: pymupdf.Matrix, kind: BlockKind
) -> list[Block]:
    """Group lines back into blocks (minus lines inside a table), then slot tables into reading order."""
    table_rects = [r + (-1, -1, 1, 1) for r, _ in tables]
    grouped: list[tuple[pymupdf.Rect, list[str]]] = []
    last_bno = None
    for bno, bbox, text in lines:
        if any(center(bbox) in tr for tr in table_rects):
            last_bno = None  # text after a table starts a new block
            continue
        if bno != last_bno or not grouped:
            grouped.append((pymupdf.Rect(bbox), [text]))
        else:
            grouped[-1][0].include_rect(bbox)
            grouped[-1][1].append(text)
        last_bno = bno
    blocks = [
        (pymupdf.Rect(rect) * to_display, Block(_join_lines(texts), (0, 0, 0, 0), kind)) for rect, texts in grouped
    ]
    for trect, markdown in tables:
        drect = pymupdf.Rect(trect) * to_display
        pos = next((i for i, (r, _) in enumerate(blocks) if r.y0 >= drect.y0 - 1), len(blocks))
        blocks.insert(pos, (drect, Block(markdown, (0, 0, 0, 0), "table")))
    return [Block(b.text, _bbox(r), b.kind) for r, b in blocks]


_WS = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
_LIST_START = re.compile(r"^([\u2022\u00b7\u25aa\u25cf\u2023\u2043\u2219*•◦▪-]\s|\(?\d{1,3}[.)]\s|[a-z][.)]\s)")


def _clean_line(text: str) -> str:
    return _WS.sub(" ", normalize_text(text)).strip()


def _join_lines(lines: list[str]) -> str:
    """Visual lines back to running text; list items keep their own line; ``infor-`` + ``mation`` joins."""
    out = ""
    for line in lines:
        if not out:
            out = line
        elif _LIST_START.match(line):
            out += "\n" + line
        elif out.endswith("-") and len(out) > 1 and out[-2].isalpha() and line[:1].islower():
            out += line
        else:
            out += " " + line
    return out


def is_usable_text(text: str) -> bool:
    """Whether a page's text layer says anything (else the page needs OCR)."""
    visible = [ch for ch in text if not ch.isspace()]
    if not visible:
        return False
    # Text drawn with fonts lacking a Unicode map comes out as U+FFFD: that is no usable text layer.
    return sum(ch == "\ufffd" for ch in visible) <= len(visible) // 2


def _bbox(rect: pymupdf.Rect) -> tuple[float, float, float, float]:
    return (round(rect.x0, 2), round(rect.y0, 2), round(rect.x1, 2), round(rect.y1, 2))
