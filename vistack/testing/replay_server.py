"""A distribution around the replay provider, for tests that drive the agent through a real server.

Use with :class:`vistack.testing.server.ServerProcess`::

    dist = replay_distribution(tmp_path / "script.jsonl", tmp_path / "calls.jsonl")
    with ServerProcess(dist, tmp_path / "srv") as server: ...
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

REPLAY_MODEL_ID = "replay-llama"


class ReplayScript:
    """A replay model's script and the log of the calls it received, both under ``root``; tests rewrite the
    script between requests (see :mod:`vistack.testing.replay`)."""

    def __init__(self, root: Path, name: str = "script") -> None:
        self.script, self.log = root / f"{name}.jsonl", root / f"{name}-calls.jsonl"
        self.script.write_text("")

    def say(self, *texts: str) -> None:
        """The next calls answer ``texts``, in order; the log starts afresh."""
        self.clear_log()
        self.script.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))

    def clear_log(self) -> None:
        self.log.write_text("")

    def calls(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]


def stream_events(http: httpx.Client, body: dict[str, Any]) -> list[dict]:
    """``POST /v1/responses`` with ``stream: true``: the events' JSON, checked to be numbered 0, 1, 2, ..."""
    events = []
    with http.stream("POST", "/v1/responses", json={**body, "stream": True}) as r:
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            if line.startswith("data:"):
                events.append(json.loads(line[5:]))
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events


def replay_distribution(
    script: str | Path,
    log: str | Path | None = None,
    *,
    name: str = "replay",
    responses: bool = True,
    default_text: str | None = None,
    model_id: str = REPLAY_MODEL_ID,
    vector_stores: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The replay model (a vision LLM), MiniLM embeddings, localfs files, embedded Chroma and,
    with ``responses=True``, the builtin Responses provider.

    ``script``/``log``/``default_text`` are the replay provider's config (see
    :mod:`vistack.testing.replay`); paths are made absolute, since the server runs in its own
    working directory.
    """
    replay_config: dict[str, Any] = {"script": str(Path(script).absolute())}
    if log is not None:
        replay_config["log"] = str(Path(log).absolute())
    if default_text is not None:
        replay_config["default_text"] = default_text
    apis = ["inference", "files", "vector_io"]
    providers: dict[str, Any] = {
        "inference": [
            {
                "provider_id": "replay",
                "provider_type": "inline::replay",
                "module": "vistack.testing.replay",
                "config": replay_config,
            },
            {"provider_id": "sentence-transformers", "provider_type": "inline::sentence-transformers", "config": {}},
        ],
        "files": [
            {
                "provider_id": "localfs",
                "provider_type": "inline::localfs",
                "config": {"max_file_bytes": 20 * 1024 * 1024},
            }
        ],
        "vector_io": [{"provider_id": "chromadb", "provider_type": "inline::chromadb", "config": {}}],
    }
    if responses:
        apis.append("responses")
        providers["responses"] = [{"provider_id": "builtin", "provider_type": "inline::builtin", "config": {}}]
    return {
        "version": 2,
        "distro_name": name,
        "apis": apis,
        "vector_stores": vector_stores or {},
        "providers": providers,
        "models": [
            {"model_id": model_id, "provider_id": "replay", "model_type": "llm", "metadata": {"vision": True}},
            {
                "model_id": "all-MiniLM-L6-v2",
                "provider_id": "sentence-transformers",
                "model_type": "embedding",
                "metadata": {"embedding_dimension": 384},
            },
        ],
        "storage": {"state_dir": "${env.VISTACK_HOME}/" + name},
    }
