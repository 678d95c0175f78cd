"""Named errors a user can cause, each carrying its HTTP status.

Providers and core code raise these; the server turns them into
OpenAI-style ``{"error": {"message", "type", "code"}}`` bodies, so a client
never sees a stack trace.
"""

from __future__ import annotations


class VistackError(Exception):
    """Base class: ``status_code`` and ``error_type`` travel to the client."""

    status_code: int = 500
    error_type: str = "server_error"

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param

    def to_body(self) -> dict:
        return {"error": {"message": self.message, "type": self.error_type, "code": self.code, "param": self.param}}


class BadRequestError(VistackError):
    status_code = 400
    error_type = "invalid_request_error"


class AuthenticationError(VistackError):
    status_code = 401
    error_type = "authentication_error"


class PermissionDeniedError(VistackError):
    status_code = 403
    error_type = "permission_error"


class NotFoundError(VistackError):
    status_code = 404
    error_type = "not_found_error"


class ModelNotFoundError(NotFoundError):
    def __init__(self, model_id: str, available: list[str] | None = None) -> None:
        hint = ""
        if available:
            shown = ", ".join(sorted(available)[:10])
            hint = f" Available models: {shown}."
        super().__init__(
            f"Model '{model_id}' not found. Use GET /v1/models to list models, or register it with POST /v1/models.{hint}",
            code="model_not_found",
            param="model",
        )


class ConflictError(VistackError):
    status_code = 409
    error_type = "conflict_error"


class PayloadTooLargeError(VistackError):
    status_code = 413
    error_type = "invalid_request_error"


class UnprocessableEntityError(VistackError):
    status_code = 422
    error_type = "invalid_request_error"


class ServiceUnavailableError(VistackError):
    """A backend (model weights, remote engine, vector DB) is not usable right now."""

    status_code = 503
    error_type = "service_unavailable"


class ConfigError(Exception):
    """A distribution file is invalid; the message names file, key path and expectation."""
