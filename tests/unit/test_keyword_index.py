"""BM25 keyword index: exact codes, filters, deletes, lazy incremental rebuilds, persistence, recovery."""

from __future__ import annotations

import json
import logging
import random
import threading
from pathlib import Path

import bm25s
import numpy as np
import pytest

from vistack.api.filters import ComparisonFilter, CompoundFilter, matches, parse_filter
from vistack.api.protocols import StoredChunk
from vistack.rag.keyword_index import KeywordIndex, tokenize

pytestmark = pytest.mark.timeout(60)


def chunk(cid: str, text: str, **metadata) -> StoredChunk:
    return StoredChunk(id=cid, text=text, metadata=metadata)


def ids(results) -> list[str]:
    return [r.chunk.id for r in results]


def scored(results) -> list[tuple[str, float]]:
    return [(r.chunk.id, r.score) for r in results]


INVOICES = [
    chunk("inv-416", "Invoice INV-2025-00416 for consulting, total 1,200 EUR, due 2025-03-01.", file_id="f1", page=1),
    chunk("inv-417", "Invoice INV-2025-00417 for hardware, total 9,800 EUR, due 2025-03-15.", file_id="f1", page=2),
    chunk("inv-418", "Invoice INV-2025-00418 for licences, total 4,100 EUR, due 2025-04-01.", file_id="f2", page=1),
    chunk(
        "po-417",
        "Purchase order PO-2024-00417 references invoice numbers from 2025 and 2025 again.",
        file_id="f2",
        page=2,
    ),
    chunk("report", "Annual report 2025: revenue 2025, costs 2025, invoices 2025, outlook 2025.", file_id="f3", page=1),
    chunk("slides", "Quarterly business review slides with revenue charts and a dashboard.", file_id="f3", page=2),
]


@pytest.fixture
def index(tmp_path: Path) -> KeywordIndex:
    ki = KeywordIndex(tmp_path / "store")
    ki.add(INVOICES)
    return ki


# ----- tokenisation and ranking --------------------------------------------------------------------


def test_tokenize_keeps_codes_whole_and_in_parts() -> None:
    terms = tokenize("See INV-2025-00417, v1.2.3 and file_id on 2025-01-15.")
    for whole in ("inv-2025-00417", "v1.2.3", "file_id", "2025-01-15"):
        assert whole in terms
    for part in ("inv", "2025", "00417", "file", "15"):
        assert part in terms
    assert "and" not in terms and "on" not in terms  # stopwords
    assert tokenize("INV-2025-00417") == tokenize("inv-2025-00417")


@pytest.mark.parametrize(
    "query", ["INV-2025-00417", "inv-2025-00417", "invoice INV-2025-00417", "00417 INV-2025-00417"]
)
def test_exact_code_ranks_first(index: KeywordIndex, query: str) -> None:
    results = index.search(query, 3)
    assert results[0].chunk.id == "inv-417"
    assert results[0].score > results[1].score


def test_parts_of_a_code_still_match(index: KeywordIndex) -> None:
    assert set(ids(index.search("00417", 10))) == {"inv-417", "po-417"}


def test_scores_are_bm25s_scores(index: KeywordIndex) -> None:
    """The vectorised build computes what bm25s.BM25().index() computes (Lucene BM25)."""
    reference = bm25s.BM25()
    reference.index([tokenize(c.text) for c in INVOICES], show_progress=False)
    for query in ["INV-2025-00417", "revenue dashboard", "invoice total EUR 2025", "slides"]:
        expected = reference.get_scores(tokenize(query))
        got = dict(scored(index.search(query, len(INVOICES))))
        for c, want in zip(INVOICES, expected):
            assert got.get(c.id, 0.0) == pytest.approx(float(want), rel=1e-5, abs=1e-6)


def test_results_are_best_first_and_limited(index: KeywordIndex) -> None:
    results = index.search("invoice 2025 revenue", 3)
    assert len(results) == 3
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)
    assert all(r.chunk.embedding is None and r.chunk.metadata for r in results)


def test_empty_index_and_empty_queries(tmp_path: Path, index: KeywordIndex) -> None:
    empty = KeywordIndex(tmp_path / "empty")
    assert empty.search("anything", 5) == []
    assert empty.count() == 0
    empty.close()
    assert index.search("", 5) == []
    assert index.search("the and of", 5) == []  # only stopwords
    assert index.search("zzzunknownterm", 5) == []
    assert index.search("invoice", 0) == []


def test_construction_does_no_io(tmp_path: Path) -> None:
    KeywordIndex(tmp_path / "never-used")
    assert not (tmp_path / "never-used").exists()


# ----- filters -------------------------------------------------------------------------------------


def test_filters(index: KeywordIndex) -> None:
    f1 = ComparisonFilter(type="eq", key="file_id", value="f1")
    assert set(ids(index.search("invoice", 10, f1))) == {"inv-416", "inv-417"}
    assert set(ids(index.search("2025", 10, ComparisonFilter(type="gte", key="page", value=2)))) == {
        "inv-417",
        "po-417",
    }
    both = CompoundFilter(
        type="and",
        filters=[
            ComparisonFilter(type="in", key="file_id", value=["f2", "f3"]),
            ComparisonFilter(type="eq", key="page", value=1),
        ],
    )
    assert set(ids(index.search("2025", 10, both))) == {"inv-418", "report"}
    either = parse_filter(
        {
            "type": "or",
            "filters": [{"type": "eq", "key": "file_id", "value": "f3"}, {"type": "lt", "key": "page", "value": 2}],
        }
    )
    assert set(ids(index.search("revenue invoice", 10, either))) == {"inv-416", "inv-418", "report", "slides"}
    assert index.search("invoice", 10, ComparisonFilter(type="eq", key="missing", value="x")) == []
    assert index.search("invoice", 10, ComparisonFilter(type="eq", key="page", value="1")) == []  # kinds differ


def test_selective_filter_still_fills_k(tmp_path: Path) -> None:
    ki = KeywordIndex(tmp_path / "s")
    ki.add([chunk(f"a{i}", "alpha alpha alpha beta", file_id="A") for i in range(300)])
    ki.add([chunk(f"b{i}", f"alpha gamma filler words number{i}", file_id="B") for i in range(7)])
    unfiltered = ki.search("alpha", 5)
    assert {r.chunk.metadata["file_id"] for r in unfiltered} == {"A"}
    only_b = ki.search("alpha", 5, ComparisonFilter(type="eq", key="file_id", value="B"))
    assert len(only_b) == 5 and {r.chunk.metadata["file_id"] for r in only_b} == {"B"}
    assert len(ki.search("alpha", 50, ComparisonFilter(type="eq", key="file_id", value="B"))) == 7


def _random_filter(rng: random.Random, depth: int = 0):
    if depth < 2 and rng.random() < 0.3:
        return CompoundFilter(
            type=rng.choice(["and", "or"]), filters=[_random_filter(rng, depth + 1) for _ in range(rng.randint(0, 3))]
        )
    op = rng.choice(["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin"])
    pool = [0, 1, 2, 2.5, True, False, "a", "b", "c", "", 10**20]
    value = (
        [rng.choice(pool) for _ in range(rng.randint(0, 3))]
        if op in ("in", "nin") or rng.random() < 0.05
        else rng.choice(pool)
    )
    return ComparisonFilter(type=op, key=rng.choice(["x", "y", "missing"]), value=value)


def test_filter_masks_agree_with_matches(tmp_path: Path) -> None:
    """The vectorised filter path has exactly the semantics of vistack.api.filters.matches."""
    rng = random.Random(7)
    values = [0, 1, 2, 3, 2.5, -1.0, True, False, "a", "b", "bb", "", 10**20]
    chunks = []
    for i in range(120):
        meta = {k: rng.choice(values) for k in ("x", "y") if rng.random() < 0.85}
        chunks.append(StoredChunk(id=f"c{i}", text=f"common word{i % 5}", metadata=meta))
    ki = KeywordIndex(tmp_path / "s")
    ki.add(chunks)
    for _ in range(400):
        flt = _random_filter(rng)
        expected = {c.id for c in chunks if matches(flt, c.metadata)}
        assert set(ids(ki.search("common", 1000, flt))) == expected, flt


# ----- changes -------------------------------------------------------------------------------------


def test_delete_by_file_id(index: KeywordIndex) -> None:
    assert index.delete({"file_id": "f1"}) == 2
    assert index.count() == 4
    assert "inv-417" not in ids(index.search("INV-2025-00417", 10))
    assert index.search("consulting hardware", 10) == []
    assert index.delete({"file_id": "f1"}) == 0
    assert index.delete({"file_id": "f2", "page": 2}) == 1
    assert index.delete_ids(["report", "nope"]) == 1
    assert sorted(ids(index.search("2025 revenue invoice slides", 10))) == ["inv-418", "slides"]


def test_upsert_replaces_by_id(index: KeywordIndex) -> None:
    index.search("warm", 1)
    index.add([chunk("inv-417", "Credit note CN-77 replaces the hardware invoice.", file_id="f9")])
    assert index.count() == len(INVOICES)
    assert "inv-417" not in ids(index.search("INV-2025-00417", 10))
    [hit] = index.search("CN-77", 5)
    assert hit.chunk.id == "inv-417" and hit.chunk.metadata == {"file_id": "f9"}


def test_lazy_rebuild_after_add(index: KeywordIndex) -> None:
    index.search("invoice", 1)
    assert not index._dirty
    index.add([chunk("new", "Dashboard KPI-9000 export", file_id="f4")])
    assert index._dirty  # logged, not yet indexed
    assert index.search("KPI-9000", 1)[0].chunk.id == "new"
    assert not index._dirty


def test_incremental_builds_equal_a_full_build(tmp_path: Path) -> None:
    rng = random.Random(3)
    vocab = [f"w{i}" for i in range(60)] + ["INV-1", "INV-2", "Q3-2025"]
    inc = KeywordIndex(tmp_path / "inc")
    live: dict[str, StoredChunk] = {}
    for step in range(12):
        batch = [
            chunk(
                f"c{rng.randrange(80)}",
                " ".join(rng.choices(vocab, k=rng.randint(0, 15))),
                file_id=f"f{rng.randrange(4)}",
            )
            for _ in range(rng.randint(1, 12))
        ]
        inc.add(batch)
        for c in batch:
            live.pop(c.id, None)
            live[c.id] = c
        if step % 3 == 2:
            fid = f"f{rng.randrange(4)}"
            inc.delete({"file_id": fid})
            live = {k: c for k, c in live.items() if c.metadata["file_id"] != fid}
        inc.search("w1", 3)  # builds incrementally
    full = KeywordIndex(tmp_path / "full")
    full.add(list(live.values()))
    assert inc._rows == list(inc._docs) == list(live)
    for q in ["w1 w2 w3", "INV-1", "q3-2025 w7", "w59 w0"]:
        assert scored(inc.search(q, 100)) == scored(full.search(q, 100))


def test_concurrent_adds_and_searches(tmp_path: Path) -> None:
    ki = KeywordIndex(tmp_path / "s")
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            for j in range(20):
                ki.add([chunk(f"w{w}-{j}", f"shared token writer{w} item{j}", file_id=f"f{w}")])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def reader() -> None:
        try:
            for _ in range(40):
                ki.search("shared token", 5, ComparisonFilter(type="ne", key="file_id", value="f0"))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)] + [
        threading.Thread(target=reader) for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert ki.count() == 80
    assert len(ki.search("shared", 100)) == 80


# ----- persistence ---------------------------------------------------------------------------------

QUERIES = ["INV-2025-00417", "invoice total 2025", "revenue dashboard", "po-2024-00417 hardware"]


def snapshot(ki: KeywordIndex) -> list:
    return [scored(ki.search(q, 10)) for q in QUERIES] + [
        scored(ki.search("2025", 10, ComparisonFilter(type="eq", key="page", value=1)))
    ]


def test_reload_gives_identical_results(tmp_path: Path, index: KeywordIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    index.delete({"file_id": "f3"})
    before = snapshot(index)
    index.close()
    assert (tmp_path / "store" / "bm25s").is_dir() and (tmp_path / "store" / "index.json").is_file()
    reopened = KeywordIndex(tmp_path / "store")
    monkeypatch.setattr(KeywordIndex, "_build", lambda self: pytest.fail("the saved index should be adopted"))
    assert snapshot(reopened) == before
    assert reopened.count() == 4


def test_reload_without_close_rebuilds_from_the_log(tmp_path: Path, index: KeywordIndex) -> None:
    """A crash before flush: the log has every change, the index is rebuilt identically."""
    before = snapshot(index)
    index.add([chunk("late", "late addition INV-2025-00417 mention", file_id="f5")])
    index.delete_ids(["slides"])
    after = snapshot(index)
    assert after != before
    assert snapshot(KeywordIndex(tmp_path / "store")) == after


@pytest.mark.parametrize(
    "damage",
    ["bm25s/data.csc.index.npy", "bm25s/vocab.index.json", "postings.npz", "index.json", "bm25s/params.index.json"],
)
def test_corrupt_or_missing_index_files_are_rebuilt(tmp_path: Path, index: KeywordIndex, damage: str, caplog) -> None:
    before = snapshot(index)
    index.close()
    target = tmp_path / "store" / damage
    assert target.exists()
    if damage == "index.json":
        target.unlink()
    else:
        data = target.read_bytes()
        half = len(data) // 2
        target.write_bytes(data[:half] + (b"\x00garbage" * len(data))[: len(data) - half])
    with caplog.at_level(logging.WARNING, logger="vistack.rag.keyword_index"):
        reopened = KeywordIndex(tmp_path / "store")
        assert snapshot(reopened) == before
    if damage != "index.json":
        assert "rebuilding it from the corpus log" in caplog.text
    reopened.close()
    assert snapshot(KeywordIndex(tmp_path / "store")) == before  # and saved again, cleanly


def test_missing_corpus_starts_empty_with_a_warning(tmp_path: Path, index: KeywordIndex, caplog) -> None:
    index.close()
    (tmp_path / "store" / "corpus.jsonl").unlink()
    with caplog.at_level(logging.WARNING, logger="vistack.rag.keyword_index"):
        reopened = KeywordIndex(tmp_path / "store")
        assert reopened.count() == 0
        assert reopened.search("invoice", 5) == []
    assert "corpus log" in caplog.text and "missing" in caplog.text
    assert not (tmp_path / "store" / "bm25s").exists()
    reopened.add([chunk("fresh", "fresh start")])
    assert ids(reopened.search("fresh", 5)) == ["fresh"]


def test_torn_and_corrupt_log_lines_are_skipped(tmp_path: Path, index: KeywordIndex, caplog) -> None:
    index.close()
    log_path = tmp_path / "store" / "corpus.jsonl"
    lines = log_path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines.insert(2, "{not json\n")
    log_path.write_text("".join(lines) + '{"op": "put", "id": "torn", "te', encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="vistack.rag.keyword_index"):
        reopened = KeywordIndex(tmp_path / "store")
        assert reopened.count() == len(INVOICES)
    assert "skipped 2 corrupt record" in caplog.text  # the bad line and the torn tail
    assert log_path.read_text(encoding="utf-8").endswith("\n")  # rewritten: new records start on a fresh line
    reopened.add([chunk("after", "written after recovery")])
    reopened.close()
    again = KeywordIndex(tmp_path / "store")
    assert again.count() == len(INVOICES) + 1
    assert ids(again.search("recovery", 1)) == ["after"]
    assert again.search("INV-2025-00417", 1)[0].chunk.id == "inv-417"


def test_changed_tokenizer_retokenises_from_text(tmp_path: Path, index: KeywordIndex) -> None:
    before = snapshot(index)
    index.close()
    log_path = tmp_path / "store" / "corpus.jsonl"
    lines = log_path.read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0])
    header["tokenizer"] = "some-older-tokenizer"
    records = [json.loads(line) for line in lines[1:]]
    for rec in records:
        rec["terms"] = "stale"  # what an older tokenizer might have produced
    log_path.write_text("\n".join(json.dumps(r) for r in [header, *records]) + "\n", encoding="utf-8")
    reopened = KeywordIndex(tmp_path / "store")
    assert snapshot(reopened) == before
    assert "stale" not in log_path.read_text(encoding="utf-8")


def test_flush_compacts_the_log(tmp_path: Path) -> None:
    ki = KeywordIndex(tmp_path / "s")
    for round_ in range(30):
        ki.add([chunk(f"c{i}", f"round{round_} token{i} shared") for i in range(60)])
        ki.search("shared", 1)  # each build adds round<n> to the vocabulary
    vocab_before = len(ki._vocab_list)
    expected = scored(ki.search("round29 token7 shared", 20))
    ki.flush()
    log_path = tmp_path / "s" / "corpus.jsonl"
    assert len(log_path.read_text(encoding="utf-8").splitlines()) == 1 + 60  # header + live records
    assert len(ki._vocab_list) < vocab_before  # round0..round28 are gone
    assert scored(ki.search("round29 token7 shared", 20)) == expected
    ki.close()
    assert scored(KeywordIndex(tmp_path / "s").search("round29 token7 shared", 20)) == expected


def test_add_after_reload_then_reload_again(tmp_path: Path, index: KeywordIndex) -> None:
    index.close()
    second = KeywordIndex(tmp_path / "store")
    second.add([chunk("extra", "extra INV-2025-00999 line", file_id="f1")])
    second.delete({"file_id": "f3"})
    expected = snapshot(second)
    second.close()
    third = KeywordIndex(tmp_path / "store")
    assert snapshot(third) == expected
    assert third.count() == len(INVOICES) - 1
    assert np.all(np.diff(third._term) >= 0)  # postings stay in CSC order
