"""``inline::code-scanner``: never passes silently without CodeShield; flags insecure code with it.

The first half runs everywhere (CodeShield hidden, or replaced by a fake). The
second half needs ``codeshield`` with a working semgrep (``semgrep>1.68,<1.101``)
and is skipped when it cannot be imported.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from vistack.api.datatypes import HealthStatus
from vistack.api.errors import BadRequestError, ServiceUnavailableError
from vistack.api.inference import ChatMessage
from vistack.api.safety import Shield, ViolationLevel
from vistack.providers.safety.code_scanner import CodeScannerConfig, CodeScannerSafetyProvider
from vistack.providers.safety.code_scanner import provider as provider_mod
from vistack.providers.safety.code_scanner.config import INSTALL_HINT, USER_MESSAGE

INSECURE = 'import hashlib\nhashlib.md5(b"x").hexdigest()\n'
SHELL = "import subprocess\nsubprocess.call(user_cmd, shell=True)\n"
SAFE = "def add(a: int, b: int) -> int:\n    return a + b\n"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _shield(rid: str | None = "code-scanner", identifier: str = "code-scanner") -> Shield:
    return Shield(identifier=identifier, provider_resource_id=rid, provider_id="code-scanner")


async def _provider() -> CodeScannerSafetyProvider:
    p = CodeScannerSafetyProvider(CodeScannerConfig(), {})
    await p.initialize()
    return p


# -- without CodeShield ---------------------------------------------------------------------------


@pytest.fixture
def no_codeshield(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make ``import codeshield...`` fail as if it were not installed (even when it is)."""
    for name in [n for n in sys.modules if n == "codeshield" or n.startswith("codeshield.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "codeshield", None)
    yield


@pytest.mark.anyio
@pytest.mark.usefixtures("no_codeshield")
async def test_absent_health_names_the_install() -> None:
    p = await _provider()  # the server starts
    health = await p.health()
    assert health.status == HealthStatus.ERROR
    assert health.message == INSTALL_HINT


@pytest.mark.anyio
@pytest.mark.usefixtures("no_codeshield")
async def test_absent_scans_are_503_not_clean() -> None:
    p = await _provider()
    shield = await p.register_shield(_shield())  # registration does not need CodeShield
    with pytest.raises(ServiceUnavailableError) as e:
        await p.run_shield(shield, [ChatMessage(role="assistant", content=INSECURE)])
    assert e.value.status_code == 503 and e.value.message == INSTALL_HINT
    with pytest.raises(ServiceUnavailableError, match="pip install codeshield"):
        await p.run_moderation(shield, ["x = 1"])


@pytest.mark.anyio
async def test_register_rejects_unknown_ids() -> None:
    p = await _provider()
    with pytest.raises(BadRequestError) as e:
        await p.register_shield(_shield("llama-guard"))
    assert "code-scanner" in e.value.message and "code-shield" in e.value.message
    assert e.value.status_code == 400
    assert (await p.register_shield(_shield("code-shield"))).provider_resource_id == "code-shield"
    # no provider_shield_id: the identifier stands in for it, as in Llama Stack's routing table
    filled = await p.register_shield(_shield(None, identifier="code-scanner"))
    assert filled.provider_resource_id == "code-scanner"
    with pytest.raises(BadRequestError):
        await p.register_shield(_shield(None, identifier="my-shield"))


# -- with a fake CodeShield: the failure paths a real install rarely shows ----------------------------


def _issue(pattern_id: str, analyzer: str) -> SimpleNamespace:
    return SimpleNamespace(
        pattern_id=pattern_id, cwe_id="CWE-0", description=f"{pattern_id} found", severity="warning", analyzer=analyzer
    )


def _fake(analyze: Any) -> SimpleNamespace:
    langs = SimpleNamespace(Language=SimpleNamespace(PYTHON="python"), get_supported_languages=lambda: ["python"])
    return SimpleNamespace(analyze=analyze, languages=langs, usecase="codeshield")


async def _canaries_pass(language: str, code: str, usecase: str) -> list[SimpleNamespace]:
    if "md5" in code:
        return [_issue("weak-md5-hashing", "regex")]
    if "shell=True" in code:
        return [_issue("rules.semgrep._generated_.insecure-subprocess-using-shell", "semgrep")]
    if "boom" in code:
        raise RuntimeError("semgrep-core crashed")
    return []


@pytest.mark.anyio
async def test_semgrep_silently_off_is_unhealthy(monkeypatch: pytest.MonkeyPatch) -> None:
    """semgrep >= 1.101 scans nothing under CodeShield 1.0.1: regex hits only. That must not look healthy."""

    async def regex_only(language: str, code: str, usecase: str) -> list[SimpleNamespace]:
        return [_issue("weak-md5-hashing", "regex")] if "md5" in code else []

    monkeypatch.setattr(provider_mod, "_load_codeshield", lambda: _fake(regex_only))
    p = await _provider()
    health = await p.health()
    assert health.status == HealthStatus.ERROR
    assert "semgrep" in (health.message or "") and "<1.101" in (health.message or "")
    with pytest.raises(ServiceUnavailableError, match="self-check"):
        await p.run_shield(_shield(), [ChatMessage(role="user", content=SAFE)])


@pytest.mark.anyio
async def test_scanner_error_is_503_naming_the_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(provider_mod, "_load_codeshield", lambda: _fake(_canaries_pass))
    p = await _provider()
    assert (await p.health()).status == HealthStatus.OK
    with pytest.raises(ServiceUnavailableError) as e:
        await p.run_moderation(_shield(), ["x = 1", "boom()"])
    assert "input 1" in e.value.message and "semgrep-core crashed" in e.value.message


@pytest.mark.anyio
async def test_semgrep_rule_ids_lose_their_path_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(provider_mod, "_load_codeshield", lambda: _fake(_canaries_pass))
    p = await _provider()
    [result] = await p.run_moderation(_shield(), [SHELL])
    assert result.categories == {"insecure-subprocess-using-shell": True}


# -- with the real CodeShield ---------------------------------------------------------------------


@pytest.fixture
def codeshield() -> None:
    try:
        import codeshield.cs  # noqa: F401 - also fails (not ImportError) when semgrep-core is missing
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"codeshield not importable: {type(e).__name__}: {e}")


@pytest.mark.anyio
@pytest.mark.usefixtures("codeshield")
async def test_real_flags_insecure_and_passes_safe() -> None:
    p = await _provider()
    assert (await p.health()).status == HealthStatus.OK
    shield = await p.register_shield(_shield())

    bad = await p.run_shield(
        shield,
        [
            ChatMessage(role="user", content="hash it"),
            ChatMessage(role="assistant", content=f"```python\n{INSECURE}```"),
        ],
    )
    assert bad.violation is not None
    assert bad.violation.violation_level == ViolationLevel.error
    assert bad.violation.user_message == USER_MESSAGE
    assert "md5" in bad.violation.metadata["violation_type"]
    assert bad.violation.metadata["recommended_treatment"] in ("warn", "block")

    good = await p.run_shield(shield, [ChatMessage(role="assistant", content=SAFE)])
    assert good.violation is None


@pytest.mark.anyio
@pytest.mark.usefixtures("codeshield")
async def test_real_moderation_one_result_per_input_in_order() -> None:
    p = await _provider()
    results = await p.run_moderation(_shield(), [SAFE, INSECURE, SHELL, ""])
    assert [r.flagged for r in results] == [False, True, True, False]
    assert results[0].categories == {} and results[0].user_message is None
    md5 = results[1]
    assert md5.categories and all(md5.categories.values())
    assert set(md5.category_scores.values()) == {1.0}
    assert all(v == ["text"] for v in md5.category_applied_input_types.values())
    assert md5.user_message.startswith("Security concerns detected in the code. ")
    assert md5.metadata["violation_type"] == ",".join(md5.categories)
    # semgrep-only rule: proves the semgrep analyzer really ran
    assert "insecure-subprocess-using-shell" in results[2].categories
