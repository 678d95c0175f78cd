"""Tables on a PDF page, as markdown (PyMuPDF's ``page.find_tables()``).

Detection is best effort: a page whose tables cannot be read keeps its text.
Ruled tables are cheap to find; PyMuPDF's layout model (when installed) also
finds borderless ones at a much higher cost, so the strategy is an option.
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
        # Ruled tables are made of vector lines/rectangles; a page without any cannot have one.
        # get_cdrawings() is ~0.2 ms; find_tables() is ~30 ms even when it finds nothing.
        if not page.get_cdrawings():
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
            markdown = _table_markdown(table)
        except Exception as e:  # noqa: BLE001 - skip this table, keep the page
            logger.warning("table on page %d could not be converted: %s", page.number + 1, short_reason(e))
            continue
        if not re.search(r"\w", markdown.replace("---", "")):
            continue
        tables.append((pymupdf.Rect(table.bbox), markdown))
    return tables


def _table_markdown(table: pymupdf.table.Table) -> str:
    """``Table.to_markdown()``, with the header row re-read cell by cell.

    PyMuPDF builds the header line from ``Table.header.names``, which loses
    spaces in some fonts ("Unit price" -> "Unitprice") while the body rows,
    read with ``extract_cells``, keep them. Reading the header cells the same
    way as the body fixes that.
    """
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
