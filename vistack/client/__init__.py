"""vistack's Python client: a thin, typed layer over the HTTP API.

``VistackClient`` speaks to a running server (``base_url``) or, for the
in-process CLI, to an ASGI app directly, through the same code path.
"""

from .http import VistackAPIError, VistackClient

__all__ = ["VistackAPIError", "VistackClient"]
