"""How much drawing work a PDF page asks for, bounded before MuPDF does any of it.

Two small files can keep MuPDF busy for hours, holding the one MuPDF lock
while every other ingestion waits:

* a decompression bomb: a content stream of ~1 MB of deflate that inflates
  to hundreds of MB of drawing operators (``0 0 m`` ... : ~50 ms per MiB per
  pass, and a page is read in several passes);
* an expansion bomb ("billion laughs"): form XObject A draws form B ten
  times, B draws C ten times, ... nine levels are 10^9 draws from 2 KB.

:func:`check_page_content` walks the page's content streams, the form
XObjects they draw (recursively, each counted once per time it is drawn)
and the annotations' appearance streams, decoding each at most once and
never beyond the budget, and raises :class:`ImageTooLargeError` when the
*expanded* size passes ``ExtractOptions.max_content_bytes``. Business
documents use a few hundred KB at most; a CAD drawing with thousands of
symbols a few MB.
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from collections import Counter

import pymupdf

from .errors import ImageTooLargeError, display_name

DRAW_COST = 512
"""What drawing one XObject costs on top of its content, in content bytes (MuPDF's per-form set-up is
~10 us, as much as ~300 bytes of path operators)."""

_NAME = rb"[^\s/<>\[\]()%{}]+"
_DO = re.compile(rb"/(" + _NAME + rb")\s*Do(?![^\s/<>\[\]()%{}])")
_REF = re.compile(r"/([^\s/<>\[\]()]+)\s*(\d+)\s+\d+\s+R")
_FILTER = re.compile(r"/([A-Za-z0-9]+)")
_FLATE = {"FlateDecode", "Fl"}
_ASCII85 = {"ASCII85Decode", "A85"}
_ASCIIHEX = {"ASCIIHexDecode", "AHx"}
_MAX_PARENTS = 64


class _OverBudget(Exception):
    pass


def check_page_content(page: pymupdf.Page, filename: str, budget: int) -> int:
    """The page's expanded content size in bytes; ``ImageTooLargeError`` when it is over ``budget``."""
    walker = _Walker(page.parent, budget)
    try:
        page_names = _page_xobjects(page.parent, page.xref)
        for xref in page.get_contents():
            walker.add(walker.stream_cost(xref, page_names, frozenset()))
        for xref in _appearance_streams(page):
            walker.add(walker.stream_cost(xref, page_names, frozenset()))
    except _OverBudget:
        raise ImageTooLargeError(
            f"{display_name(filename)}: page {page.number + 1} is too complex to process safely: its drawing "
            f"instructions, decompressed and with every embedded form counted each time it is drawn, exceed "
            f"{budget:,} bytes (a decompression bomb, or a damaged file). Re-export the PDF (for example, print "
            "it to PDF) and upload it again.",
            filename=filename,
        ) from None
    return walker.total


class _Walker:
    def __init__(self, doc: pymupdf.Document, budget: int) -> None:
        self.doc = doc
        self.budget = budget
        self.total = 0
        self._costs: dict[int, int] = {}

    def add(self, cost: int) -> None:
        self.total += cost
        if self.total > self.budget:
            raise _OverBudget

    def stream_cost(self, xref: int, names: dict[str, int], drawing: frozenset[int]) -> int:
        """Decoded size of stream ``xref`` plus what the XObjects it draws cost, each time drawn."""
        if xref in self._costs:
            return self._costs[xref]
        if xref in drawing:  # a form that draws itself: MuPDF stops the recursion, so do we
            return 0
        data = _decoded(self.doc, xref, self.budget - self.total)
        if data is None:
            raise _OverBudget
        cost = len(data)
        own = _xobject_names(self.doc, xref)
        if own is not None:
            names = own
        inner = drawing | {xref}
        for name, count in Counter(_DO.findall(data)).items():
            target = names.get(name.decode("latin-1"))
            per_draw = DRAW_COST
            if target is not None and _is_form(self.doc, target):
                per_draw += self.stream_cost(target, names, inner)
            cost += count * per_draw
            if self.total + cost > self.budget:
                raise _OverBudget
        self._costs[xref] = cost
        return cost


def _decoded(doc: pymupdf.Document, xref: int, limit: int) -> bytes | bytearray | None:
    """The stream's decoded bytes, or None once they pass ``limit`` (never decoding much further).

    Flate (the filter of nearly every content stream), ASCII85 and ASCIIHex are decoded here, bounded;
    other filters (LZW, RunLength: rare in content streams) by MuPDF.
    """
    try:
        kind, value = doc.xref_get_key(xref, "Filter")
    except Exception:  # noqa: BLE001 - not a readable object: MuPDF will say so when it draws
        return b""
    filters = _FILTER.findall(value) if kind in ("name", "array") else []
    if any(f not in _FLATE | _ASCII85 | _ASCIIHEX for f in filters):
        try:
            data = doc.xref_stream(xref) or b""
        except Exception:  # noqa: BLE001
            return b""
        return None if len(data) > limit else data
    try:
        data = doc.xref_stream_raw(xref) or b""
    except Exception:  # noqa: BLE001
        return b""
    for f in filters:
        if f in _FLATE:
            data = _inflate(data, limit)
        elif f in _ASCII85:
            data = _ascii85(data)
        else:
            data = _asciihex(data)
        if len(data) > limit:
            return None
    return None if len(data) > limit else data


def _inflate(raw: bytes, limit: int) -> bytearray:
    """At most ``limit + 1`` inflated bytes; a damaged stream gives what precedes the damage (as MuPDF)."""
    d = zlib.decompressobj()
    out = bytearray()
    data = raw
    try:
        while data and len(out) <= limit:
            out += d.decompress(data, limit + 1 - len(out))
            data = d.unconsumed_tail
            if d.eof:
                break
    except zlib.error:
        pass
    return out


def _ascii85(raw: bytes | bytearray) -> bytes:
    text = re.sub(rb"\s+", b"", raw)
    if text.startswith(b"<~"):
        text = text[2:]
    text = text.split(b"~>", 1)[0]
    try:
        return base64.a85decode(text)
    except ValueError:
        return b""


def _asciihex(raw: bytes | bytearray) -> bytes:
    text = re.sub(rb"\s+", b"", raw).split(b">", 1)[0]
    if len(text) % 2:
        text += b"0"
    try:
        return binascii.unhexlify(text)
    except (binascii.Error, ValueError):
        return b""


def _xobject_names(doc: pymupdf.Document, xref: int) -> dict[str, int] | None:
    """``{name: xref}`` of the object's own ``/Resources /XObject``; None when it has none."""
    try:
        kind, value = doc.xref_get_key(xref, "Resources/XObject")
        if kind == "null":
            return None
        if kind == "xref":
            value = doc.xref_object(int(value.split()[0]), compressed=True)
    except Exception:  # noqa: BLE001 - damaged resources: MuPDF draws what it can
        return None
    return {name: int(number) for name, number in _REF.findall(value)}


def _page_xobjects(doc: pymupdf.Document, page_xref: int) -> dict[str, int]:
    """The page's XObjects, inherited from its parents in the page tree when it has none of its own."""
    xref = page_xref
    for _ in range(_MAX_PARENTS):
        names = _xobject_names(doc, xref)
        if names is not None:
            return names
        try:
            kind, value = doc.xref_get_key(xref, "Parent")
        except Exception:  # noqa: BLE001
            break
        if kind != "xref":
            break
        xref = int(value.split()[0])
    return {}


def _is_form(doc: pymupdf.Document, xref: int) -> bool:
    try:
        return doc.xref_get_key(xref, "Subtype")[1] == "/Form" and doc.xref_is_stream(xref)
    except Exception:  # noqa: BLE001
        return False


def _key(doc: pymupdf.Document, xref: int, key: str) -> tuple[str, str]:
    try:
        return doc.xref_get_key(xref, key)
    except Exception:  # noqa: BLE001 - a damaged object reads as absent
        return "null", "null"


def _appearance_streams(page: pymupdf.Page) -> list[int]:
    """The normal appearance streams of the page's annotations (rendered with the page)."""
    doc = page.parent
    out = []
    try:
        annots = page.annot_xrefs()
    except Exception:  # noqa: BLE001
        return out
    for annot_xref, *_ in annots:
        kind, value = _key(doc, annot_xref, "AP/N")
        if kind == "xref":
            out.append(int(value.split()[0]))
        elif kind == "dict":  # one stream per state (/On, /Off): count them all
            out.extend(int(n) for _, n in _REF.findall(value))
    return [x for x in out if doc.xref_is_stream(x)]
