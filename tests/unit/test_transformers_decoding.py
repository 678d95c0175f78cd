"""inline::transformers: n choices, logprobs, structured output, best_of — on the tiny random Mllama (CPU).

Never about what the random model says: about shapes, counts, the agreement of streams with whole
responses, of logprobs with the text, and outputs that must match their grammar whatever the weights.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest

from vistack.api import BadRequestError, Model
from vistack.api.inference import ChatCompletionRequest, CompletionRequest
from vistack.providers.inference.transformers import TransformersInferenceConfig, TransformersInferenceProvider
from vistack.testing import tiny_model_dir

MSGS = [{"role": "user", "content": "Tell me about the quarterly report."}]


@pytest.fixture(scope="module")
def rid() -> str:
    return str(tiny_model_dir("mllama"))


@pytest.fixture(scope="module")
def p(rid: str) -> TransformersInferenceProvider:
    async def make() -> TransformersInferenceProvider:
        provider = TransformersInferenceProvider(TransformersInferenceConfig())
        await provider.initialize()
        await provider.register_model(Model(identifier="tiny", provider_resource_id=rid, provider_id="transformers"))
        return provider

    return asyncio.run(make())


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def chat(p: TransformersInferenceProvider, rid: str, **kw: Any) -> Any:
    kw.setdefault("max_tokens", 12)
    return run(p.chat_completion(ChatCompletionRequest(model=rid, messages=MSGS, **kw)))


def chat_stream(p: TransformersInferenceProvider, rid: str, **kw: Any) -> list[Any]:
    kw.setdefault("max_tokens", 12)

    async def go() -> list[Any]:
        stream = await p.chat_completion(ChatCompletionRequest(model=rid, messages=MSGS, stream=True, **kw))
        return [c async for c in stream]

    return run(go())


def complete(p: TransformersInferenceProvider, rid: str, **kw: Any) -> Any:
    kw.setdefault("max_tokens", 12)
    kw.setdefault("prompt", "The revenue in 2023 was")
    return run(p.completion(CompletionRequest(model=rid, **kw)))


def joined_bytes(entries: list[Any]) -> str:
    return b"".join(bytes(e["bytes"] if isinstance(e, dict) else e.bytes) for e in entries).decode("utf-8", errors="replace")


# ----- n ----------------------------------------------------------------------------------------------


def test_n_choices_whole_and_streamed_agree(p, rid) -> None:
    kw = {"n": 3, "temperature": 1.0, "seed": 11, "max_tokens": 10, "ignore_eos": True}
    whole = chat(p, rid, **kw)
    assert [c.index for c in whole.choices] == [0, 1, 2]
    assert all(c.finish_reason == "length" for c in whole.choices)
    assert whole.usage.completion_tokens == 30  # every choice counts; the prompt once
    texts = [c.message.content for c in whole.choices]
    assert chat(p, rid, **kw).choices[1].message.content == texts[1]  # seeded: reproducible

    chunks = chat_stream(p, rid, stream_options={"include_usage": True}, **kw)
    streamed: dict[int, str] = {}
    finishes: dict[int, str] = {}
    for c in chunks[:-1]:
        (choice,) = c.choices
        streamed[choice.index] = streamed.get(choice.index, "") + (choice.delta.content or "")
        if choice.finish_reason:
            finishes[choice.index] = choice.finish_reason
    assert streamed == dict(enumerate(texts))  # the same batch, the same seed: the same three texts
    assert finishes == {0: "length", 1: "length", 2: "length"}
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 30


def test_n_with_greedy_decoding_gives_identical_choices(p, rid) -> None:
    r = chat(p, rid, n=2, temperature=0)
    assert r.choices[0].message.content == r.choices[1].message.content


def test_stop_string_ends_one_choice_only(p, rid) -> None:
    kw = {"n": 2, "temperature": 1.0, "seed": 5, "max_tokens": 24, "ignore_eos": True}
    texts = [c.message.content for c in chat(p, rid, **kw).choices]
    # a stop string taken from the first choice's text, absent from the second one's
    stop = next((texts[0][i:i + 3] for i in range(2, len(texts[0]) - 3) if texts[0][i:i + 3] not in texts[1]), None)
    if stop is None:
        pytest.skip("the two sampled texts share every 3-character window")
    stopped = chat(p, rid, stop=[stop], **kw).choices
    assert stopped[0].message.content == texts[0][: texts[0].index(stop)] and stopped[0].finish_reason == "stop"
    assert stopped[1].message.content == texts[1] and stopped[1].finish_reason == "length"


# ----- logprobs -----------------------------------------------------------------------------------------


def test_chat_logprobs_match_the_text(p, rid) -> None:
    r = chat(p, rid, temperature=0, logprobs=True, top_logprobs=3, max_tokens=16, ignore_eos=True)
    (choice,) = r.choices
    content = choice.logprobs["content"]
    assert len(content) == r.usage.completion_tokens == 16
    assert joined_bytes(content) == choice.message.content
    for entry in content:
        tops = entry["top_logprobs"]
        assert len(tops) == 3 and [t["logprob"] for t in tops] == sorted((t["logprob"] for t in tops), reverse=True)
        assert entry["logprob"] <= 0 and entry["logprob"] == pytest.approx(tops[0]["logprob"])  # greedy = argmax
    no_tops = chat(p, rid, temperature=0, logprobs=True, max_tokens=4).choices[0].logprobs["content"]
    assert no_tops and all(e["top_logprobs"] == [] for e in no_tops)
    assert chat(p, rid, temperature=0).choices[0].logprobs is None


def test_streamed_logprobs_equal_whole_ones(p, rid) -> None:
    kw = {"temperature": 0, "logprobs": True, "top_logprobs": 2, "max_tokens": 16, "ignore_eos": True}
    whole = chat(p, rid, **kw).choices[0].logprobs["content"]
    streamed = [e for c in chat_stream(p, rid, **kw) for ch in c.choices if ch.logprobs for e in ch.logprobs["content"]]
    assert streamed == whole


def test_logprobs_cover_only_the_text_before_a_stop_string(p, rid) -> None:
    kw = {"temperature": 0, "logprobs": True, "max_tokens": 24, "ignore_eos": True}
    text = chat(p, rid, **kw).choices[0].message.content
    stop = text[len(text) // 2: len(text) // 2 + 2]
    if not stop.strip():
        pytest.skip("no usable stop string in the middle of the text")
    cut = chat(p, rid, stop=[stop], **kw).choices[0]
    assert cut.message.content == text[: text.index(stop)]
    assert joined_bytes(cut.logprobs["content"]).startswith(cut.message.content)
    assert len(joined_bytes(cut.logprobs["content"])) < len(text)


def test_text_held_back_for_a_stop_string_is_kept_when_the_turn_ends(p, rid) -> None:
    """An answer ending with what could begin a stop string ("... E" with stop "END") keeps it at the end of turn."""
    kw = {"guided_choice": ["Total: 42 E"], "temperature": 0, "logprobs": True, "max_tokens": 24}
    plain = chat(p, rid, **kw).choices[0]
    assert plain.message.content == "Total: 42 E" and plain.finish_reason == "stop"
    choice = chat(p, rid, stop=["END"], **kw).choices[0]
    assert choice.message.content == "Total: 42 E" and choice.finish_reason == "stop"
    assert choice.logprobs == plain.logprobs
    streamed = chat_stream(p, rid, stop=["END"], **kw)
    assert "".join(ch.delta.content or "" for c in streamed for ch in c.choices) == "Total: 42 E"
    entries = [e for c in streamed for ch in c.choices if ch.logprobs for e in ch.logprobs["content"]]
    assert entries == plain.logprobs["content"]


def test_a_stop_string_ends_its_sequence_in_the_same_step() -> None:
    """The session is the stopping criterion: the step that completes a stop string ends the sequence."""
    from vistack.providers.inference.transformers.decoding import DecodeSession, LogprobRequest

    vocab = {0: "<eos>", 1: "Hello", 2: ".", 3: " E", 4: "N", 5: "D"}

    class Tokenizer:
        def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
            return "".join(vocab[i] for i in ids if not (skip_special_tokens and i == 0))

    session = DecodeSession(Tokenizer(), 2, [0], [" END"], LogprobRequest(), None, None)
    assert session.step([1, 1]) == [False, False]
    assert session.step([3, 2]) == [False, False]
    assert session.step([4, 0]) == [False, True]  # row 1: end of turn
    assert session.step([5, 0]) == [True, True]  # row 0: " END" completed in this step
    first, second = session.finish(max_new_tokens=10, timed_out=False)
    assert (first.text, first.finish_reason, first.completion_tokens) == ("Hello", "stop", 4)
    assert (second.text, second.finish_reason, second.completion_tokens) == ("Hello.", "stop", 3)


def test_completion_logprobs_and_best_of(p, rid) -> None:
    r = complete(p, rid, temperature=0, logprobs=2, max_tokens=10, ignore_eos=True)
    lp = r.choices[0].logprobs
    assert len(lp["tokens"]) == len(lp["token_logprobs"]) == len(lp["top_logprobs"]) == len(lp["text_offset"]) == 10
    if "\ufffd" not in r.choices[0].text:  # (a token holding part of a character reads as U+FFFD on its own)
        assert "".join(lp["tokens"]) == r.choices[0].text
    assert lp["text_offset"] == sorted(lp["text_offset"]) and lp["text_offset"][0] == 0
    for token, logprob, tops in zip(lp["tokens"], lp["token_logprobs"], lp["top_logprobs"], strict=True):
        assert tops[token] == logprob and len(tops) <= 3  # the sampled token is always listed (OpenAI)

    best = complete(p, rid, n=2, best_of=4, temperature=1.0, seed=3, max_tokens=6, ignore_eos=True)
    assert [c.index for c in best.choices] == [0, 1]
    assert best.usage.completion_tokens == 24  # all four sampled choices are counted
    # the same four samples (same seed, one batch): the two kept have the best log probability per token
    four = complete(p, rid, n=4, temperature=1.0, seed=3, max_tokens=6, ignore_eos=True, logprobs=0).choices
    mean = {c.text: sum(c.logprobs["token_logprobs"]) / len(c.logprobs["token_logprobs"]) for c in four}
    assert sorted(c.text for c in best.choices) == sorted(sorted(mean, key=mean.get, reverse=True)[:2])
    for bad, needle in (({"n": 3, "best_of": 2}, "at least n"), ({"best_of": 2, "stream": True}, "stream"),
                        ({"logprobs": 21}, "between 0 and 20"), ({"max_tokens": 0}, "echo")):
        with pytest.raises(BadRequestError, match=needle):
            complete(p, rid, **bad)


def test_streamed_completion_logprobs_offsets_continue(p, rid) -> None:
    async def go() -> list[Any]:
        req = CompletionRequest(model=rid, prompt="Total assets", max_tokens=8, temperature=0, logprobs=1,
                                stream=True, ignore_eos=True)
        return [c async for c in await p.completion(req)]

    chunks = run(go())
    offsets = [o for c in chunks for ch in c.choices if ch.logprobs for o in ch.logprobs["text_offset"]]
    tokens = [t for c in chunks for ch in c.choices if ch.logprobs for t in ch.logprobs["tokens"]]
    assert len(offsets) == len(tokens) == 8
    assert offsets == [sum(len(t) for t in tokens[:i]) for i in range(8)]


# ----- structured output -------------------------------------------------------------------------------


SCHEMA = {
    "type": "object",
    "properties": {"segment": {"enum": ["retail", "wholesale", "online"]}, "growing": {"type": "boolean"},
                   "region": {"enum": ["EMEA", "APAC"]}},
    "required": ["segment", "growing", "region"],
    "additionalProperties": False,
}


def test_json_schema_output_is_valid_whatever_the_model(p, rid) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "segment", "schema": SCHEMA, "strict": True}}
    r = chat(p, rid, response_format=fmt, n=3, temperature=1.0, seed=1, max_tokens=60)
    for choice in r.choices:
        assert choice.finish_reason == "stop", choice
        value = json.loads(choice.message.content)
        assert set(value) == {"segment", "growing", "region"}
        assert value["segment"] in SCHEMA["properties"]["segment"]["enum"] and isinstance(value["growing"], bool)
    streamed = "".join(c.choices[0].delta.content or "" for c in chat_stream(p, rid, response_format=fmt,
                                                                                temperature=0, max_tokens=60))
    assert json.loads(streamed)["region"] in ("EMEA", "APAC")
    # ignore_eos / min_tokens cannot push past a complete output (nothing would be left to sample)
    forced = chat(p, rid, response_format=fmt, temperature=1.0, seed=4, max_tokens=60, ignore_eos=True).choices[0]
    assert json.loads(forced.message.content)["growing"] in (True, False) and forced.finish_reason == "stop"


def test_json_object_regex_and_choice(p, rid) -> None:
    obj = chat(p, rid, response_format={"type": "json_object"}, temperature=0, max_tokens=48).choices[0]
    if obj.finish_reason == "stop":
        assert isinstance(json.loads(obj.message.content), dict)
    else:  # a random model may write one long string: cut at max_tokens, still a JSON object's beginning
        assert obj.message.content.startswith("{")
    regex = chat(p, rid, guided_regex=r"[0-9]{3}-[a-z]{2}", temperature=1.0, seed=2, max_tokens=20).choices[0]
    assert re.fullmatch(r"[0-9]{3}-[a-z]{2}", regex.message.content) and regex.finish_reason == "stop"
    picked = chat(p, rid, structured_outputs={"choice": ["approve", "reject"]}, temperature=0)
    assert picked.choices[0].message.content in ("approve", "reject")
    completion = complete(p, rid, guided_choice=["yes", "no"], temperature=0)
    assert completion.choices[0].text in ("yes", "no")


def test_several_prompts_are_one_batch_with_openai_indexing(p, rid) -> None:
    prompts = ["The revenue in 2023 was", "Total assets at year end"]
    alone = [complete(p, rid, prompt=text, temperature=0, max_tokens=8, ignore_eos=True).choices[0].text
             for text in prompts]
    r = run(p.completion(CompletionRequest(model=rid, prompt=prompts, n=2, temperature=0, max_tokens=8,
                                           ignore_eos=True, echo=True)))
    assert [c.index for c in r.choices] == [0, 1, 2, 3]  # choice i answers prompt i // n
    # left-padded into one batch, each prompt gets what it gets alone (greedy)
    assert [c.text for c in r.choices] == [prompts[0] + alone[0]] * 2 + [prompts[1] + alone[1]] * 2
    assert r.usage.completion_tokens == 32
    assert r.usage.prompt_tokens == sum(complete(p, rid, prompt=t, max_tokens=1).usage.prompt_tokens for t in prompts)

    async def streamed() -> dict[int, str]:
        req = CompletionRequest(model=rid, prompt=prompts, temperature=0, max_tokens=8, ignore_eos=True, stream=True)
        out: dict[int, str] = {}
        async for chunk in await p.completion(req):
            for ch in chunk.choices:
                out[ch.index] = out.get(ch.index, "") + ch.text
        return out

    assert run(streamed()) == {0: alone[0], 1: alone[1]}


def test_echo_with_logprobs_scores_the_prompt(p, rid) -> None:
    """lm-evaluation-harness's loglikelihood request: echo, logprobs, max_tokens 0."""
    prompt = "Net income rose to 12 million"
    r = complete(p, rid, prompt=prompt, echo=True, logprobs=1, max_tokens=0)
    (choice,) = r.choices
    lp = choice.logprobs
    assert choice.text == prompt and r.usage.completion_tokens == 0 and choice.finish_reason == "length"
    assert "".join(lp["tokens"]) == prompt  # the tokenizer's BOS is context, not echoed text
    assert all(isinstance(x, float) and x <= 0 for x in lp["token_logprobs"])  # BOS gives the first one context
    assert lp["text_offset"] == [sum(len(t) for t in lp["tokens"][:i]) for i in range(len(lp["tokens"]))]
    assert all(tops[tok] == x for tok, x, tops in zip(lp["tokens"], lp["token_logprobs"], lp["top_logprobs"],
                                                      strict=True))
    # the same numbers as the tokens' logprobs when they are generated: scoring is the model's distribution
    first = complete(p, rid, prompt=prompt, temperature=0, logprobs=0, max_tokens=1)
    scored_next = complete(p, rid, prompt=prompt + first.choices[0].text, echo=True, logprobs=0, max_tokens=0)
    if "\ufffd" not in first.choices[0].text and scored_next.choices[0].logprobs["tokens"][-1] == first.choices[0].text:
        assert scored_next.choices[0].logprobs["token_logprobs"][-1] == pytest.approx(
            first.choices[0].logprobs["token_logprobs"][0], abs=1e-4)

    ids = run(p.completion(CompletionRequest(model=rid, prompt=[5, 6, 7], echo=True, logprobs=0, max_tokens=2,
                                             temperature=0)))
    lp = ids.choices[0].logprobs
    assert lp["token_logprobs"][0] is None and lp["top_logprobs"][0] is None  # nothing precedes the first token
    assert len(lp["tokens"]) == 3 + 2

    async def streamed() -> list[Any]:
        req = CompletionRequest(model=rid, prompt=prompt, echo=True, logprobs=1, max_tokens=3, temperature=0,
                                stream=True, ignore_eos=True)
        return [c async for c in await p.completion(req)]

    chunks = run(streamed())
    assert chunks[0].choices[0].text == prompt and chunks[0].choices[0].logprobs["tokens"] == lp_tokens(p, rid, prompt)


def lp_tokens(p, rid, prompt: str) -> list[str]:
    return complete(p, rid, prompt=prompt, echo=True, logprobs=0, max_tokens=0).choices[0].logprobs["tokens"]


# ----- logit_bias and OpenAI's penalties -----------------------------------------------------------------


def test_logit_bias_forces_and_bans_tokens(p, rid) -> None:
    free = chat(p, rid, temperature=0, max_tokens=1, ignore_eos=True).choices[0].message.content  # loads it
    tok = p._slots[rid].loaded.tokenizer
    forced = tok.encode(" revenue", add_special_tokens=False)[0]
    r = chat(p, rid, temperature=0, max_tokens=4, ignore_eos=True, logit_bias={str(forced): 100})
    assert r.choices[0].message.content == tok.decode([forced] * 4)
    ban = {str(t): -100 for t in tok.encode(free, add_special_tokens=False)}
    banned = chat(p, rid, temperature=0, max_tokens=1, ignore_eos=True, logit_bias=ban).choices[0].message.content
    assert banned != free
    for bias, needle in (({"x": 1}, "token ids"), ({"999999": 1}, "outside the vocabulary"), ({"5": 101}, "[-100, 100]")):
        with pytest.raises(BadRequestError, match=re.escape(needle)):
            chat(p, rid, logit_bias=bias)


def test_frequency_and_presence_penalties_count_generated_tokens_only() -> None:
    import torch

    from vistack.providers.inference.transformers.penalties import LogitBias, RepetitionPenalties

    ids = torch.tensor([[1, 2, 5, 5, 7]])  # prompt [1, 2], generated [5, 5, 7]
    scores = RepetitionPenalties(prompt_len=2, frequency=0.5, presence=1.0)(ids, torch.zeros((1, 10)))
    assert scores[0].tolist() == [0, 0, 0, 0, 0, -2.0, 0, -1.5, 0, 0]  # 5: 2 x 0.5 + 1; 7: 0.5 + 1; prompt: 0
    assert RepetitionPenalties(5, 0.5, 1.0)(ids, torch.zeros((1, 10))).abs().sum() == 0  # nothing generated yet
    # step by step, as generate() calls it: the counts are kept and grow by each step's token
    stepwise = RepetitionPenalties(prompt_len=2, frequency=0.5, presence=1.0)
    for length in range(2, 6):
        out = stepwise(ids[:, :length], torch.zeros((1, 10)))
    assert out[0].tolist() == scores[0].tolist()
    biased = LogitBias({3: 2.5, 9: -100.0})(ids, torch.zeros((1, 10)))
    assert biased[0, 3] == 2.5 and biased[0, 9] == -100.0 and biased.abs().sum() == 102.5


def test_penalties_reach_generation(p, rid) -> None:
    plain = chat(p, rid, temperature=0, max_tokens=24, ignore_eos=True).choices[0].message.content
    penalized = chat(p, rid, temperature=0, max_tokens=24, ignore_eos=True, frequency_penalty=2.0,
                     presence_penalty=2.0).choices[0].message.content
    tok = p._slots[rid].loaded.tokenizer
    plain_ids, penalized_ids = (tok.encode(t, add_special_tokens=False) for t in (plain, penalized))
    if len(set(plain_ids)) < len(plain_ids):  # the greedy text repeats tokens: the penalties must change it
        assert penalized != plain and len(set(penalized_ids)) / len(penalized_ids) > len(set(plain_ids)) / len(plain_ids)


# ----- forced tool calls -----------------------------------------------------------------------------------

TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather", "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 12},
                                                        "unit": {"enum": ["C", "F"]}},
                       "required": ["city", "unit"], "additionalProperties": False}}},
    {"type": "function", "function": {
        "name": "get_revenue", "description": "Revenue of a fiscal year",
        "parameters": {"type": "object", "properties": {"year": {"type": "integer", "minimum": 2000,
                                                                 "maximum": 2030}},
                       "required": ["year"], "additionalProperties": False}}},
]


def test_required_tool_choice_always_yields_a_valid_call(p, rid) -> None:
    """Whatever the (random) model, "required" gives a call of an offered tool with schema-valid arguments."""
    r = chat(p, rid, tools=TOOLS, tool_choice="required", n=3, temperature=1.0, seed=8, max_tokens=60)
    for choice in r.choices:
        assert choice.finish_reason == "tool_calls", choice
        (call,) = choice.message.tool_calls
        args = json.loads(call.function.arguments)
        if call.function.name == "get_weather":
            assert set(args) == {"city", "unit"} and args["unit"] in ("C", "F") and len(args["city"]) <= 12
        else:
            assert call.function.name == "get_revenue" and 2000 <= args["year"] <= 2030

    named = {"type": "function", "function": {"name": "get_revenue"}}
    chunks = chat_stream(p, rid, tools=TOOLS, tool_choice=named, temperature=0, max_tokens=60)
    calls = [tc for c in chunks for ch in c.choices if ch.delta.tool_calls for tc in ch.delta.tool_calls]
    assert [c["function"]["name"] for c in calls] == ["get_revenue"]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    # the tokens behind a streamed call carry their logprobs, as in the whole response
    kw = {"tools": TOOLS, "tool_choice": named, "temperature": 0, "max_tokens": 60, "logprobs": True}
    whole = chat(p, rid, **kw).choices[0].logprobs["content"]
    streamed = [e for c in chat_stream(p, rid, **kw) for ch in c.choices if ch.logprobs for e in ch.logprobs["content"]]
    assert whole and streamed == whole
    auto = chat(p, rid, tools=TOOLS, temperature=0, max_tokens=8)  # "auto" stays free text or a call
    assert auto.choices[0].finish_reason in ("stop", "length", "tool_calls")


def test_unregistering_a_model_frees_it_after_structured_output(rid) -> None:
    """The grammar compiler lives on the loaded model: it must not keep the weights alive once unregistered."""
    import gc
    import time
    import weakref

    async def go() -> weakref.ref:
        provider = TransformersInferenceProvider(TransformersInferenceConfig(grammar_cache_mb=8))
        await provider.initialize()
        model = Model(identifier="leak-check", provider_resource_id=rid, provider_id="transformers")
        await provider.register_model(model)
        r = await provider.chat_completion(ChatCompletionRequest(
            model=rid, messages=MSGS, response_format={"type": "json_object"}, max_tokens=4))
        assert r.choices[0].message.content.startswith("{")
        slot = provider._slots[rid]
        assert slot.loaded.grammar_compiler is not None
        weights = weakref.ref(slot.loaded.model)
        await provider.unregister_model(model)
        slot.executor.shutdown(wait=True)  # the release runs on the model's worker
        return weights

    weights = run(go())
    deadline = time.monotonic() + 10
    while weights() is not None and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.1)
    assert weights() is None, "the model is still referenced after unregistering"
