"""Cross-encoder reranking mechanics with a tiny random cross-encoder built here (never its judgement)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vistack.api import ServiceUnavailableError
from vistack.api.protocols import ScoredChunk, StoredChunk
from vistack.rag.rerank import CrossEncoderReranker

pytestmark = pytest.mark.timeout(120)

TEXTS = [
    "quarterly revenue grew in the third quarter",
    "the invoice total is due next month",
    "a dashboard chart of monthly sales",
    "scanned form with a signature",
    "slide deck about hiring plans",
    "table of costs by region",
    "unrelated text",
]


def build_tiny_cross_encoder(path: Path) -> Path:
    """A 1-layer random BERT with one label and a small WordPiece tokenizer, saved like a real cross-encoder."""
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(TEXTS * 2, trainers.WordPieceTrainer(vocab_size=200, special_tokens=specials))
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tok.decoder = decoders.WordPiece()
    BertTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=64,
    ).save_pretrained(path)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        num_labels=1,
    )
    model = BertForSequenceClassification(config)
    with torch.no_grad():  # spread the scores so the order is clear of float noise
        model.classifier.weight.normal_(0.0, 5.0)
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_cross_encoder(tmp_path_factory.mktemp("tiny-cross-encoder") / "model")


@pytest.fixture(scope="module")
def reranker(model_dir: Path) -> CrossEncoderReranker:
    return CrossEncoderReranker(str(model_dir), batch_size=3)


def hits() -> list[ScoredChunk]:
    return [
        ScoredChunk(chunk=StoredChunk(id=f"c{i}", text=t, metadata={"i": i}), score=100.0 - i)
        for i, t in enumerate(TEXTS)
    ]


def test_loads_lazily(model_dir: Path) -> None:
    r = CrossEncoderReranker(str(model_dir))
    assert not r.loaded
    assert r.rerank("q", [], 3) == []
    assert not r.loaded  # nothing to score, nothing loaded


def test_order_follows_the_cross_encoder_scores(reranker: CrossEncoderReranker) -> None:
    query = "revenue chart"
    results = reranker.rerank(query, hits(), top_n=None)
    model = reranker.load()
    raw = model.predict([(query, t) for t in TEXTS], show_progress_bar=False)
    expected = sorted(range(len(TEXTS)), key=lambda i: -float(raw[i]))
    assert [r.chunk.id for r in results] == [f"c{i}" for i in expected]
    assert [r.score for r in results] == pytest.approx([float(raw[i]) for i in expected], rel=1e-5)
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)
    assert len({round(r.score, 6) for r in results}) > 1  # the scores really come from the model
    assert all(r.chunk.metadata == {"i": int(r.chunk.id[1:])} for r in results)  # chunks kept whole


def test_top_n(reranker: CrossEncoderReranker) -> None:
    full = reranker.rerank("invoice", hits(), top_n=None)
    top3 = reranker.rerank("invoice", hits(), top_n=3)
    assert [r.chunk.id for r in top3] == [r.chunk.id for r in full[:3]]
    assert len(reranker.rerank("invoice", hits(), top_n=100)) == len(TEXTS)
    assert reranker.rerank("invoice", hits(), top_n=0) == []


def test_missing_model_is_a_clear_503(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    r = CrossEncoderReranker(str(missing))
    with pytest.raises(ServiceUnavailableError) as err:
        r.rerank("q", hits(), 2)
    assert str(missing) in err.value.message and "cross-encoder" in err.value.message
    assert err.value.status_code == 503
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    with pytest.raises(ServiceUnavailableError, match="config.json"):
        CrossEncoderReranker(str(empty_dir)).rerank("q", hits(), 2)


def test_unloadable_model_names_the_path(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ServiceUnavailableError) as err:
        CrossEncoderReranker(str(broken)).rerank("q", hits(), 2)
    assert str(broken) in err.value.message
