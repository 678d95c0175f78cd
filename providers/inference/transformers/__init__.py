"""``inline::transformers``: Llama 3.2 Vision (Mllama) or any Hugging Face causal LM, in-process.

The provider runs the model inside the server: no engine to operate, which
suits a laptop or a single GPU box. It is built for one-request-at-a-time
latency, not throughput: requests to one model are serialized on a single
worker thread (``generate`` is not re-entrant on one model) while the event
loop stays free; for batching use ``remote::vllm``.

torch and transformers are imported only inside functions, so importing this
package (the registry does it to read the config class) stays cheap.

Errors a client can see: ``BadRequestError`` (400: bad sampling values,
images the model cannot take, template refusals), ``PayloadTooLargeError``
(413: image limits), ``ServiceUnavailableError`` (503: weights missing or
unloadable, GPU out of memory, queue full), ``ModelNotFoundError`` (404, only
if the server forwards a model it did not register here).

Modules: ``config`` (the config block), ``provider`` (the provider API, wiring the rest),
``loading`` (checkpoint → model, the 503s), ``worker`` (one model's weights and worker queue),
``prompting`` (requests → model inputs), ``sampling`` (token budget, ``GenerationConfig``),
``generation`` (``generate`` on the worker, text streaming), ``stops`` (stop strings),
``tool_calls`` (tools shown, tool calls parsed) and ``responses`` (OpenAI-shaped results and streams).
"""

from .config import TransformersInferenceConfig
from .provider import TransformersInferenceProvider
from .tool_calls import parse_tool_calls

__all__ = ["TransformersInferenceConfig", "TransformersInferenceProvider", "parse_tool_calls"]
