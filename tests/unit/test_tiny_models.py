"""The tiny offline fixtures: deterministic, reloadable through the Auto classes, and able to generate with an image."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from vistack.testing import build_tiny_mllama, build_tokenizer, tiny_model_dir
from vistack.testing.tiny_models import IMAGE, TEXT_SPECIAL_TOKENS, TINY_IMAGE_SIZE


def _digest(path: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.iterdir())}


def test_tokenizer_round_trips_any_text_and_knows_llama3_tokens() -> None:
    tok = build_tokenizer()
    text = 'Revenue grew 12% in Q3 — naïve café 東京 🚀\n\t{"a": [1, 2]}'
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text
    for t in [*TEXT_SPECIAL_TOKENS, IMAGE]:
        assert len(tok(t, add_special_tokens=False)["input_ids"]) == 1, t
    assert tok("hi")["input_ids"][0] == tok.convert_tokens_to_ids("<|begin_of_text|>")
    assert tok.eos_token == "<|eot_id|>" and tok.pad_token == "<|finetune_right_pad_id|>"


def test_build_is_deterministic_and_consistent(tmp_path: Path) -> None:
    a = tiny_model_dir("mllama")
    b = build_tiny_mllama(tmp_path / "b")
    assert _digest(a) == _digest(b)

    config = json.loads((b / "config.json").read_text())
    tokenizer = json.loads((b / "tokenizer.json").read_text())
    added = {t["content"]: t["id"] for t in tokenizer["added_tokens"]}
    assert config["image_token_index"] == added[IMAGE] == config["text_config"]["vocab_size"]
    assert added["<|eot_id|>"] in config["text_config"]["eos_token_id"]
    generation = json.loads((b / "generation_config.json").read_text())
    assert added["<|eot_id|>"] in generation["eos_token_id"]
    assert generation["pad_token_id"] == added["<|finetune_right_pad_id|>"]
    processor = json.loads((b / "processor_config.json").read_text())["image_processor"]
    assert processor["size"] == {"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE}
    assert config["vision_config"]["image_size"] == TINY_IMAGE_SIZE
    assert processor["max_image_tiles"] == config["vision_config"]["max_num_tiles"]


def test_reload_and_generate_with_an_image() -> None:
    import torch
    from PIL import Image
    from transformers import AutoProcessor, MllamaForConditionalGeneration

    path = tiny_model_dir("mllama")
    processor = AutoProcessor.from_pretrained(path, local_files_only=True)
    model = MllamaForConditionalGeneration.from_pretrained(path, local_files_only=True).eval()
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is this chart?"}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    assert prompt.startswith("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n<|image|>")
    assert prompt.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    image = Image.new("RGB", (300, 120), "navy")
    inputs = processor(images=[[image]], text=[prompt], add_special_tokens=False, return_tensors="pt")
    assert inputs["pixel_values"].shape[-2:] == (TINY_IMAGE_SIZE, TINY_IMAGE_SIZE)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert out.shape[1] > inputs["input_ids"].shape[1]


def test_text_model_generates() -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = tiny_model_dir("llama")
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True).eval()
    ids = tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=3, do_sample=False)
    assert out.shape[1] > ids["input_ids"].shape[1]


def test_template_refuses_system_with_images_like_the_real_one() -> None:
    from jinja2.exceptions import TemplateError

    tok = build_tokenizer()
    with pytest.raises(TemplateError, match="incompatible with system messages"):
        tok.apply_chat_template(
            [{"role": "system", "content": "x"}, {"role": "user", "content": [{"type": "image"}]}], tokenize=False
        )


def test_cli_writes_a_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vistack.testing.__main__ import main

    assert main(["tiny-mllama", str(tmp_path / "vision"), "--quiet"]) == 0
    assert Path(capsys.readouterr().out.strip()) == (tmp_path / "vision").resolve()
    assert (tmp_path / "vision" / "processor_config.json").is_file()
    # the real entry point, once, in a fresh interpreter
    out = subprocess.run(
        [sys.executable, "-m", "vistack.testing", "tiny-llama", str(tmp_path / "text"), "--quiet"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(out.stdout.strip()) == (tmp_path / "text").resolve()
    assert (tmp_path / "text" / "model.safetensors").is_file()
