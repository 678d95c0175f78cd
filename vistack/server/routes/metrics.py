"""``GET /metrics``: Prometheus text exposition of the app's own registry (not part of the OpenAPI schema)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from vistack.metrics import Metrics, current

router = APIRouter()


def app_metrics(request: Request) -> Metrics:
    """The serving app's :class:`Metrics` (``app.state.metrics``), else the process's current ones."""
    found = getattr(request.app.state, "metrics", None)
    return found if isinstance(found, Metrics) else current()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    body, content_type = app_metrics(request).render()
    return Response(content=body, media_type=content_type, headers={"Cache-Control": "no-store"})
