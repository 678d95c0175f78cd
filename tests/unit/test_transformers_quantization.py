"""inline::transformers quantization (``quantization: 4bit | 8bit``): where it cannot work, a clear 503 naming the fix.

bitsandbytes quantizes on CUDA only and transformers needs accelerate to load a
quantized model. These tests run without a GPU: the CPU refusal goes through
the provider end to end; the package checks call the loader with the CUDA
device and stand-in modules, so they pass the same with or without the
packages installed.
"""

from __future__ import annotations

import asyncio
import sys
import types
from typing import Any

import pytest
from pydantic import ValidationError

from vistack.api import Model, ServiceUnavailableError
from vistack.api.inference import ChatCompletionRequest
from vistack.providers.inference.transformers import TransformersInferenceConfig, TransformersInferenceProvider
from vistack.providers.inference.transformers.loading import ModelLoader
from vistack.testing import tiny_model_dir


@pytest.fixture(scope="module")
def text_dir() -> str:
    return str(tiny_model_dir("llama"))


def _with_packages(monkeypatch: pytest.MonkeyPatch, **present: bool) -> None:
    """Make ``import NAME`` succeed (an empty stand-in module) or fail (ImportError), whatever is installed."""
    for name, ok in present.items():
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name) if ok else None)


def _refusal(loader: ModelLoader, device: str = "cuda") -> str:
    import torch

    with pytest.raises(ServiceUnavailableError) as info:
        loader._quantization("meta-llama/Llama-3.2-11B-Vision-Instruct", device, torch.bfloat16)
    assert info.value.status_code == 503 and info.value.code == "provider_misconfigured"
    return info.value.message


@pytest.mark.parametrize("bits", ["4bit", "8bit"])
def test_quantization_on_cpu_is_refused_with_the_fix(text_dir: str, bits: str) -> None:
    """Through the provider: the request gets a 503 saying CUDA is needed and how to turn quantization off."""

    async def go() -> Any:
        p = TransformersInferenceProvider(TransformersInferenceConfig(device="cpu", quantization=bits))
        await p.initialize()
        await p.register_model(Model(identifier="tiny", provider_resource_id=text_dir, provider_id="transformers"))
        try:
            with pytest.raises(ServiceUnavailableError) as info:
                await p.chat_completion(
                    ChatCompletionRequest(model=text_dir, messages=[{"role": "user", "content": "hi"}], max_tokens=2)
                )
            return info.value
        finally:
            await p.shutdown()

    error = asyncio.run(go())
    assert error.status_code == 503 and error.code == "provider_misconfigured"
    message = error.message
    assert f"quantization: {bits}" in message and "CUDA" in message and "device is cpu" in message
    assert "set quantization: none" in message and "Traceback" not in message


@pytest.mark.parametrize("device", ["cpu", "mps"])
def test_quantization_off_cuda_is_refused_before_any_package_check(monkeypatch, device: str) -> None:
    _with_packages(monkeypatch, bitsandbytes=True, accelerate=True)
    message = _refusal(ModelLoader(TransformersInferenceConfig(quantization="4bit")), device)
    assert f"device is {device}" in message and "set quantization: none" in message


@pytest.mark.parametrize(
    "present,needs,fix",
    [
        ({"bitsandbytes": False, "accelerate": False}, "bitsandbytes and accelerate", "pip install bitsandbytes accelerate"),
        ({"bitsandbytes": False, "accelerate": True}, "bitsandbytes,", "pip install bitsandbytes "),
        ({"bitsandbytes": True, "accelerate": False}, "accelerate,", "pip install accelerate "),
    ],
)
@pytest.mark.parametrize("bits", ["4bit", "8bit"])
def test_quantization_names_the_missing_packages_and_the_fix(monkeypatch, present, needs, fix, bits) -> None:
    _with_packages(monkeypatch, **present)
    message = _refusal(ModelLoader(TransformersInferenceConfig(quantization=bits)))
    assert f"quantization: {bits} needs {needs}" in message, message
    assert fix in message and "vistack[gpu]" in message and "set quantization: none" in message


def test_quantization_config_when_everything_is_there(monkeypatch) -> None:
    import torch

    _with_packages(monkeypatch, bitsandbytes=True, accelerate=True)
    four = ModelLoader(TransformersInferenceConfig(quantization="4bit"))._quantization("m", "cuda", torch.bfloat16)
    assert four.load_in_4bit and not four.load_in_8bit
    assert four.bnb_4bit_quant_type == "nf4" and four.bnb_4bit_compute_dtype == torch.bfloat16
    assert four.bnb_4bit_use_double_quant
    eight = ModelLoader(TransformersInferenceConfig(quantization="8bit"))._quantization("m", "cuda", torch.float16)
    assert eight.load_in_8bit and not eight.load_in_4bit


def test_quantization_values_are_checked_in_the_config() -> None:
    assert TransformersInferenceConfig().quantization == "none"
    with pytest.raises(ValidationError, match="quantization"):
        TransformersInferenceConfig(quantization="2bit")
