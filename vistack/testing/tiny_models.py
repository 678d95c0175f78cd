"""Tiny random Llama 3.2 Vision (Mllama) and Llama models, built offline in seconds.

No hub is reachable in tests or CI, yet the provider must run the real
transformers code path (config detection, processor, chat template, image
tiling, cross-attention, generate, streaming). These builders write a
checkpoint with the same *layout* as ``meta-llama/Llama-3.2-11B-Vision-Instruct``:
Llama 3 special tokens, the ``<|image|>`` token just past the text vocabulary
(``image_token_index == text_config.vocab_size``), a Llama 3.2 Vision chat
template, an ``MllamaImageProcessor`` whose tile size matches the vision tower,
and ``eos_token_id`` listing ``<|eot_id|>``. Weights are random and seeded,
so the output is deterministic but meaningless: never assert on what it says.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# Llama 3 control tokens, in the order (and relative offsets) of the real vocabulary.
BEGIN_OF_TEXT = "<|begin_of_text|>"
END_OF_TEXT = "<|end_of_text|>"
FINETUNE_PAD = "<|finetune_right_pad_id|>"
START_HEADER = "<|start_header_id|>"
END_HEADER = "<|end_header_id|>"
EOM = "<|eom_id|>"
EOT = "<|eot_id|>"
PYTHON_TAG = "<|python_tag|>"
IMAGE = "<|image|>"
TEXT_SPECIAL_TOKENS = [BEGIN_OF_TEXT, END_OF_TEXT, FINETUNE_PAD, START_HEADER, END_HEADER, EOM, EOT, PYTHON_TAG]

TINY_IMAGE_SIZE = 56  # tile side in pixels; 4 patches of 14 per side
TINY_MAX_TILES = 4
_BPE_VOCAB = 600  # 256 byte symbols + merges; small but enough to make common words single tokens
_SEED = 1234

# Llama 3.2 Vision Instruct's template, kept faithful (including its refusal to combine a
# system message with images, and tools going into the first user message) so the provider
# is tested against the real model's conventions.
LLAMA32_VISION_CHAT_TEMPLATE = r"""{{- bos_token }}
{%- if custom_tools is defined %}{%- set tools = custom_tools %}{%- endif %}
{%- if not tools_in_user_message is defined %}{%- set tools_in_user_message = true %}{%- endif %}
{%- if not date_string is defined %}{%- set date_string = "26 Jul 2024" %}{%- endif %}
{%- if not tools is defined %}{%- set tools = none %}{%- endif %}
{%- if messages[0]['role'] == 'system' %}
    {%- if messages[0]['content'] is string %}
        {%- set system_message = messages[0]['content']|trim %}
    {%- else %}
        {%- set system_message = messages[0]['content'][0]['text']|trim %}
    {%- endif %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}
{%- set image_ns = namespace(has_images=false) %}
{%- for message in messages %}
    {%- if message['content'] is not string %}
        {%- for content in message['content'] %}
            {%- if content['type'] == 'image' %}
                {%- set image_ns.has_images = true %}
            {%- endif %}
        {%- endfor %}
    {%- endif %}
{%- endfor %}
{%- if image_ns.has_images and not system_message == "" %}
    {{- raise_exception("Prompting with images is incompatible with system messages.") }}
{%- endif %}
{%- if not image_ns.has_images %}
    {{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
    {%- if tools is not none %}
        {{- "Environment: ipython\n" }}
    {%- endif %}
    {{- "Cutting Knowledge Date: December 2023\n" }}
    {{- "Today Date: " + date_string + "\n\n" }}
    {%- if tools is not none and not tools_in_user_message %}
        {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
        {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
        {{- "Do not use variables.\n\n" }}
        {%- for t in tools %}
            {{- t | tojson(indent=4) }}
            {{- "\n\n" }}
        {%- endfor %}
    {%- endif %}
    {{- system_message }}
    {{- "<|eot_id|>" }}
{%- endif %}
{%- if tools_in_user_message and not tools is none %}
    {%- if messages | length != 0 %}
        {%- if messages[0]['content'] is string %}
            {%- set first_user_message = messages[0]['content']|trim %}
        {%- else %}
            {%- set first_user_message = messages[0]['content'] | selectattr('type', 'equalto', 'text') | map(attribute='text') | map('trim') | join('\n') %}
        {%- endif %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
    {%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\n\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\n\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}
{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' }}
        {%- if message['content'] is string %}
            {{- message['content'] }}
        {%- else %}
            {%- for content in message['content'] %}
                {%- if content['type'] == 'image' %}
                    {{- '<|image|>' }}
                {%- elif content['type'] == 'text' %}
                    {{- content['text'] }}
                {%- endif %}
            {%- endfor %}
        {%- endif %}
        {{- '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
        {{- '{"name": "' + tool_call.name + '", ' }}
        {{- '"parameters": ' }}
        {{- tool_call.arguments | tojson }}
        {{- "}" }}
        {{- "<|eot_id|>" }}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
"""

# Training text for the byte-level BPE: chat scaffolding, JSON tool calls and business-document prose,
# so typical prompts tokenize compactly. Anything else still round-trips through the 256 byte symbols.
_CORPUS = [
    "system user assistant ipython Environment: ipython Cutting Knowledge Date: December 2023 Today Date: 26 Jul 2024",
    ("Given the following functions, please respond with a JSON for a function call with its proper arguments "
    'that best answers the given prompt. Respond in the format {"name": function name, "parameters": '
    "dictionary of argument name and its value}. Do not use variables."),
    ('{"name": "get_weather", "parameters": {"city": "Paris"}} {"type": "function", "function": {"name": "search", '
    '"description": "Search the documents", "parameters": {"type": "object", "properties": {"query": {"type": '
    '"string"}}, "required": ["query"]}}}'),
    ("You are a helpful assistant. Describe this image. What is in the chart? Summarize the report. "
    "The quarterly revenue grew by 12 percent to 4.5 million dollars, while operating costs fell."),
    ("Page 1 of the slide deck shows a bar chart of sales by region: North, South, East and West. "
    "The table lists the invoice number, the date, the amount and the customer name."),
    "Hello! How are you today? I am fine, thank you. The answer is 42. Once upon a time there was a tiny model.",
    "the of and to in is that for it as with was on be by this are or from at an which have not has but",
    "0 1 2 3 4 5 6 7 8 9 10 100 2023 2024 2025 Q1 Q2 Q3 Q4 % $ € : ; , . ! ? ( ) [ ] { } \" ' - _ / \\ \n \t",
]


def build_tokenizer() -> Any:
    """A Llama-3-style fast tokenizer: byte-level BPE (any text round-trips), Llama 3 control tokens.

    ``<|image|>`` is added last so its id equals the text vocabulary size, as in the real checkpoint.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=_BPE_VOCAB,
        min_frequency=1,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in [*TEXT_SPECIAL_TOKENS, IMAGE]])
    bos_id = tok.token_to_id(BEGIN_OF_TEXT)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BEGIN_OF_TEXT} $A",
        pair=f"{BEGIN_OF_TEXT} $A {BEGIN_OF_TEXT} $B",
        special_tokens=[(BEGIN_OF_TEXT, bos_id)],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BEGIN_OF_TEXT,
        eos_token=EOT,
        pad_token=FINETUNE_PAD,
        model_max_length=8192,
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = LLAMA32_VISION_CHAT_TEMPLATE
    return fast


def _token_ids(tokenizer: Any) -> dict[str, int]:
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in [*TEXT_SPECIAL_TOKENS, IMAGE]}
    assert ids[IMAGE] == len(tokenizer) - 1, "<|image|> must be the last token"
    return ids


def _generation_config(ids: dict[str, int]) -> Any:
    from transformers import GenerationConfig

    # Same defaults as the real Instruct checkpoint: sampling at 0.6 / 0.9, stop at any end token.
    return GenerationConfig(
        bos_token_id=ids[BEGIN_OF_TEXT],
        eos_token_id=[ids[END_OF_TEXT], ids[EOM], ids[EOT]],
        pad_token_id=ids[FINETUNE_PAD],
        do_sample=True,
        temperature=0.6,
        top_p=0.9,
    )


def build_tiny_mllama(path: str | Path) -> Path:
    """Write a tiny random ``MllamaForConditionalGeneration`` plus its ``MllamaProcessor`` to ``path``.

    Reloads with ``AutoProcessor.from_pretrained`` and ``MllamaForConditionalGeneration.from_pretrained``.
    """
    import torch
    from transformers import (
        MllamaConfig,
        MllamaForConditionalGeneration,
        MllamaImageProcessor,
        MllamaProcessor,
    )

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    ids = _token_ids(tokenizer)
    eos = [ids[END_OF_TEXT], ids[EOM], ids[EOT]]
    vision_hidden, intermediate_layers = 32, [0, 1]
    config = MllamaConfig(
        vision_config={
            "hidden_size": vision_hidden,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_global_layers": 1,
            "attention_heads": 2,
            "image_size": TINY_IMAGE_SIZE,
            "patch_size": 14,
            "max_num_tiles": TINY_MAX_TILES,
            "intermediate_layers_indices": intermediate_layers,
            "vision_output_dim": vision_hidden * (1 + len(intermediate_layers)),
        },
        text_config={
            "vocab_size": ids[IMAGE],  # the image token sits just past the text vocab, as in the real model
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 3,
            "cross_attention_layers": [1],
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 8192,
            "bos_token_id": ids[BEGIN_OF_TEXT],
            "eos_token_id": eos,
            "pad_token_id": ids[FINETUNE_PAD],
        },
        image_token_index=ids[IMAGE],
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_SEED)
        model = MllamaForConditionalGeneration(config).eval()
    model.generation_config = _generation_config(ids)
    image_processor = MllamaImageProcessor(
        size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE},
        max_image_tiles=TINY_MAX_TILES,
        image_mean=[0.48145466, 0.4578275, 0.40821073],  # CLIP statistics, as the real checkpoint
        image_std=[0.26862954, 0.26130258, 0.27577711],
    )
    processor = MllamaProcessor(image_processor, tokenizer, chat_template=LLAMA32_VISION_CHAT_TEMPLATE)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def build_tiny_llama(path: str | Path) -> Path:
    """Write a tiny random text-only ``LlamaForCausalLM`` with the same tokenizer and chat template."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    ids = _token_ids(tokenizer)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=8192,
        bos_token_id=ids[BEGIN_OF_TEXT],
        eos_token_id=[ids[END_OF_TEXT], ids[EOM], ids[EOT]],
        pad_token_id=ids[FINETUNE_PAD],
        tie_word_embeddings=True,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_SEED)
        model = LlamaForCausalLM(config).eval()
    model.generation_config = _generation_config(ids)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


_CACHE: dict[str, Path] = {}
_BUILDERS = {"mllama": build_tiny_mllama, "llama": build_tiny_llama}


def tiny_model_dir(kind: str = "mllama") -> Path:
    """Build ``kind`` ("mllama" or "llama") once per process in a temp dir and return its path.

    Test modules of different owners can share one build without a shared conftest.
    """
    if kind not in _BUILDERS:
        raise ValueError(f"unknown tiny model kind {kind!r}; choose from {sorted(_BUILDERS)}")
    path = _CACHE.get(kind)
    if path is None or not (path / "config.json").exists():
        import atexit
        import shutil
        import tempfile

        root = Path(tempfile.mkdtemp(prefix=f"vistack-tiny-{kind}-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        path = _CACHE[kind] = _BUILDERS[kind](root / kind)
    return path


_CROSS_ENCODER_TEXTS = [
    "quarterly revenue grew in the third quarter",
    "the invoice total is due next month",
    "a dashboard chart of monthly sales",
    "scanned form with a signature",
    "slide deck about hiring plans",
    "table of costs by region",
    "unrelated text",
]


def build_tiny_cross_encoder(path: str | Path) -> Path:
    """A 1-layer random BERT with one label and a small WordPiece tokenizer, saved like a real cross-encoder.

    Exercises the reranking code path offline; its scores mean nothing.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(_CROSS_ENCODER_TEXTS * 2, trainers.WordPieceTrainer(vocab_size=200, special_tokens=specials))
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
