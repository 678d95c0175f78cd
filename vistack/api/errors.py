"""Named errors a user can cause, each carrying its HTTP status.

Providers and core code raise these; the server turns them into
OpenAI-style ``{"error": {"message", "type", "code"}}`` bodies, so a client
never sees a stack trace.
"""

from __future__ import annotations

import math


def first_line(e: BaseException) -> str:
    """An exception's first line (at most 400 characters), for a one-line error message."""
    text = str(e).strip().splitlines()
    line = text[0] if text else type(e).__name__
    return line[:400]


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

    def headers(self) -> dict[str, str]:
        """Response headers the error needs (``Retry-After``, ``WWW-Authenticate``)."""
        return {}


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


def not_found_message(
    resource_type: str,
    name: str,
    client_command: str | None = None,
    command_args: str | None = None,
    plural: str | None = None,
    parent: str | None = None,
) -> str:
    """Llama Stack's wording, which its clients and tests match on:
    ``Response 'resp_x' not found. Use 'client.responses.list()' to list available Responses.``
    """
    where = f" in {parent}" if parent else ""
    message = f"{resource_type} '{name}' not found{where}."
    if client_command:
        args = f'"{command_args}"' if command_args else ""
        message += f" Use 'client.{client_command}({args})' to list available {plural or resource_type + 's'}."
    return message


class ModelNotFoundError(NotFoundError):
    def __init__(self, model_id: str, available: list[str] | None = None) -> None:
        hint = ""
        if available:
            shown = ", ".join(sorted(available)[:10])
            hint = f" Available models: {shown}."
        super().__init__(
            not_found_message("Model", model_id, "models.list")
            + f" Register one with POST /v1/models.{hint}",
            code="model_not_found",
            param="model",
        )


class ResponseNotFoundError(NotFoundError):
    def __init__(self, response_id: str) -> None:
        super().__init__(not_found_message("Response", response_id, "responses.list"), code="response_not_found")


class ConversationNotFoundError(NotFoundError):
    def __init__(self, conversation_id: str) -> None:
        super().__init__(not_found_message("Conversation", conversation_id), code="conversation_not_found")


class ConversationItemNotFoundError(NotFoundError):
    def __init__(self, item_id: str, conversation_id: str) -> None:
        super().__init__(
            not_found_message(
                "Conversation item",
                item_id,
                "conversations.items.list",
                conversation_id,
                "conversation items",
                f"conversation '{conversation_id}'",
            ),
            code="item_not_found",
        )


class InvalidParameterError(BadRequestError):
    """Llama Stack's wording: ``Invalid value for 'param': value. Constraint.``"""

    def __init__(self, param: str, value: object, constraint: str) -> None:
        super().__init__(f"Invalid value for '{param}': {value}. {constraint}", param=param)


class ConflictError(VistackError):
    status_code = 409
    error_type = "conflict_error"


class PayloadTooLargeError(VistackError):
    status_code = 413
    error_type = "invalid_request_error"


class UnprocessableEntityError(VistackError):
    status_code = 422
    error_type = "invalid_request_error"


class TooManyRequestsError(VistackError):
    """429: a queue is full or a rate limit is reached; ``Retry-After`` says when to try again."""

    status_code = 429
    error_type = "rate_limit_error"

    def __init__(self, message: str, *, retry_after_s: float = 1.0, code: str | None = "rate_limit_exceeded",
                 param: str | None = None) -> None:
        super().__init__(message, code=code, param=param)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(max(1, math.ceil(self.retry_after_s)))}


class ServiceUnavailableError(VistackError):
    """A backend (model weights, remote engine, vector DB) is not usable right now."""

    status_code = 503
    error_type = "service_unavailable"


class ServiceNotEnabledError(ServiceUnavailableError):
    """A request needs an API the distribution does not configure (Llama Stack's wording)."""

    def __init__(self, service: str, hint: str | None = None) -> None:
        message = (
            f"Service '{service}' is not enabled. Please check your configuration and enable the service "
            "before trying again."
        )
        super().__init__(message + (f"\n\n{hint}" if hint else ""), code="service_not_enabled")


class ConfigError(Exception):
    """A distribution file is invalid; the message names file, key path and expectation."""
