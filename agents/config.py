"""Configuration of the built-in Responses provider (``providers.responses[].config``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vistack.api.vector_stores import SearchMode

VisionStrategy = Literal["top1", "stitch", "per_page", "text"]


class ResponsesConfig(BaseModel):
    """Defaults a request can override (``extra_body={"vision": {"strategy": ..., "pages": k}}``)."""

    model_config = ConfigDict(extra="forbid")

    vision_strategy: VisionStrategy = Field(
        default="top1",
        description="How retrieved page images reach a vision model: top1 (the best page), stitch (the top "
        "`vision_pages` pages composed into one image), per_page (ask each page, then merge the answers), "
        "text (no images, retrieved text only).",
    )
    vision_pages: int = Field(default=3, ge=1, le=8, description="pages used by stitch and per_page")
    per_page_answer_tokens: int = Field(default=512, ge=16, description="cap of each per_page partial answer")
    stitch_max_side: int = Field(default=1120, ge=224, le=4480, description="Llama 3.2 Vision: 1120 (4 tiles)")
    retrieve_first: bool = Field(
        default=True,
        description="When a request names vector stores, search before the first model call (Llama 3.2 Vision "
        "does not call tools reliably with an image in the prompt). tool_choice 'none' still disables it.",
    )
    file_search_mode: SearchMode | None = Field(
        default=None,
        description="search mode of the file_search tool unless the tool names one; default: the "
        "distribution's vector_stores.default_search_mode",
    )
    max_images_per_call: int = Field(
        default=1, ge=0, le=16, description="images a model sees per call; older ones become a placeholder"
    )
    context_chars_per_source: int = Field(default=2000, ge=200, description="retrieved text shown per source")
    max_tool_output_chars: int = Field(default=20000, ge=1000, description="tool results are cut to this")
    mcp_timeout_s: float = Field(default=30.0, gt=0, le=600)
    background_workers: int = Field(default=2, ge=1, le=32)
    background_queue_size: int = Field(default=256, ge=1)
    background_timeout_s: float = Field(default=1800.0, gt=0)
