"""``CodeScannerSafetyProvider``: Meta's CodeShield (regex + semgrep rules) as a shield, as Llama Stack runs it.

Differences from Llama Stack's ``inline::code-scanner``, each so that the shield never passes silently:

* ``codeshield`` is imported lazily. Without it (or when it cannot load, e.g. no
  ``semgrep-core`` binary) the server still starts, ``health()`` reports ERROR
  naming what is missing, and every scan raises ``ServiceUnavailableError`` (503).
* The scan repeats ``CodeShield.scan_code`` (all languages, CodeShield's rule set)
  without its ``except Exception: return <clean result>``, so a scanner failure
  is a 503 instead of "no issues found".
* Before the first scan, two known-insecure canaries must be flagged, one per
  analyzer. semgrep >= 1.101 skips every target when CodeShield 1.0.1 passes
  ``--project-root /``, which silently disables all semgrep rules (eval, exec,
  pickle, ``shell=True``, SQL injection...); the canary turns that into a 503.
* semgrep rule ids arrive prefixed with the rules directory's path relative to
  the working directory; only the rule's own id is reported, so categories are
  stable across installs.

The scan itself runs on a worker thread with its own event loop: CodeShield's
regex pass and temp-file writes are blocking and would otherwise stall the server.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from vistack.api.datatypes import HealthResponse, HealthStatus
from vistack.api.errors import BadRequestError, ServiceUnavailableError
from vistack.api.inference import ChatMessage
from vistack.api.protocols import SafetyProvider
from vistack.api.safety import (
    ModerationObjectResults,
    RunShieldResponse,
    SafetyViolation,
    Shield,
    ViolationLevel,
)

from .config import ALLOWED_SHIELD_IDS, INSTALL_HINT, PROVIDER_TYPE, USER_MESSAGE, CodeScannerConfig

logger = logging.getLogger(__package__)

_CANARIES: tuple[tuple[str, str], ...] = (
    ("regex", 'import hashlib\nhashlib.md5(b"canary").hexdigest()\n'),
    ("semgrep", "import subprocess\nsubprocess.call(cmd, shell=True)\n"),
)
"""(analyzer, Python snippet it must flag). Separate snippets: in CodeShield mode a regex hit skips semgrep."""


@dataclass(frozen=True)
class Finding:
    """One CodeShield issue, reduced to what the wire results carry."""

    pattern_id: str
    description: str
    severity: str  # "error" | "warning" | ...
    analyzer: str  # "regex" | "semgrep"


@dataclass(frozen=True)
class ScanResult:
    """Findings (deduplicated by pattern id, in CodeShield's order) and CodeShield's recommended treatment."""

    findings: tuple[Finding, ...]

    @property
    def is_insecure(self) -> bool:
        return bool(self.findings)

    @property
    def treatment(self) -> str:
        """CodeShield's rule: BLOCK if any issue is error-severity, WARN otherwise (IGNORE when clean).

        Compared case-insensitively: semgrep issues carry ``"ERROR"`` where CodeShield's own check
        expects its ``Severity.ERROR`` (``"error"``), so ``scan_code`` never blocks on a semgrep finding.
        """
        if not self.findings:
            return "ignore"
        return "block" if any(f.severity == "error" for f in self.findings) else "warn"

    @property
    def violation_type(self) -> str:
        return ",".join(f.pattern_id for f in self.findings)

    def metadata(self) -> dict[str, Any]:
        return {"violation_type": self.violation_type, "recommended_treatment": self.treatment}


def _load_codeshield() -> SimpleNamespace:
    """Import CodeShield's detector, or raise ``ServiceUnavailableError`` saying what is missing.

    CodeShield's ``oss`` module (imported by the detector) looks up ``semgrep-core`` and symlinks it to
    ``osemgrep`` inside the semgrep package at import time, so a missing semgrep wheel fails here with a
    plain ``Exception`` and a read-only site-packages with ``PermissionError``, not an ``ImportError``.
    """
    try:
        from codeshield.insecure_code_detector import insecure_code_detector, languages
        from codeshield.insecure_code_detector.usecases import UseCase
    except ModuleNotFoundError as e:
        if e.name is None or e.name.split(".")[0] == "codeshield":
            raise ServiceUnavailableError(INSTALL_HINT) from e
        raise ServiceUnavailableError(f"codeshield cannot be imported: {e} (pip install codeshield)") from e
    except Exception as e:  # noqa: BLE001 - any import-time failure leaves the scanner unusable
        raise ServiceUnavailableError(f"codeshield cannot be imported: {type(e).__name__}: {e}") from e
    return SimpleNamespace(
        analyze=insecure_code_detector.analyze,
        languages=languages,
        usecase=UseCase.CODESHIELD,
    )


def _finding(issue: Any) -> Finding:
    raw_id = issue.pattern_id or issue.cwe_id or "unknown"
    return Finding(
        pattern_id=str(raw_id).rsplit(".", 1)[-1],
        description=str(issue.description or ""),
        severity=str(issue.severity or "").lower(),
        analyzer=str(issue.analyzer or "").lower(),
    )


async def _scan_in_loop(cs: SimpleNamespace, code: str, language: Any | None) -> ScanResult:
    langs = [language] if language is not None else cs.languages.get_supported_languages()
    per_lang = await asyncio.gather(*(cs.analyze(lang, code, usecase=cs.usecase) for lang in langs))
    seen: dict[str, Finding] = {}
    for issues in per_lang:
        for issue in issues or ():
            f = _finding(issue)
            seen.setdefault(f.pattern_id, f)
    return ScanResult(tuple(seen.values()))


async def _scan(cs: SimpleNamespace, code: str, language: Any | None = None) -> ScanResult:
    """Scan ``code`` (all CodeShield languages unless one is given) on a worker thread; errors propagate."""
    return await asyncio.to_thread(asyncio.run, _scan_in_loop(cs, code, language))


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class CodeScannerSafetyProvider(SafetyProvider):
    """Insecure-code shields (``code-scanner`` / ``code-shield``) backed by CodeShield."""

    config: CodeScannerConfig

    def __init__(self, config: CodeScannerConfig, deps: dict[Any, Any] | None = None) -> None:
        super().__init__(config, deps)
        self._cs: SimpleNamespace | None = None
        self._unusable: str | None = None  # why the scanner cannot run (sticky until restart)
        self._lock = asyncio.Lock()

    async def health(self) -> HealthResponse:
        """ERROR with the reason when CodeShield is missing or fails its canaries; runs them once if needed."""
        try:
            await self._scanner()
        except ServiceUnavailableError as e:
            return HealthResponse(status=HealthStatus.ERROR, message=e.message)
        return HealthResponse(
            status=HealthStatus.OK, message=f"codeshield {_version('codeshield')}, semgrep {_version('semgrep')}"
        )

    async def register_shield(self, shield: Shield) -> Shield:
        """Accept Llama Stack's ids only; a shield without one takes its identifier (as Llama Stack's routing does).

        Does not touch CodeShield: a missing install must not stop registration at startup.
        """
        rid = shield.provider_resource_id or shield.identifier
        if rid not in ALLOWED_SHIELD_IDS:
            raise BadRequestError(
                f"Shield '{shield.identifier}' ({PROVIDER_TYPE}): unsupported code scanner id '{rid}'. "
                f"Allowed ids: {', '.join(ALLOWED_SHIELD_IDS)}.",
                param="provider_shield_id",
            )
        return shield if rid == shield.provider_resource_id else shield.model_copy(update={"provider_resource_id": rid})

    async def run_shield(self, shield: Shield, messages: list[ChatMessage]) -> RunShieldResponse:
        """Scan all messages' text joined by newlines (Llama Stack's rule); any CodeShield issue is a violation.

        Flags on ``is_insecure`` whatever the treatment (WARN or BLOCK), as Llama Stack does; the
        treatment travels in ``metadata.recommended_treatment``.
        """
        result = await self._scan_text("\n".join(m.text() for m in messages))
        if not result.is_insecure:
            return RunShieldResponse()
        return RunShieldResponse(
            violation=SafetyViolation(
                violation_level=ViolationLevel.error, user_message=USER_MESSAGE, metadata=result.metadata()
            )
        )

    async def run_moderation(self, shield: Shield, inputs: list[str]) -> list[ModerationObjectResults]:
        """One result per input, in order; each finding's pattern id is a category, scored 1.0.

        A scanner failure on any input is a 503 naming it (Llama Stack returns a clean result instead).
        """
        cs = await self._scanner()
        return [_moderation_result(await self._scan_text(text, cs, f"input {i}")) for i, text in enumerate(inputs)]

    # -- internals ------------------------------------------------------------------------------------

    async def _scan_text(self, text: str, cs: SimpleNamespace | None = None, where: str = "the messages") -> ScanResult:
        """CodeShield's findings for ``text``; a scanner error is a 503 naming ``where`` and the error."""
        cs = cs or await self._scanner()
        if not text.strip():
            return ScanResult(())
        try:
            return await _scan(cs, text)
        except Exception as e:  # noqa: BLE001 - reported, never read as "clean"
            logger.exception("CodeShield scan failed")
            raise ServiceUnavailableError(f"code scanner failed on {where}: {type(e).__name__}: {e}") from e

    async def _scanner(self) -> SimpleNamespace:
        """CodeShield, imported and canary-checked once; the reason it is unusable otherwise (503)."""
        if self._cs is not None:
            return self._cs
        async with self._lock:
            if self._cs is None:
                if self._unusable is None:
                    try:
                        cs = _load_codeshield()
                        await self._self_check(cs)
                    except ServiceUnavailableError as e:
                        self._unusable = e.message
                        logger.error("%s unusable: %s", PROVIDER_TYPE, e.message)
                    else:
                        self._cs = cs
                if self._unusable is not None:
                    raise ServiceUnavailableError(self._unusable)
        assert self._cs is not None
        return self._cs

    @staticmethod
    async def _self_check(cs: SimpleNamespace) -> None:
        """Each analyzer must flag its canary, or semgrep (or the rules) are silently not running."""
        python = cs.languages.Language.PYTHON
        for analyzer, snippet in _CANARIES:
            try:
                result = await _scan(cs, snippet, python)
            except Exception as e:  # noqa: BLE001
                raise ServiceUnavailableError(f"codeshield self-check failed: {type(e).__name__}: {e}") from e
            if not any(f.analyzer == analyzer for f in result.findings):
                hint = (
                    f" (semgrep {_version('semgrep')} installed; semgrep >= 1.101 skips the files CodeShield "
                    f"1.0.1 scans: pip install 'semgrep>1.68,<1.101')"
                    if analyzer == "semgrep"
                    else ""
                )
                raise ServiceUnavailableError(
                    f"codeshield self-check failed: its {analyzer} analyzer did not flag a known-insecure snippet{hint}"
                )


def _moderation_result(result: ScanResult) -> ModerationObjectResults:
    """Llama Stack's shape: pattern ids as categories when insecure, empty maps when clean."""
    if not result.is_insecure:
        return ModerationObjectResults(
            flagged=False, categories={}, category_scores={}, category_applied_input_types={}, metadata={}
        )
    ids = [f.pattern_id for f in result.findings]
    descriptions = ", ".join(f.description for f in result.findings)
    return ModerationObjectResults(
        flagged=True,
        categories=dict.fromkeys(ids, True),
        category_scores=dict.fromkeys(ids, 1.0),
        category_applied_input_types={i: ["text"] for i in ids},
        user_message=f"Security concerns detected in the code. {result.treatment.upper()}: {descriptions}",
        metadata=result.metadata(),
    )
