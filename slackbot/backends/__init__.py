"""Fine-tuning backends: a small protocol the Slack side uses, and its implementations."""

from slackbot.backends.base import (
    AuthError,
    Backend,
    BackendError,
    ConflictError,
    Dataset,
    FineTuneSpec,
    ModelState,
    NotFoundError,
    ProtocolError,
    RateLimitedError,
    ServerError,
    TransportError,
    ValidationError,
)

__all__ = [
    "AuthError",
    "Backend",
    "BackendError",
    "ConflictError",
    "Dataset",
    "FineTuneSpec",
    "ModelState",
    "NotFoundError",
    "ProtocolError",
    "RateLimitedError",
    "ServerError",
    "TransportError",
    "ValidationError",
]
