"""Wire models, errors and provider protocols. Depends on nothing else in vistack."""

from .datatypes import Api, HealthResponse, HealthStatus, ProviderInfo
from .errors import (
    AuthenticationError,
    BadRequestError,
    ConfigError,
    ConflictError,
    ConversationItemNotFoundError,
    ConversationNotFoundError,
    InvalidParameterError,
    ModelNotFoundError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    ResponseNotFoundError,
    ServiceNotEnabledError,
    ServiceUnavailableError,
    TooManyRequestsError,
    UnprocessableEntityError,
    VistackError,
)
from .models import Model, ModelType
from .protocols import InferenceProvider, Provider

__all__ = [
    "Api",
    "AuthenticationError",
    "BadRequestError",
    "ConfigError",
    "ConflictError",
    "ConversationItemNotFoundError",
    "ConversationNotFoundError",
    "HealthResponse",
    "HealthStatus",
    "InferenceProvider",
    "InvalidParameterError",
    "Model",
    "ModelNotFoundError",
    "ModelType",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "Provider",
    "ProviderInfo",
    "ResponseNotFoundError",
    "ServiceNotEnabledError",
    "ServiceUnavailableError",
    "TooManyRequestsError",
    "UnprocessableEntityError",
    "VistackError",
]
