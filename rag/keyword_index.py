"""BM25 keyword search for one vector store, built on ``bm25s``.

**Updated incrementally, indexed lazily.** ``bm25s`` has no incremental add:
its index holds precomputed BM25 weights that depend on corpus-wide
statistics (document frequencies, average length). So what changes
incrementally is the *corpus*: every ``add``/``delete`` appends one record to
an append-only JSONL log (id, text, flat metadata and the tokenised text) and
marks the index dirty. The next ``search`` (or ``flush``) re-indexes: it
splices the changed chunks' postings into the kept (term, row, tf) postings
and recomputes every weight vectorised in numpy (Lucene BM25, as ``bm25s``
computes it), producing a ``bm25s.BM25`` CSC index. Only a first build
tokenises or sorts the whole corpus. ``flush`` saves the index with
``bm25s``'s own ``save`` plus the term frequencies and lengths it lacks
(``postings.npz``), so a new instance adopts it instead of rebuilding.

Files under ``directory``::

    corpus.jsonl   the log: a header line, then {"op": "put", ...} / {"op": "del", ...}
    bm25s/         bm25s.BM25.save() output (CSC weights, vocabulary, params)
    postings.npz   term frequencies and chunk lengths, for later incremental rebuilds
    index.json     manifest tying the saved index to a log size, row order, tokenizer and checksums

A missing, stale or corrupt saved index is rebuilt from the log; a missing
log means the corpus is gone, so the index starts empty (with a warning).
Torn or corrupt log lines are skipped with a warning and the log rewritten.
``flush`` compacts the log (live records only) when dead records dominate.

Tokenisation (queries and chunks alike): lowercase; words are runs of 2+
letters or digits (``bm25s``'s default ``\\b\\w\\w+\\b``, also split at ``_``),
minus ``bm25s``'s English stopwords, Snowball-stemmed when PyStemmer is
installed. Runs joined by ``- . / : # @ _`` (codes like ``INV-2025-00417``,
dates, versions, file names) are *also* indexed whole and unstemmed, so an
exact code matches its parts and its rare whole token, and ranks first.

Filters are evaluated as boolean masks over all rows (per-key columns built
on first use), so a filtered search returns the best ``k`` matching chunks
however selective the filter is.

Every public method takes one lock and is synchronous (callers run it in a
worker thread). Construction does no I/O: the directory is read on first use.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Self

import bm25s
import numpy as np
from bm25s.stopwords import STOPWORDS_EN

from vistack.api.filters import ComparisonFilter, CompoundFilter, Filter, matches
from vistack.api.protocols import ChunkMetadataValue, ScoredChunk, StoredChunk

log = logging.getLogger(__name__)

__all__ = ["KeywordIndex", "Tokenizer", "tokenize"]

FORMAT = 1
LOG_NAME = "corpus.jsonl"
INDEX_DIR = "bm25s"
POSTINGS_NAME = "postings.npz"
MANIFEST_NAME = "index.json"

# ----- tokenisation -------------------------------------------------------------------------------

_RUN_RE = re.compile(r"\w+(?:[-./:#@]\w+)*")  # words and separator-joined codes
_WORD_RE = re.compile(r"[^\W_]{2,}")  # 2+ letters/digits, split at every separator (and "_")
_STOPWORDS = frozenset(STOPWORDS_EN)


class Tokenizer:
    """Text -> BM25 terms. ``fingerprint`` names everything that changes the output."""

    def __init__(self, stem: bool = True) -> None:
        self._stemmer_module: Any = None
        stemmer_name = "none"
        if stem:
            try:
                import Stemmer  # PyStemmer: Snowball in C, no downloads

                self._stemmer_module = Stemmer
                stemmer_name = f"snowball-english/{Stemmer.version()}"
            except ImportError:  # optional: unstemmed terms without it
                pass
        self._local = threading.local()  # PyStemmer objects are not thread-safe: one per thread
        self.fingerprint = f"vistack-bm25-tok/1;stop=bm25s-en;stem={stemmer_name}"

    @property
    def stemming(self) -> bool:
        return self._stemmer_module is not None

    def __call__(self, text: str) -> list[str]:
        low = text.lower()
        words = [w for w in _WORD_RE.findall(low) if w not in _STOPWORDS]
        if self._stemmer_module is not None and words:
            stemmer = getattr(self._local, "stemmer", None)
            if stemmer is None:
                stemmer = self._local.stemmer = self._stemmer_module.Stemmer("english")
            words = stemmer.stemWords(words)
        words.extend(run for run in _RUN_RE.findall(low) if not run.isalnum())
        return words


_default_tokenizer = Tokenizer()


def tokenize(text: str) -> list[str]:
    """The terms :class:`KeywordIndex` indexes for ``text`` (and searches for, as a query)."""
    return _default_tokenizer(text)


# ----- attribute filters as row masks -------------------------------------------------------------

_MISSING = object()


def _kind_key(value: Any) -> tuple[Any, ...]:
    """Hashable key under which two values are equal exactly when ``filters._equal`` says so."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, (int, float)):
        return ("n", value)
    return (type(value).__name__, value)


class _Column:
    """One metadata key across all rows, with lazily built lookups."""

    def __init__(self, values: list[Any]) -> None:
        self.values = values
        self._groups: dict[tuple[Any, ...], np.ndarray] | None = None
        self._numbers: np.ndarray | None = None
        self._strings: tuple[np.ndarray, np.ndarray] | None = None

    def groups(self) -> dict[tuple[Any, ...], np.ndarray]:
        if self._groups is None:
            groups: dict[tuple[Any, ...], list[int]] = {}
            for row, v in enumerate(self.values):
                if v is not _MISSING:
                    try:
                        groups.setdefault(_kind_key(v), []).append(row)
                    except TypeError:  # unhashable: never equal to a scalar filter value
                        pass
            self._groups = {k: np.asarray(rows, dtype=np.int64) for k, rows in groups.items()}
        return self._groups

    def numbers(self) -> np.ndarray:
        """float64 per row; NaN where missing or not a (non-bool) number, so every comparison is False."""
        if self._numbers is None:
            self._numbers = np.array(
                [float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else np.nan for v in self.values],
                dtype=np.float64,
            )
        return self._numbers

    def strings(self) -> tuple[np.ndarray, np.ndarray]:
        if self._strings is None:
            is_str = np.array([isinstance(v, str) for v in self.values], dtype=bool)
            text = np.array([v if isinstance(v, str) else "" for v in self.values], dtype=str)
            self._strings = (text, is_str)
        return self._strings


# ----- the index ----------------------------------------------------------------------------------


class _Doc:
    """A chunk's text and metadata; ``terms`` only until its postings are built."""

    __slots__ = ("metadata", "terms", "text")

    def __init__(self, text: str, metadata: dict[str, Any], terms: str | None) -> None:
        self.text = text
        self.metadata = metadata
        self.terms = terms


_EMPTY_I32 = np.zeros(0, dtype=np.int32)


class KeywordIndex:
    """BM25 over one vector store's chunks, persisted under ``directory``.

    ``k1`` and ``b`` are the Lucene BM25 parameters (``bm25s``'s defaults).
    """

    def __init__(self, directory: Path | str, *, k1: float = 1.5, b: float = 0.75) -> None:
        self.directory = Path(directory)
        self.k1 = float(k1)
        self.b = float(b)
        self._lock = threading.RLock()
        self._tokenizer = _default_tokenizer
        self._fingerprint = f"{self._tokenizer.fingerprint};bm25=lucene,k1={self.k1},b={self.b}"
        self._loaded = False
        self._log_fh: Any = None
        self._log_records = 0  # put/del records in the log, for compaction
        self._bad_records = 0
        self._needs_rewrite = False  # the log has junk or a stale tokenisation
        # the corpus: id -> doc, in row order (built rows first, then pending ones)
        self._docs: dict[str, _Doc] = {}
        self._pending: dict[str, None] = {}  # ids added or replaced since the last build, in order
        self._removed: set[int] = set()  # rows of the last build deleted or replaced since
        self._vocab: dict[str, int] = {}
        self._vocab_list: list[str] = []
        # the last build: postings in CSC order (term, then row), lengths, and the bm25s index
        self._rows: list[str] = []
        self._row_of: dict[str, int] = {}
        self._term = _EMPTY_I32
        self._row = _EMPTY_I32
        self._tf = _EMPTY_I32
        self._lens = _EMPTY_I32
        self._bm25: bm25s.BM25 | None = None
        self._columns: dict[str, _Column] = {}
        self._dirty = False
        self._saved = True  # what is on disk matches the last build

    # ----- public API -----------------------------------------------------------------------------

    def add(self, chunks: Iterable[StoredChunk]) -> None:
        """Upsert ``chunks`` by id (embeddings are not kept). Logged now, indexed on the next search."""
        batch: dict[str, StoredChunk] = {}
        for chunk in chunks:
            batch.pop(chunk.id, None)  # as if added one by one: the last copy wins, at its position
            batch[chunk.id] = chunk
        if not batch:
            return
        docs: dict[str, _Doc] = {}
        lines = []
        for cid, chunk in batch.items():
            terms = " ".join(self._tokenizer(chunk.text))
            metadata = dict(chunk.metadata)
            docs[cid] = _Doc(chunk.text, metadata, terms)
            record = {"op": "put", "id": cid, "text": chunk.text, "metadata": metadata, "terms": terms}
            lines.append(json.dumps(record, ensure_ascii=False))
        with self._lock:
            self._ensure_loaded()
            self._append(lines)
            for cid, doc in docs.items():
                self._forget(cid)
                self._docs[cid] = doc  # an upsert moves the chunk to the end, as replaying the log does
                self._pending[cid] = None
            self._changed()

    def delete(self, where: dict[str, ChunkMetadataValue]) -> int:
        """Delete every chunk whose metadata equals all of ``where`` (``{}`` matches all); returns how many."""
        flt = CompoundFilter(
            type="and", filters=[ComparisonFilter(type="eq", key=k, value=v) for k, v in where.items()]
        )
        with self._lock:
            self._ensure_loaded()
            return self._delete_locked([cid for cid, doc in self._docs.items() if matches(flt, doc.metadata)])

    def delete_ids(self, ids: Iterable[str]) -> int:
        """Delete chunks by id (unknown ids are ignored); returns how many."""
        with self._lock:
            self._ensure_loaded()
            return self._delete_locked([cid for cid in dict.fromkeys(ids) if cid in self._docs])

    def search(self, query: str, k: int, filters: Filter | None = None) -> list[ScoredChunk]:
        """The ``k`` best chunks by BM25 score, best first (ties: earliest added first).

        Only chunks sharing at least one term with ``query`` are returned.
        ``filters`` (OpenAI comparison/compound filters on chunk metadata)
        restrict the candidates before ranking, so they never shorten the
        result while enough matching chunks exist.
        """
        if k <= 0:
            return []
        terms = self._tokenizer(query)
        with self._lock:
            self._ensure_loaded()
            if self._dirty:
                self._build()
            if self._bm25 is None or not terms:
                return []
            n_vocab = len(self._bm25.scores["indptr"]) - 1
            cols = [i for i in (self._vocab.get(t) for t in terms) if i is not None and i < n_vocab]
            if not cols:
                return []
            scores = self._scores(cols)
            hit = scores > 0
            if filters is not None:
                hit &= self._mask(filters)
            cand = np.flatnonzero(hit)
            if cand.size == 0:
                return []
            cand_scores = scores[cand]
            if k < cand.size:
                # keep everything tied with the k-th best, then order by (score desc, row asc)
                threshold = np.partition(cand_scores, cand.size - k)[cand.size - k]
                keep = cand_scores >= threshold
                cand, cand_scores = cand[keep], cand_scores[keep]
            order = np.lexsort((cand, -cand_scores))[:k]
            out = []
            for row, score in zip(cand[order].tolist(), cand_scores[order].tolist()):
                cid = self._rows[row]
                doc = self._docs[cid]
                out.append(
                    ScoredChunk(chunk=StoredChunk(id=cid, text=doc.text, metadata=dict(doc.metadata)), score=score)
                )
            return out

    def count(self) -> int:
        with self._lock:
            self._ensure_loaded()
            return len(self._docs)

    def flush(self) -> None:
        """Make everything durable: build the index if dirty, compact the log if due, save the index."""
        with self._lock:
            if not self._loaded:
                return
            if self._dirty:
                self._build()
            if self._needs_rewrite or self._log_records - len(self._docs) > max(1024, len(self._docs)):
                self._rewrite_log()
            if not self._saved:
                self._save_index()
            if self._log_fh is not None:
                self._log_fh.flush()
                os.fsync(self._log_fh.fileno())

    def close(self) -> None:
        """``flush`` and release the log file (a later call reopens it)."""
        with self._lock:
            if not self._loaded:
                return
            self.flush()
            if self._log_fh is not None:
                self._log_fh.close()
                self._log_fh = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- corpus changes -------------------------------------------------------------------------

    def _forget(self, cid: str) -> None:
        """Drop ``cid`` from the corpus and mark its built row (if any) removed."""
        if self._docs.pop(cid, None) is None:
            return
        row = self._row_of.pop(cid, None)
        if row is not None:
            self._removed.add(row)
        self._pending.pop(cid, None)

    def _delete_locked(self, ids: list[str]) -> int:
        if not ids:
            return 0
        self._append([json.dumps({"op": "del", "ids": ids}, ensure_ascii=False)])
        for cid in ids:
            self._forget(cid)
        self._changed()
        return len(ids)

    def _changed(self) -> None:
        self._dirty = True
        self._saved = False

    # ----- the log --------------------------------------------------------------------------------

    @property
    def _log_path(self) -> Path:
        return self.directory / LOG_NAME

    def _header(self) -> str:
        return json.dumps({"op": "header", "format": FORMAT, "tokenizer": self._fingerprint})

    def _open_log(self) -> None:
        if self._log_fh is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            new = not self._log_path.exists() or self._log_path.stat().st_size == 0
            self._log_fh = open(self._log_path, "a", encoding="utf-8")  # noqa: SIM115 - kept open
            if new:
                self._log_fh.write(self._header() + "\n")
                self._log_fh.flush()

    def _append(self, lines: list[str]) -> None:
        self._open_log()
        self._log_fh.write("\n".join(lines) + "\n")
        self._log_fh.flush()  # to the OS on every call; fsync on flush()
        self._log_records += len(lines)

    def _rewrite_log(self) -> None:
        """Replace the log with the live corpus (atomically), compacting the vocabulary first."""
        if self._dirty:
            self._build()
        self._compact_vocab()
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self._log_path.with_name(LOG_NAME + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(self._header() + "\n")
            for cid, terms in zip(self._rows, self._row_terms()):
                doc = self._docs[cid]
                record = {"op": "put", "id": cid, "text": doc.text, "metadata": doc.metadata, "terms": terms}
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self._log_path)
        _fsync_dir(self.directory)
        self._log_records = len(self._docs)
        self._needs_rewrite = False
        self._saved = False  # the manifest names the old log's size

    def _row_terms(self) -> Iterator[str]:
        """Each built row's terms (as a bag: grouped by term), from the postings."""
        order = np.argsort(self._row, kind="stable")
        expanded = np.repeat(self._term[order], self._tf[order])
        bounds = np.zeros(len(self._lens) + 1, dtype=np.int64)
        np.cumsum(self._lens, out=bounds[1:])
        vocab = np.asarray(self._vocab_list, dtype=object)
        for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
            yield " ".join(vocab[expanded[a:b]].tolist())

    def _compact_vocab(self) -> None:
        """Drop terms no chunk uses any more (deletes and upserts leave them behind). Needs a clean build."""
        df = np.bincount(self._term, minlength=len(self._vocab_list))
        used = np.flatnonzero(df)
        if used.size == len(self._vocab_list):
            return
        remap = np.full(len(self._vocab_list), -1, dtype=np.int32)
        remap[used] = np.arange(used.size, dtype=np.int32)
        self._term = remap[self._term]  # monotonic: CSC order is kept
        self._vocab_list = [self._vocab_list[i] for i in used.tolist()]
        self._vocab = {t: i for i, t in enumerate(self._vocab_list)}
        if self._bm25 is not None:
            self._bm25.scores["indptr"] = _indptr(df[used])
        self._saved = False

    # ----- loading --------------------------------------------------------------------------------

    def _ensure_loaded(self) -> None:
        if not self._loaded:
            self._load()
            self._loaded = True

    def _load(self) -> None:
        d = self.directory
        if not self._log_path.exists():
            if any((d / name).exists() for name in (MANIFEST_NAME, INDEX_DIR, POSTINGS_NAME)):
                log.warning(
                    "BM25 corpus log %s is missing, so its keyword index cannot be rebuilt; starting empty. "
                    "Re-attach the vector store's files to index them again.",
                    self._log_path,
                )
                _remove_index_files(d)
            return
        # When the manifest promises a saved index for exactly this log, skip keeping the terms
        # (the saved postings hold them); should adoption still fail, replay again with them.
        hopeful = self._manifest_fits_log()
        header = self._replay(keep_terms=not hopeful)
        stale = header is None or header.get("tokenizer") != self._fingerprint
        if not stale and not self._needs_rewrite and hopeful and self._adopt_saved_index():
            return
        if hopeful:
            self._docs.clear()
            header = self._replay(keep_terms=True)
        if self._bad_records:
            log.warning(
                "BM25 corpus log %s: skipped %d corrupt record(s); rewriting it", self._log_path, self._bad_records
            )
        if stale:
            for doc in self._docs.values():  # tokenised differently (or unknown): redo from the text
                doc.terms = " ".join(self._tokenizer(doc.text))
            self._needs_rewrite = True
        self._pending = dict.fromkeys(self._docs)
        self._dirty = bool(self._docs)
        self._saved = False
        if self._needs_rewrite:
            self._rewrite_log()  # now, before any append can land after a torn last line

    def _manifest_fits_log(self) -> bool:
        try:
            manifest = json.loads((self.directory / MANIFEST_NAME).read_text(encoding="utf-8"))
            return (
                manifest.get("format") == FORMAT
                and manifest.get("tokenizer") == self._fingerprint
                and manifest.get("log_bytes") == self._log_path.stat().st_size
            )
        except (OSError, ValueError, AttributeError):
            return False

    def _replay(self, keep_terms: bool) -> dict[str, Any] | None:
        header: dict[str, Any] | None = None
        bad = 0
        records = 0
        docs = self._docs
        torn = False
        with open(self._log_path, "rb") as fh:
            for lineno, raw in enumerate(fh):
                torn = not raw.endswith(b"\n")
                if not raw.strip():
                    continue
                try:
                    rec = json.loads(raw)
                    op = rec["op"]
                    if op == "header" and lineno == 0:
                        header = rec
                        continue
                    if op == "put":
                        terms = str(rec["terms"]) if keep_terms else None
                        metadata = rec["metadata"]
                        if not isinstance(metadata, dict) or not isinstance(rec["id"], str):
                            raise TypeError("bad put record")
                        doc = _Doc(str(rec["text"]), metadata, terms)
                        docs.pop(rec["id"], None)
                        docs[rec["id"]] = doc
                    elif op == "del":
                        for cid in rec["ids"]:
                            docs.pop(cid, None)
                    else:
                        raise ValueError(f"unknown op {op!r}")
                    records += 1
                except (ValueError, KeyError, TypeError):
                    bad += 1
        if torn or bad:
            self._needs_rewrite = True
        self._bad_records = bad
        self._log_records = records
        return header

    def _adopt_saved_index(self) -> bool:
        """Use the saved index if the manifest ties it to exactly this log; else it gets rebuilt."""
        d = self.directory
        manifest_path = d / MANIFEST_NAME
        if not manifest_path.exists():
            return False
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            if (
                manifest.get("format") != FORMAT
                or manifest.get("tokenizer") != self._fingerprint
                or manifest.get("log_bytes") != self._log_path.stat().st_size
                or manifest.get("rows") != list(self._docs)
            ):
                log.info("BM25 index in %s is stale; rebuilding it on first search", d)
                return False
            bm = bm25s.BM25.load(str(d / INDEX_DIR), show_progress=False)
            with np.load(d / POSTINGS_NAME, allow_pickle=False) as npz:
                tf = npz["tf"]
                lens = npz["lens"]
            s = bm.scores
            indptr, indices, data = s["indptr"], s["indices"], s["data"]
            n, n_vocab = len(self._docs), len(bm.vocab_dict)
            arrays = {"data": data, "indices": indices, "indptr": indptr, "tf": tf, "lens": lens}
            if manifest.get("crc32") != {name: _crc(a) for name, a in arrays.items()}:
                raise ValueError("checksum mismatch")
            if not (
                s["num_docs"] == n
                and sorted(bm.vocab_dict.values()) == list(range(n_vocab))
                and indptr.shape == (n_vocab + 1,)
                and indptr[0] == 0
                and int(indptr[-1]) == data.shape[0] == indices.shape[0] == tf.shape[0]
                and lens.shape == (n,)
                and int(tf.sum()) == int(lens.sum())
            ):
                raise ValueError("arrays do not fit the corpus")
        except Exception as exc:  # noqa: BLE001 - any damage means "rebuild from the log"
            log.warning("BM25 index in %s is unreadable (%s); rebuilding it from the corpus log", d, exc)
            return False
        self._vocab = dict(bm.vocab_dict)
        self._vocab_list = [""] * n_vocab
        for term, i in self._vocab.items():
            self._vocab_list[i] = term
        self._rows = list(self._docs)
        self._row_of = {cid: i for i, cid in enumerate(self._rows)}
        self._term = np.repeat(np.arange(n_vocab, dtype=np.int32), np.diff(indptr))
        self._row = indices.astype(np.int32, copy=False)
        self._tf = tf.astype(np.int32, copy=False)
        self._lens = lens.astype(np.int32, copy=False)
        for doc in self._docs.values():
            doc.terms = None
        self._bm25 = bm
        self._dirty = False
        self._saved = True
        return True

    # ----- building -------------------------------------------------------------------------------

    def _pending_term_ids(self, ids: list[str], batch: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """Pending chunks' terms as vocabulary ids (growing the vocabulary), flat, plus each chunk's length."""
        vocab, vocab_list, docs = self._vocab, self._vocab_list, self._docs
        flats, lens = [], []
        for start in range(0, len(ids), batch):  # batches bound the transient list of term strings
            terms: list[str] = []
            for cid in ids[start : start + batch]:
                doc = docs[cid]
                split = doc.terms.split() if doc.terms else []
                lens.append(len(split))
                terms.extend(split)
                doc.terms = None
            for term in dict.fromkeys(terms):
                if term not in vocab:
                    vocab[term] = len(vocab_list)
                    vocab_list.append(term)
            flats.append(np.fromiter(map(vocab.__getitem__, terms), dtype=np.int64, count=len(terms)))
        return np.concatenate(flats), np.asarray(lens, dtype=np.int64)

    def _build(self) -> None:
        """Splice removed and pending chunks into the postings, then recompute every BM25 weight."""
        term, row, tf, lens, rows = self._term, self._row, self._tf, self._lens, self._rows
        if self._removed:
            keep = np.ones(len(rows), dtype=bool)
            keep[np.fromiter(self._removed, dtype=np.int64, count=len(self._removed))] = False
            new_row = (np.cumsum(keep, dtype=np.int64) - 1).astype(np.int32)
            live = keep[row]
            term, row, tf = term[live], new_row[row[live]], tf[live]
            lens = lens[keep]
            rows = [cid for cid, k in zip(rows, keep.tolist()) if k]
        if self._pending:
            ids = list(self._pending)
            flat, new_lens = self._pending_term_ids(ids)
            p = len(ids)
            local = np.repeat(np.arange(p, dtype=np.int64), new_lens)
            pairs, counts = _unique_counts(flat * p + local)  # sorted by (term, row)
            new_term = (pairs // p).astype(np.int32)
            new_row = (pairs % p + len(rows)).astype(np.int32)
            new_tf = counts.astype(np.int32)
            if term.size == 0:
                term, row, tf = new_term, new_row, new_tf
            else:
                # new rows come after every old row, so each new posting goes at the end of its term's run
                ends = np.cumsum(np.bincount(term, minlength=len(self._vocab_list)))
                at = ends[new_term] + np.arange(new_term.size)
                old_slots = np.ones(term.size + new_term.size, dtype=bool)
                old_slots[at] = False
                term, row, tf = (
                    _merge(old, new, at, old_slots) for old, new in ((term, new_term), (row, new_row), (tf, new_tf))
                )
            lens = np.concatenate([lens, new_lens.astype(np.int32)])
            rows = rows + ids
        self._term, self._row, self._tf, self._lens, self._rows = term, row, tf, lens, rows
        self._row_of = {cid: i for i, cid in enumerate(rows)}
        self._pending.clear()
        self._removed.clear()
        self._columns.clear()
        self._dirty = False
        self._saved = False
        n = len(rows)
        if n == 0:
            self._bm25 = None
            return
        # Lucene BM25, as bm25s: idf = ln(1 + (N - df + .5) / (df + .5)); tf / (k1 (1 - b + b len/avg) + tf)
        df = np.bincount(term, minlength=len(self._vocab_list))
        idf = np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)
        avg_len = max(float(lens.mean()), 1e-9)
        norm = (self.k1 * ((1.0 - self.b) + self.b * lens / avg_len)).astype(np.float32)
        tf32 = tf.astype(np.float32)
        data = idf[term] * (tf32 / (norm[row] + tf32))
        bm = bm25s.BM25(k1=self.k1, b=self.b, method="lucene", backend="numpy")
        bm.scores = {"data": data, "indices": row, "indptr": _indptr(df), "num_docs": n}
        bm.nonoccurrence_array = None
        bm.vocab_dict = {}  # set on save; searches map terms through self._vocab
        self._bm25 = bm

    def _save_index(self) -> None:
        d = self.directory
        manifest_path = d / MANIFEST_NAME
        manifest_path.unlink(missing_ok=True)  # invalidate first: a crash mid-save must not pair old and new
        if self._bm25 is None:
            _remove_index_files(d)
            self._saved = True
            return
        self._open_log()
        self._log_fh.flush()
        os.fsync(self._log_fh.fileno())
        bm = self._bm25
        n_vocab = len(bm.scores["indptr"]) - 1
        bm.vocab_dict = {t: i for i, t in enumerate(self._vocab_list[:n_vocab])}
        bm.unique_token_ids_set = set(bm.vocab_dict.values())
        bm.save(str(d / INDEX_DIR), show_progress=False)
        np.savez(d / POSTINGS_NAME, tf=self._tf, lens=self._lens)
        s = bm.scores
        arrays = {"data": s["data"], "indices": s["indices"], "indptr": s["indptr"], "tf": self._tf, "lens": self._lens}
        manifest = {
            "format": FORMAT,
            "tokenizer": self._fingerprint,
            "log_bytes": self._log_path.stat().st_size,
            "rows": self._rows,
            "crc32": {name: _crc(a) for name, a in arrays.items()},
        }
        tmp = manifest_path.with_name(MANIFEST_NAME + ".tmp")
        tmp.write_text(json.dumps(manifest), encoding="utf-8")
        os.replace(tmp, manifest_path)
        _fsync_dir(d)
        self._saved = True

    # ----- scoring and filtering ------------------------------------------------------------------

    def _scores(self, cols: list[int]) -> np.ndarray:
        s = self._bm25.scores
        indptr, indices, data, n = s["indptr"], s["indices"], s["data"], s["num_docs"]
        spans = [(int(indptr[c]), int(indptr[c + 1])) for c in cols]
        if len(spans) == 1:
            a, b = spans[0]
            out = np.zeros(n, dtype=np.float64)
            out[indices[a:b]] = data[a:b]
            return out
        idx = np.concatenate([indices[a:b] for a, b in spans])
        w = np.concatenate([data[a:b] for a, b in spans])
        return np.bincount(idx, weights=w, minlength=n)

    def _column(self, key: str) -> _Column:
        col = self._columns.get(key)
        if col is None:
            docs = self._docs
            col = self._columns[key] = _Column([docs[cid].metadata.get(key, _MISSING) for cid in self._rows])
        return col

    def _mask(self, flt: Filter) -> np.ndarray:
        """Rows passing ``flt``, with exactly the semantics of ``vistack.api.filters.matches``."""
        n = len(self._rows)
        if isinstance(flt, CompoundFilter):
            if flt.type == "and":
                out = np.ones(n, dtype=bool)
                for f in flt.filters:
                    out &= self._mask(f)
            else:
                out = np.zeros(n, dtype=bool)
                for f in flt.filters:
                    out |= self._mask(f)
            return out
        op, value = flt.type, flt.value
        col = self._column(flt.key)
        if op in ("in", "nin", "eq", "ne"):
            if op in ("eq", "ne") and isinstance(value, list):
                hit = np.zeros(n, dtype=bool)  # a list never equals a scalar
            else:
                hit = np.zeros(n, dtype=bool)
                groups = col.groups()
                for v in value if isinstance(value, list) else [value]:
                    rows = groups.get(_kind_key(v))
                    if rows is not None:
                        hit[rows] = True
            return hit if op in ("in", "eq") else ~hit
        if isinstance(value, list):
            return np.zeros(n, dtype=bool)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            nums = col.numbers()
            with np.errstate(invalid="ignore"):
                if op == "gt":
                    return nums > value
                if op == "gte":
                    return nums >= value
                if op == "lt":
                    return nums < value
                return nums <= value
        if isinstance(value, str):
            text, is_str = col.strings()
            cmp = {"gt": np.greater, "gte": np.greater_equal, "lt": np.less, "lte": np.less_equal}[op]
            return cmp(text, value) & is_str
        # booleans (and anything unusual): row by row
        return np.fromiter((matches(flt, self._docs[cid].metadata) for cid in self._rows), dtype=bool, count=n)


def _merge(old: np.ndarray, new: np.ndarray, at: np.ndarray, old_slots: np.ndarray) -> np.ndarray:
    out = np.empty(old.size + new.size, dtype=old.dtype)
    out[old_slots] = old
    out[at] = new
    return out


def _unique_counts(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values and their counts (np.unique(return_counts=True), leaner)."""
    keys = np.sort(keys)
    if keys.size == 0:
        return keys, np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    return keys[starts], np.diff(np.append(starts, keys.size))


def _indptr(df: np.ndarray) -> np.ndarray:
    indptr = np.zeros(len(df) + 1, dtype=np.int64)
    np.cumsum(df, out=indptr[1:])
    return indptr


def _crc(a: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(a).view(np.uint8)) if a.size else 0


def _remove_index_files(d: Path) -> None:
    for name in (MANIFEST_NAME, MANIFEST_NAME + ".tmp", POSTINGS_NAME):
        (d / name).unlink(missing_ok=True)
    index_dir = d / INDEX_DIR
    if index_dir.is_dir():
        for f in index_dir.iterdir():
            if f.is_file():
                f.unlink(missing_ok=True)
        try:
            index_dir.rmdir()
        except OSError:
            pass


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
