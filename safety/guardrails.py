"""What the agent loop calls to enforce guardrails on one response.

Three places, each with its own shields (distribution defaults plus the
request's ``guardrails``, which Llama Stack applies to input and output):

- **input**: the user's turn (text and images) before any model or tool runs;
  a violation ends the response with a refusal and no inference at all.
- **retrieved**: every retrieved page (its chunks' text, OCR included, and
  optionally its image) before the model sees it, because in document
  question answering the documents are an attack surface; a flagged page is
  dropped from the sources, the others are used.
- **output**: the answer, judged in the conversation (Llama Guard checks the
  ``Agent`` role), before the client sees it; a violation replaces it with a
  refusal. Streaming holds text back until it is checked (see
  ``GuardrailDefaults.stream_window_chars``).

Shields of one stage run concurrently; a shield that cannot run fails the
response (503), never waves content through.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from vistack.api import BadRequestError, NotFoundError
from vistack.api.inference import ChatMessage, ImageContentPart, ImageURL, TextContentPart
from vistack.api.responses import GuardrailResult, ModerationError, ModerationResult, ResponseModeration
from vistack.config import GuardrailDefaults

from .service import SafetyService, ShieldOutcome

REFUSAL_FALLBACK = "I can't answer that. Can I help with something else?"


def requested_shield_ids(guardrails: list[str | dict[str, Any]] | None) -> list[str]:
    """Shield ids from a request's ``guardrails`` (ids or Llama Stack's ``{"type": id}`` specs)."""
    ids: list[str] = []
    for i, g in enumerate(guardrails or []):
        sid = g if isinstance(g, str) else g.get("type") if isinstance(g, dict) else None
        if not isinstance(sid, str) or not sid:
            raise BadRequestError(f"guardrails[{i}] must be a shield id or {{\"type\": shield_id}}; got {g!r}",
                                  param="guardrails")
        ids.append(sid)
    return list(dict.fromkeys(ids))


@dataclass
class ScreenItem:
    """One retrieved page to screen: its text and, when images are screened, its image as a data URL."""

    key: int
    text: str
    image_url: str | None = None
    file_id: str | None = None
    filename: str | None = None
    page: int | None = None


@dataclass
class Guardrails:
    service: SafetyService
    input: list[str]
    output: list[str]
    retrieved: list[str]
    screen_page_images: bool = False
    stream_window_chars: int = 0
    results: list[GuardrailResult] = field(default_factory=list)
    stages: dict[str, ModerationResult] = field(default_factory=dict)  # "input" / "output" -> what was found
    guard_seconds: float = 0.0

    @classmethod
    def plan(cls, service: SafetyService, defaults: GuardrailDefaults,
             requested: list[str | dict[str, Any]] | None) -> Guardrails:
        """Distribution defaults plus the request's shields (on input and output); unknown ids are a 400."""
        extra = requested_shield_ids(requested)
        for sid in extra:
            try:
                service.get_shield(sid)
            except NotFoundError:
                known = ", ".join(s.identifier for s in service.list_shields()) or "none"
                raise BadRequestError(f"No shield found with identifier '{sid}' (guardrails); shields: {known}",
                                      param="guardrails") from None
        return cls(service, input=_merged(defaults.input, extra), output=_merged(defaults.output, extra),
                   retrieved=list(defaults.retrieved), screen_page_images=defaults.screen_page_images,
                   stream_window_chars=defaults.stream_window_chars)

    @property
    def active(self) -> bool:
        return bool(self.input or self.output or self.retrieved)

    # ----- stages -----------------------------------------------------------------------------------

    async def check_input(self, messages: list[ChatMessage]) -> GuardrailResult | None:
        return await self._check("input", self.input, _conversation(messages))

    async def check_output(self, messages: list[ChatMessage], answer: str) -> GuardrailResult | None:
        if not answer.strip():
            return None
        return await self._check("output", self.output,
                                 [*_conversation(messages), ChatMessage(role="assistant", content=answer)])

    async def screen(self, items: list[ScreenItem]) -> set[int]:
        """Keys of the retrieved items a ``retrieved`` shield flagged (all shields, all items, concurrently)."""
        if not self.retrieved or not items:
            return set()
        checks = [self._timed(self.service.check(self.retrieved, [_screen_message(item, self.screen_page_images)]))
                  for item in items]
        flagged: set[int] = set()
        for item, outcomes in zip(items, await asyncio.gather(*checks), strict=True):
            for outcome in outcomes:
                if outcome.blocks:
                    flagged.add(item.key)
                    self.results.append(_result("retrieved", outcome, "dropped", file_id=item.file_id,
                                                filename=item.filename, page=item.page))
        return flagged

    # ----- helpers ----------------------------------------------------------------------------------

    async def _check(self, stage: str, shield_ids: list[str], messages: list[ChatMessage]) -> GuardrailResult | None:
        if not shield_ids or not messages:
            return None
        outcomes = await self._timed(self.service.check(shield_ids, messages))
        blocking = [o for o in outcomes if o.blocks]
        for o in blocking:
            self.results.append(_result(stage, o, "refused"))
        self.stages[stage] = self._moderation(outcomes, blocking, messages)
        return self.results[-len(blocking)] if blocking else None

    def _moderation(self, outcomes: list[ShieldOutcome], blocking: list[ShieldOutcome],
                    messages: list[ChatMessage]) -> ModerationResult:
        """OpenAI's per-stage result: the categories the flagging shields named (their violation type when
        they name none), scored 1.0, on the input types the judged turn had."""
        names: list[str] = []
        for o in blocking:
            meta = o.violation.metadata if o.violation else {}
            found = meta.get("categories") or [str(meta.get("violation_type") or o.shield_id)]
            names += [str(n) for n in found]
        names = list(dict.fromkeys(names))
        kinds = ["text"] + (["image"] if messages and messages[-1].images() else [])
        shown = blocking or outcomes
        model = ", ".join(self.service.get_shield(o.shield_id).provider_resource_id or o.shield_id for o in shown)
        return ModerationResult(model=model, flagged=bool(blocking), categories=dict.fromkeys(names, True),
                                category_scores=dict.fromkeys(names, 1.0),
                                category_applied_input_types={n: kinds for n in names})

    def response_moderation(self) -> ResponseModeration | None:
        """``response.moderation`` once the response ended (None when no input or output shield ran)."""
        if not self.stages:
            return None
        missing = {
            "input": ModerationError(code="not_moderated", message="no input shield ran for this response"),
            "output": ModerationError(code="not_moderated", message="no output was moderated: the input was refused, "
                                      "the response produced no text, or no output shield is configured"),
        }
        return ResponseModeration(input=self.stages.get("input", missing["input"]),
                                  output=self.stages.get("output", missing["output"]))

    async def _timed(self, check: Any) -> list[ShieldOutcome]:
        outcomes = await check
        self.guard_seconds += max((o.seconds for o in outcomes), default=0.0)
        return outcomes


def refusal_text(result: GuardrailResult) -> str:
    return result.user_message or REFUSAL_FALLBACK


def _merged(defaults: list[str], extra: list[str]) -> list[str]:
    return list(dict.fromkeys([*defaults, *extra]))


def _conversation(messages: list[ChatMessage]) -> list[ChatMessage]:
    """The turns a guard judges: user, assistant and tool messages (instructions are not conversation)."""
    return [m for m in messages if m.role in ("user", "assistant", "tool") and (m.text() or m.images())]


def _screen_message(item: ScreenItem, with_image: bool) -> ChatMessage:
    parts: list[Any] = []
    if with_image and item.image_url:
        parts.append(ImageContentPart(image_url=ImageURL(url=item.image_url)))
    parts.append(TextContentPart(text=item.text))
    return ChatMessage(role="user", content=parts)


def _result(stage: str, outcome: ShieldOutcome, action: str, **where: Any) -> GuardrailResult:
    v = outcome.violation
    return GuardrailResult(stage=stage, shield_id=outcome.shield_id, action=action,  # type: ignore[arg-type]
                           violation_type=(v.metadata or {}).get("violation_type") if v else None,
                           user_message=v.user_message if v else None, **where)
