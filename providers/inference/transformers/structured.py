"""Structured output: ``response_format`` (and vLLM's structured-output extras) as a grammar mask on the logits.

Constrained decoding uses xgrammar, the grammar engine vLLM and SGLang use: the request's JSON schema,
regex, choice list or EBNF grammar is compiled against the model's vocabulary (compiled grammars are
cached per model, within ``grammar_cache_mb``), and a logits processor masks, at every step and for every sequence, the tokens
that cannot continue a valid output. Generation ends when the grammar is complete (it then allows
only the end-of-turn token) or at ``max_tokens`` (``finish_reason: length``, output cut short).
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vistack.api import BadRequestError, ServiceUnavailableError
from vistack.api.errors import first_line

from .config import PROVIDER_TYPE


@dataclass(frozen=True)
class GrammarSpec:
    """What the output must match: ``kind`` is json_schema, json_object, regex, choice or grammar."""

    kind: str
    source: str = ""  # the JSON schema (serialized), regex, EBNF grammar or JSON list of choices


def grammar_spec(response_format: dict[str, Any] | None, extra: dict[str, Any]) -> GrammarSpec | None:
    """The request's constraint, or ``None``; a malformed one is a 400 naming the field.

    OpenAI's ``response_format`` (``text`` | ``json_object`` | ``json_schema``) and vLLM's extras —
    ``structured_outputs: {json|regex|choice|grammar}`` and the older ``guided_json`` /
    ``guided_regex`` / ``guided_choice`` / ``guided_grammar`` — at most one of them.
    """
    found: list[tuple[str, GrammarSpec]] = []
    fmt = response_format or {}
    kind = fmt.get("type", "text")
    if kind == "json_object":
        found.append(("response_format", GrammarSpec("json_object")))
    elif kind == "json_schema":
        body = fmt.get("json_schema")
        schema = body.get("schema") if isinstance(body, dict) else None
        if schema is None and isinstance(body, dict) and "name" in body:
            schema = {}  # OpenAI allows a named format without a schema: any JSON object
        if not isinstance(schema, dict):
            raise BadRequestError(
                "response_format json_schema needs a 'json_schema' object with a 'schema' (a JSON Schema object).",
                param="response_format",
            )
        found.append(("response_format", GrammarSpec("json_schema", json.dumps(schema))))
    elif kind != "text":
        raise BadRequestError(
            f"response_format type {kind!r} is not one of 'text', 'json_object', 'json_schema'.",
            param="response_format",
        )
    structured = extra.get("structured_outputs")
    if isinstance(structured, dict):
        for key in ("json", "regex", "choice", "grammar"):
            if structured.get(key) is not None:
                found.append((f"structured_outputs.{key}", _extra_spec(key, structured[key], f"structured_outputs.{key}")))
    for key in ("json", "regex", "choice", "grammar"):
        if extra.get(f"guided_{key}") is not None:
            found.append((f"guided_{key}", _extra_spec(key, extra[f"guided_{key}"], f"guided_{key}")))
    if len(found) > 1:
        raise BadRequestError(
            "give one output constraint, not several: " + ", ".join(name for name, _ in found) + ".",
            param=found[1][0],
        )
    return found[0][1] if found else None


def tool_call_spec(tools: list[dict[str, Any]], *, strict: bool = True) -> GrammarSpec:
    """The output must be one call, in Llama 3's JSON form ``{"name": ..., "parameters": {...}}``, of one of
    ``tools`` (``tool_choice`` "required", or the one named tool): what vLLM does for those choices.

    ``strict``: the arguments follow each function's parameters schema; else any JSON object (for a
    schema the grammar engine cannot compile).
    """
    variants = []
    for tool in tools:
        fn = tool.get("function") or {}
        params = fn.get("parameters") if strict and isinstance(fn.get("parameters"), dict) else None
        variants.append({
            "type": "object",
            "properties": {"name": {"const": fn.get("name", "")}, "parameters": params or {"type": "object"}},
            "required": ["name", "parameters"],
            "additionalProperties": False,
        })
    schema = variants[0] if len(variants) == 1 else {"anyOf": variants}
    return GrammarSpec("json_schema", json.dumps(schema))


def _extra_spec(key: str, value: Any, param: str) -> GrammarSpec:
    if key == "json":
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as e:
                raise BadRequestError(f"{param} is not valid JSON: {e}", param=param) from e
        if not isinstance(value, dict):
            raise BadRequestError(f"{param} must be a JSON Schema object.", param=param)
        return GrammarSpec("json_schema", json.dumps(value))
    if key == "choice":
        if not isinstance(value, list) or not value or not all(isinstance(c, str) for c in value):
            raise BadRequestError(f"{param} must be a non-empty list of strings.", param=param)
        return GrammarSpec("choice", json.dumps(value))
    if not isinstance(value, str) or not value:
        raise BadRequestError(f"{param} must be a non-empty string.", param=param)
    return GrammarSpec(key, value)


class GrammarCompilers:
    """One xgrammar compiler per loaded model, kept on the model (``Loaded.grammar_compiler``) so it goes
    when the model is unloaded. Its cache of compiled grammars is bounded (``cache_limit_bytes``, as vLLM
    does): every distinct schema a client sends would otherwise stay in memory for the model's lifetime."""

    def __init__(self, cache_limit_bytes: int) -> None:
        self._lock = threading.Lock()
        self.cache_limit_bytes = cache_limit_bytes

    def compile(self, loaded: Any, spec: GrammarSpec) -> Any:
        xgr = _xgrammar()
        compiler = self._compiler(loaded, xgr)
        try:
            if spec.kind == "json_object":  # any object, written compactly (no whitespace runs to fill max_tokens)
                return compiler.compile_json_schema('{"type": "object"}', any_whitespace=False)
            if spec.kind == "json_schema":
                return compiler.compile_json_schema(spec.source, any_whitespace=False)
            if spec.kind == "regex":
                return compiler.compile_regex(spec.source)
            if spec.kind == "choice":
                alternatives = " | ".join(json.dumps(c) for c in json.loads(spec.source))
                return compiler.compile_grammar(f"root ::= {alternatives}")
            return compiler.compile_grammar(spec.source)
        except (RuntimeError, ValueError, TypeError) as e:  # xgrammar reports a bad schema/regex/grammar so
            what = {"json_schema": "JSON schema", "json_object": "JSON grammar"}.get(spec.kind, spec.kind)
            raise BadRequestError(f"the {what} could not be compiled: {first_line(e)}", param="response_format") from e

    def _compiler(self, loaded: Any, xgr: Any) -> Any:
        with self._lock:
            if loaded.grammar_compiler is None:
                vocab = loaded.model.get_output_embeddings().weight.shape[0]
                info = xgr.TokenizerInfo.from_huggingface(loaded.tokenizer, vocab_size=vocab,
                                                          stop_token_ids=loaded.eos_ids)
                loaded.grammar_compiler = xgr.GrammarCompiler(info, max_threads=2,
                                                              cache_limit_bytes=self.cache_limit_bytes)
            return loaded.grammar_compiler


class GrammarMask:
    """A ``LogitsProcessor`` masking, per sequence, the tokens its grammar does not allow next.

    ``finished(row)`` tells which sequences ended for another reason (a stop string): generate() keeps
    padding them, and their matcher must not be fed those pads.
    """

    def __init__(self, compiled: Any, finished: Callable[[int], bool], stop_ids: list[int]) -> None:
        self.compiled, self.finished, self.stop_ids = compiled, finished, stop_ids
        self.matchers: list[Any] = []
        self.bitmask: Any = None  # filled on the host
        self.device_bitmask: Any = None  # its copy on a GPU, allocated once

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        xgr = _xgrammar()
        first = not self.matchers  # the first step: no token sampled yet
        if first:
            rows = input_ids.shape[0]
            self.matchers = [xgr.GrammarMatcher(self.compiled) for _ in range(rows)]
            self.bitmask = xgr.allocate_token_bitmask(rows, self.compiled.tokenizer_info.vocab_size)
        for i, matcher in enumerate(self.matchers):
            if not first and not matcher.is_terminated() and not self.finished(i):
                if not matcher.accept_token(int(input_ids[i, -1])):  # cannot happen: the token was allowed
                    raise RuntimeError(f"grammar rejected sampled token {int(input_ids[i, -1])}")
            if not matcher.is_terminated():
                matcher.fill_next_token_bitmask(self.bitmask, i)
        if scores.device.type == "cpu":
            xgr.apply_token_bitmask_inplace(scores, self.bitmask)
        elif scores.device.type == "cuda":
            if self.device_bitmask is None or self.device_bitmask.device != scores.device:
                self.device_bitmask = self.bitmask.to(scores.device)
            else:
                self.device_bitmask.copy_(self.bitmask, non_blocking=True)
            xgr.apply_token_bitmask_inplace(scores, self.device_bitmask)
        else:
            masked = scores.to("cpu")
            xgr.apply_token_bitmask_inplace(masked, self.bitmask)
            scores = masked.to(scores.device)
        # A complete output allows only the end of turn; when min_tokens / ignore_eos masked that too, nothing
        # is left to sample (NaN): the grammar wins and the sequence ends.
        dead = scores.isneginf().all(dim=-1)
        if bool(dead.any()):
            for row in dead.nonzero().flatten().tolist():
                scores[row, self.stop_ids] = 0.0
        return scores


@functools.cache
def _xgrammar() -> Any:
    try:
        import xgrammar
    except ImportError as e:
        raise ServiceUnavailableError(
            f"structured output in {PROVIDER_TYPE} needs the xgrammar package: pip install xgrammar ({e})."
        ) from e
    return xgrammar
