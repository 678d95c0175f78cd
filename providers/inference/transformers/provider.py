"""``TransformersInferenceProvider``: the provider API, wiring loading, prompting, generation and responses."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from typing import Any

from vistack.api import (
    BadRequestError,
    HealthResponse,
    HealthStatus,
    InferenceProvider,
    Model,
    ModelNotFoundError,
    ModelType,
)
from vistack.api.inference import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Completion,
    CompletionRequest,
    EmbeddingsRequest,
    EmbeddingsResponse,
)

from .config import PROVIDER_TYPE, TransformersInferenceConfig
from .decoding import ChoiceOutcome, LogprobRequest
from .generation import Decoding, Outcome, generate, score_prompts, stream_pieces
from .loading import Loaded, ModelLoader
from .prompting import Prepared, PromptBuilder, prepare_completion
from .responses import chat_response, completion_response, stream_chat, stream_completion
from .sampling import sampling_for
from .structured import GrammarCompilers, GrammarSpec, grammar_spec, tool_call_spec
from .tool_calls import active_tools
from .worker import Slot


class TransformersInferenceProvider(InferenceProvider):
    """Serves registered models with transformers ``generate``; loads each lazily, once."""

    config: TransformersInferenceConfig

    def __init__(self, config: TransformersInferenceConfig, deps: dict | None = None) -> None:
        super().__init__(config, deps)
        self._slots: dict[str, Slot] = {}
        self._initialized = False
        self._loader = ModelLoader(config)
        self._prompts = PromptBuilder(config)
        self._grammars = GrammarCompilers(config.grammar_cache_mb * 2**20)

    # -- lifecycle ------------------------------------------------------------------------------------

    async def initialize(self) -> None:
        """Never loads synchronously and never fails for missing weights (health reports it)."""
        self._initialized = True
        if self.config.preload:
            for slot in self._slots.values():
                slot.start_preload(self._loader.load)

    async def shutdown(self) -> None:
        for slot in list(self._slots.values()):
            slot.free()
        self._slots.clear()

    async def health(self) -> HealthResponse:
        if not self._slots:
            return HealthResponse(status=HealthStatus.OK, message="no models registered")
        problems, states = [], []
        for rid, slot in self._slots.items():
            if slot.loaded is not None:
                states.append(f"{rid}: loaded ({slot.loaded.architecture} on {slot.loaded.device})")
                continue
            problem = slot.error.message if slot.error else await asyncio.to_thread(self._loader.precheck, rid)
            if problem:
                problems.append(problem)
            else:
                states.append(f"{rid}: not loaded yet")
        if problems:
            return HealthResponse(status=HealthStatus.ERROR, message=" | ".join(problems))
        return HealthResponse(status=HealthStatus.OK, message="; ".join(states))

    # -- models ---------------------------------------------------------------------------------------

    async def list_models(self) -> list[Model] | None:
        return None  # models come from the distribution

    async def register_model(self, model: Model) -> Model:
        """Remember the model (cheap); weights load on first use, or now in the background with preload."""
        if model.model_type != ModelType.llm:
            raise BadRequestError(
                f"{PROVIDER_TYPE} serves LLMs; model '{model.identifier}' has model_type "
                f"'{model.model_type.value}'. Register embedding models with inline::sentence-transformers.",
                param="model_type",
            )
        rid = model.provider_resource_id
        slot = self._slots.get(rid)
        if slot is None:
            slot = self._slots[rid] = Slot(rid, max_queued=self.config.max_queued_requests)
        slot.identifiers.add(model.identifier)
        if self.config.preload and self._initialized:
            slot.start_preload(self._loader.load)
        return model

    async def unregister_model(self, model: Model) -> None:
        slot = self._slots.get(model.provider_resource_id)
        if slot is None:
            return
        slot.identifiers.discard(model.identifier)
        if not slot.identifiers:
            del self._slots[model.provider_resource_id]
            slot.free()

    def _slot(self, model: str) -> Slot:
        slot = self._slots.get(model)
        if slot is None:
            raise ModelNotFoundError(model, sorted(i for s in self._slots.values() for i in s.identifiers))
        return slot

    async def _ensure_loaded(self, slot: Slot) -> Loaded:
        return await slot.ensure_loaded(self._loader.load)

    # -- requests -------------------------------------------------------------------------------------

    async def chat_completion(
        self, request: ChatCompletionRequest
    ) -> ChatCompletion | AsyncIterator[ChatCompletionChunk]:
        """Chat through the model's chat template; a stream is returned only once nothing can fail with 4xx/503.

        Sampling parameters the request leaves unset fall back to the checkpoint's
        ``generation_config.json`` (as vLLM does): Llama 3.2 Vision Instruct samples at 0.6 / 0.9.
        ``temperature: 0`` is greedy. ``n`` choices are sampled together as one batch; ``logprobs`` /
        ``top_logprobs`` report the model's distribution; ``response_format`` json_object / json_schema
        (and vLLM's ``structured_outputs`` / ``guided_*`` extras) constrain decoding with a grammar.
        ``logit_bias``, ``frequency_penalty`` and ``presence_penalty`` work as OpenAI documents them.
        ``tool_choice`` "required" or a named function constrains decoding to a call of the offered
        tool(s) whose arguments follow its parameters schema (as vLLM does).
        vLLM-style extras are honoured: ``top_k``, ``min_p``, ``repetition_penalty``, ``min_tokens``,
        ``ignore_eos``. Accepted and ignored: ``parallel_tool_calls``, ``user``.
        """
        slot = self._slot(request.model)
        tools = active_tools(request)
        n = self._choices(request.n)
        if request.top_logprobs and not request.logprobs:
            raise BadRequestError("top_logprobs needs logprobs: true.", param="top_logprobs")
        wants_logprobs = bool(request.logprobs)
        spec = grammar_spec(request.response_format, request.model_extra or {})
        forced_call = bool(tools) and spec is None and (request.tool_choice == "required"
                                                        or isinstance(request.tool_choice, dict))
        images = await asyncio.to_thread(self._prompts.decode_images, request.messages)
        loaded = await self._ensure_loaded(slot)
        prepared = await asyncio.to_thread(self._prepare_chat, loaded, request, images, tools)
        sampling = sampling_for(self.config, loaded, request, request.max_new_tokens, prepared.context_tokens)
        grammar = await self._tool_call_grammar(loaded, tools) if forced_call else await self._grammar(loaded, spec)
        decoding = Decoding(
            n=n,
            logprobs=LogprobRequest(record=wants_logprobs, report=wants_logprobs, top=request.top_logprobs or 0),
            grammar=grammar,
        )
        if request.stream:
            slot.check_capacity()  # a full queue is a 429 now, not an error in the middle of a stream
            start = functools.partial(stream_pieces, slot, loaded, prepared, sampling, decoding)
            return stream_chat(start, request, prepared.prompt_tokens, tools, n, wants_logprobs)
        outcome = await generate(slot, loaded, prepared, sampling, decoding)
        return chat_response(request, outcome, prepared.prompt_tokens, tools, wants_logprobs)

    async def completion(self, request: CompletionRequest) -> Completion | AsyncIterator[Completion]:
        """Raw-prompt completion; ``best_of`` samples that many and returns the ``n`` with the highest log
        probability per token (OpenAI's definition: a total would favour whatever ended first); not streamed."""
        slot = self._slot(request.model)
        n = self._choices(request.n)
        best_of = self._choices(request.best_of, "best_of") if request.best_of is not None else n
        if best_of < n:
            raise BadRequestError(f"best_of ({best_of}) must be at least n ({n}).", param="best_of")
        if best_of > n and request.stream:
            raise BadRequestError("best_of cannot be used with stream: the best choices are known only at the end.",
                                  param="best_of")
        top = _completion_logprobs(request.logprobs)
        if request.max_tokens == 0 and not request.echo:
            raise BadRequestError("max_tokens: 0 generates nothing; it is for echo (with logprobs: scoring a prompt).",
                                  param="max_tokens")
        if request.suffix:
            raise BadRequestError(f"{PROVIDER_TYPE} does not support suffix (fill-in-the-middle).", param="suffix")
        spec = grammar_spec(None, request.model_extra or {})
        loaded = await self._ensure_loaded(slot)
        prepared, prompt_texts = await asyncio.to_thread(prepare_completion, loaded, request)
        sampling = sampling_for(self.config, loaded, request, request.max_tokens, prepared.context_tokens)
        if request.max_tokens == 0:
            sampling.max_new_tokens = 0
        if len(prompt_texts) * best_of > self.config.max_choices:
            raise BadRequestError(
                f"{len(prompt_texts)} prompts x {best_of} choices is more sequences than this server decodes at once "
                f"({self.config.max_choices}, max_choices).", param="prompt")
        decoding = Decoding(
            n=best_of,
            logprobs=LogprobRequest(record=top is not None or best_of > n, report=top is not None, top=top or 0),
            grammar=await self._grammar(loaded, spec),
        )
        echoes = [text if request.echo else "" for text in prompt_texts]  # choice i answers prompt i // n
        scored = None  # the prompts' own token logprobs, shown with the echoed text
        if request.echo and top is not None:
            scored = await score_prompts(slot, loaded, prepared, top)
        if request.stream:
            slot.check_capacity()
            start = functools.partial(stream_pieces, slot, loaded, prepared, sampling, decoding)
            return stream_completion(start, request, prepared.prompt_tokens, echoes, n, top is not None, scored)
        outcome = await generate(slot, loaded, prepared, sampling, decoding)
        if best_of > n:  # each prompt's n best of its best_of; usage counts every sampled token (as OpenAI)
            groups = [outcome.choices[i : i + best_of] for i in range(0, len(outcome.choices), best_of)]
            best = [c for g in groups for c in sorted(g, key=_per_token_logprob, reverse=True)[:n]]
            outcome = Outcome(choices=best, sampled_tokens=outcome.completion_tokens)
        return completion_response(request, outcome, prepared.prompt_tokens, echoes, n, top is not None, scored)

    def _choices(self, value: int | None, param: str = "n") -> int:
        count = value or 1
        if count > self.config.max_choices:
            raise BadRequestError(
                f"{param}={count} is more than this server allows ({self.config.max_choices}, max_choices).",
                param=param,
            )
        return count

    async def _grammar(self, loaded: Loaded, spec: GrammarSpec | None) -> Any:
        if spec is None:
            return None
        return await asyncio.to_thread(self._grammars.compile, loaded, spec)

    async def _tool_call_grammar(self, loaded: Loaded, tools: list[dict[str, Any]] | None) -> Any:
        """``tool_choice`` "required" or a named function: decoding can only produce a call of the offered
        tool(s), with arguments following its parameters schema (any JSON object when that schema does not
        compile)."""
        try:
            return await self._grammar(loaded, tool_call_spec(tools or []))
        except BadRequestError:
            return await self._grammar(loaded, tool_call_spec(tools or [], strict=False))

    async def embeddings(self, request: EmbeddingsRequest) -> EmbeddingsResponse:
        raise BadRequestError(
            f"model '{request.model}' is served by {PROVIDER_TYPE}, which serves LLMs, not embeddings; "
            "use an embedding model (inline::sentence-transformers).",
            param="model",
        )

    def _prepare_chat(
        self, loaded: Loaded, request: ChatCompletionRequest, images: list[Any], tools: list[dict] | None
    ) -> Prepared:
        return self._prompts.prepare_chat(loaded, request, images, tools)


def _completion_logprobs(value: int | bool | None) -> int | None:
    """Completions' ``logprobs``: how many alternatives per token (0 = only the chosen token), or None."""
    if value is None or value is False:
        return None
    if value is True:
        return 0
    if not 0 <= value <= 20:
        raise BadRequestError(f"logprobs must be between 0 and 20, got {value}.", param="logprobs")
    return int(value)


def _per_token_logprob(choice: ChoiceOutcome) -> float:
    return choice.cumulative_logprob / max(choice.completion_tokens, 1)
