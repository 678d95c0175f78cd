"""Provider registry: built-in specs, external providers, config errors, redaction."""

from __future__ import annotations

import sys
import textwrap

import pytest
from pydantic import BaseModel, SecretStr

from vistack.api import Api, ConfigError
from vistack.config import parse_distribution
from vistack.registry import BUILTIN_SPECS, ProviderRegistry, redact
from vistack.stack import Stack

EXTERNAL = textwrap.dedent(
    '''
    from pydantic import BaseModel
    from vistack.api import Api, InferenceProvider
    from vistack.api.inference import EmbeddingsResponse, EmbeddingData
    from vistack.registry import ProviderSpec

    class EchoConfig(BaseModel):
        dim: int = 3

    class EchoEmbeddings(InferenceProvider):
        async def embeddings(self, request):
            return EmbeddingsResponse(model=request.model, data=[
                EmbeddingData(embedding=[float(len(t))] * self.config.dim, index=i)
                for i, t in enumerate(request.texts())])

    def get_provider_spec():
        return ProviderSpec(api=Api.inference, provider_type="remote::echo", module=__name__,
                            provider_class="EchoEmbeddings", config_class="EchoConfig")
    '''
)


def _dist(providers, models=()):
    return parse_distribution({
        "version": 2, "distro_name": "t", "apis": ["inference"], "providers": {"inference": providers},
        "models": list(models), "storage": {"state_dir": "/tmp/vistack-test-unused"},
    }, where="t.yaml", env={})


def test_builtin_types_import_lazily_and_configs_validate():
    types = {s.provider_type for s in BUILTIN_SPECS}
    assert {"inline::transformers", "inline::sentence-transformers", "remote::vllm", "remote::ollama", "remote::openai"} <= types
    for spec in BUILTIN_SPECS:
        assert issubclass(spec.load_config_class(), BaseModel)
        assert spec.load_provider_class().api == spec.api


def test_provider_modules_do_not_import_torch():
    import subprocess

    code = (
        "import sys\n"
        "from vistack.registry import BUILTIN_SPECS\n"
        "for s in BUILTIN_SPECS: s.load_provider_class(); s.load_config_class()\n"
        "import vistack.server.app\n"
        "bad = [m for m in ('torch', 'transformers', 'sentence_transformers', 'chromadb') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == ""


def test_unknown_provider_type_lists_known():
    with pytest.raises(ConfigError) as e:
        ProviderRegistry().get(Api.inference, "remote::nope")
    assert "remote::vllm" in str(e.value) and "module" in str(e.value)


def test_bad_provider_config_names_key_path():
    stack = Stack(_dist([{"provider_id": "v", "provider_type": "remote::vllm", "config": {"url": "http://x/v1", "timeout": "soon"}}]))
    with pytest.raises(ConfigError) as e:
        stack.build()
    msg = str(e.value)
    assert "t.yaml" in msg and "providers.inference[v].config.timeout" in msg


def test_external_provider_from_module(tmp_path, monkeypatch):
    (tmp_path / "my_echo_provider.py").write_text(EXTERNAL)
    monkeypatch.syspath_prepend(str(tmp_path))
    stack = Stack(_dist([{"provider_id": "echo", "provider_type": "remote::echo", "module": "my_echo_provider",
                          "config": {"dim": 5}}]))
    stack.build()
    handle = stack.providers["echo"]
    assert handle.spec.provider_type == "remote::echo"
    assert handle.instance.config.dim == 5
    assert handle.instance.provider_id == "echo"


def test_external_module_errors(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="cannot be imported"):
        Stack(_dist([{"provider_id": "x", "provider_type": "remote::x", "module": "no_such_mod_xyz"}])).build()
    (tmp_path / "mod_without_spec.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match="get_provider_spec"):
        Stack(_dist([{"provider_id": "x", "provider_type": "remote::x", "module": "mod_without_spec"}])).build()


def test_redact_hides_secrets():
    class C(BaseModel):
        url: str = "http://engine"
        api_key: SecretStr | None = SecretStr("s3cret")
        headers: dict = {"Authorization": "x", "x-api_key": "y", "plain": "z"}

    out = redact(C())
    assert out["url"] == "http://engine"
    assert out["api_key"] == "********"
    assert out["headers"]["x-api_key"] == "********" and out["headers"]["Authorization"] == "********"
    assert out["headers"]["plain"] == "z"
    assert "s3cret" not in repr(out)
