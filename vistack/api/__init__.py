"""Wire models, errors and provider protocols. Depends on nothing else in vistack."""

from .datatypes import Api, HealthResponse, HealthStatus, ProviderInfo
from .errors import (
    AuthenticationError,
    BadRequestError,
    ConfigError,
    ConflictError,
    ModelNotFoundError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    ServiceUnavailableError,
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
    "HealthResponse",
    "HealthStatus",
    "InferenceProvider",
    "Model",
    "ModelNotFoundError",
    "ModelType",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "Provider",
    "ProviderInfo",
    "ServiceUnavailableError",
    "UnprocessableEntityError",
    "VistackError",
]
