"""Tables on a PDF page, as markdown (PyMuPDF's ``page.find_tables()``).

Detection is best effort: a page whose tables cannot be read keeps its text.
Ruled tables are looked for only on pages whose drawings have both horizontal
and vertical segments (:func:`has_rulings`, a millisecond), since
``find_tables()`` costs 30-500 ms a page even when it finds nothing.
PyMuPDF's layout model (when installed) also finds borderless tables, at a
much higher cost, so the strategy is an option.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import logging
import os
import re

import pymupdf

from .errors import short_reason
from .model import TableStrategy
from .normalize import normalize_text

logger = logging.getLogger(__name__)

# PyMuPDF 2.x prints an advert for its layout package when find_tables runs without it.
os.environ.setdefault("PYMUPDF_SUGGEST_LAYOUT_ANALYZER", "0")


@functools.cache
def _find_tables_kwargs() -> tuple[dict, dict]:
    """(kwargs for 'lines', kwargs for 'layout'), adapted to the installed PyMuPDF."""
    try:
        from pymupdf import table as table_module

        params = inspect.signature(table_module.find_tables).parameters
    except Exception:  # noqa: BLE001 - unknown PyMuPDF: call find_tables() without options
        params = {}
    if "use_layout" not in params:  # PyMuPDF < 2: line-based only
        return {}, {}
    has_layout = importlib.util.find_spec("pymupdf.layout") is not None
    if not has_layout:
        logger.info("PyMuPDF's layout analyzer is not installed; tables='layout' falls back to ruled tables")
    return {"use_layout": False}, {"use_layout": has_layout}


def find_tables(page: pymupdf.Page, strategy: TableStrategy) -> list[tuple[pymupdf.Rect, str]]:
    """``(bbox, markdown)`` of each real table (2+ rows and columns) on the page, unrotated coordinates."""
    lines_kwargs, layout_kwargs = _find_tables_kwargs()
    if strategy == "lines" or not layout_kwargs.get("use_layout"):
        # Ruled tables are made of horizontal and vertical vector lines; a page without both cannot have one.
        # The check is ~1-2 ms; find_tables() is 30-500 ms a page even when it finds nothing.
        if not has_rulings(page):
            return []
        kwargs = lines_kwargs
    else:
        kwargs = layout_kwargs
    try:
        found = page.find_tables(**kwargs)
    except Exception as e:  # noqa: BLE001 - table detection is best effort: the text is still extracted
        logger.warning("table detection failed on page %d: %s", page.number + 1, short_reason(e))
        return []
    if found is None:  # PyMuPDF reports internal errors by returning None
        return []
    tables = []
    for table in found.tables:
        if table.row_count < 2 or table.col_count < 2:
            continue  # a framed paragraph, not a table
        try:
            markdown = normalize_text(_table_markdown(table))
        except Exception as e:  # noqa: BLE001 - skip this table, keep the page
            logger.warning("table on page %d could not be converted: %s", page.number + 1, short_reason(e))
            continue
        if not re.search(r"\w", markdown.replace("---", "")):
            continue
        tables.append((pymupdf.Rect(table.bbox), markdown))
    return tables


RULE_THICKNESS = 2.0
"""A filled rectangle at most this thick (points) is a rule (LaTeX draws booktabs rules that way), not a box."""


def ruling_counts(page: pymupdf.Page) -> tuple[int, int]:
    """(horizontal, vertical) straight segments among the page's vector drawings.

    Lines count when axis-parallel; a thin filled rectangle is a rule in its
    long direction; any other rectangle or quad contributes its two horizontal
    and two vertical edges. Curves and slanted lines count for nothing. Reads
    MuPDF's compact drawing list (``get_cdrawings``), not the Python objects
    ``find_tables`` builds.
    """
    horizontal = vertical = 0
    for path in page.get_cdrawings():
        for item in path.get("items", ()):
            kind = item[0]
            if kind == "l":
                (x0, y0), (x1, y1) = item[1], item[2]
                dx, dy = abs(x1 - x0), abs(y1 - y0)
                if dy <= 1 and dx > 1:
                    horizontal += 1
                elif dx <= 1 and dy > 1:
                    vertical += 1
            elif kind == "re":
                x0, y0, x1, y1 = item[1]
                width, height = abs(x1 - x0), abs(y1 - y0)
                if height <= RULE_THICKNESS < width:
                    horizontal += 1
                elif width <= RULE_THICKNESS < height:
                    vertical += 1
                elif width > RULE_THICKNESS and height > RULE_THICKNESS:
                    horizontal += 2
                    vertical += 2
            elif kind == "qu":
                horizontal += 2
                vertical += 2
    return horizontal, vertical


def has_rulings(page: pymupdf.Page) -> bool:
    """Whether the page has both horizontal and vertical segments: what a ruled table is made of.

    On the benchmark corpus (387 pages, 245 with drawings) this skips 132 pages with drawings
    and keeps every one of the 75 tables ``find_tables`` finds on all pages.
    """
    horizontal, vertical = ruling_counts(page)
    return horizontal >= 1 and vertical >= 1


class _RawDictOnce:
    """A table's text page whose ``extractRAWDICT()`` runs once, not once per cell.

    PyMuPDF's ``extract_cells`` (used by ``Table.to_markdown`` for every cell)
    calls ``textpage.extractRAWDICT()`` each time, rebuilding the whole page's
    character dictionary: on the benchmark corpus that was 65% of all table
    time (2,193 cells, ~4 ms each). ``extract_cells`` only reads the dictionary,
    so sharing one gives the same text.
    """

    def __init__(self, textpage: pymupdf.TextPage) -> None:
        self._textpage = textpage
        self._rawdict: dict | None = None

    def extractRAWDICT(self) -> dict:  # PyMuPDF's name
        if self._rawdict is None:
            self._rawdict = self._textpage.extractRAWDICT()
        return self._rawdict


def _table_markdown(table: pymupdf.table.Table) -> str:
    """``Table.to_markdown()``, with the header row re-read cell by cell.

    PyMuPDF builds the header line from ``Table.header.names``, which loses
    spaces in some fonts ("Unit price" -> "Unitprice") while the body rows,
    read with ``extract_cells``, keep them. Reading the header cells the same
    way as the body fixes that. The page's character dictionary is built once
    for all cells (:class:`_RawDictOnce`).
    """
    textpage = table.textpage
    if textpage is None:
        return _markdown_with_header(table)
    table.textpage = _RawDictOnce(textpage)
    try:
        return _markdown_with_header(table)
    finally:
        table.textpage = textpage


def _markdown_with_header(table: pymupdf.table.Table) -> str:
    markdown = table.to_markdown().strip()
    if table.header.external:
        return markdown
    try:
        from pymupdf.table import extract_cells

        names = [
            " ".join((extract_cells(table.textpage, cell, markdown=False) or "").split()) if cell else ""
            for cell in table.rows[0].cells
        ]
    except Exception:  # noqa: BLE001 - keep PyMuPDF's own header
        return markdown
    fallback = table.header.names
    names = [
        name or (fallback[i] if i < len(fallback) and fallback[i] else f"Col{i + 1}") for i, name in enumerate(names)
    ]
    lines = markdown.split("\n")
    lines[0] = "|" + "|".join(names) + "|"
    return "\n".join(lines)
