"""commbox-async: the asyncio-native (and trio-friendly) client for the CommBox REST API."""

from ._client import (
    DEFAULT_BASE_URL,
    DEFAULT_BURST,
    DEFAULT_RATE_LIMIT,
    NOT_GIVEN,
    AsyncCommBox,
    NotGiven,
)
from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BulkStoppedError,
    ClientStateError,
    CommBoxError,
    ConfigurationError,
    DeadlineExceededError,
    DecodeError,
    InputFileError,
    InvalidArgumentError,
    InvalidResponseError,
    JournalError,
    MissingExtraError,
    NotFoundError,
    NotImplementedAPIError,
    PartialSuccessError,
    PermissionDeniedError,
    Processed,
    RateLimitError,
    ResponseTooLargeError,
    ServerError,
    TokenError,
)
from ._files import Attachment
from ._hooks import ClientStats, Hooks, RequestEvent, ResponseEvent, RetryEvent, ThrottleEvent
from ._json import DEFAULT_MAX_DEPTH
from ._logging import configure_from_env as _configure_from_env
from ._response import APIResponse
from ._throttle import AdaptiveThrottle, Throttle, TokenBucket
from ._version import __version__
from .models import (
    CustomIndicator,
    EmailAddress,
    NewChild,
    NewObject,
    NewUser,
    ObjectActivityType,
    ObjectStatusType,
    ObjectType,
    StreamProviderType,
)

__all__ = [
    "__version__",
    # client
    "AsyncCommBox",
    "DEFAULT_BASE_URL",
    "DEFAULT_RATE_LIMIT",
    "DEFAULT_BURST",
    "DEFAULT_MAX_DEPTH",
    "NOT_GIVEN",
    "NotGiven",
    "APIResponse",
    "Attachment",
    # requests and the enums they take
    "NewObject",
    "NewChild",
    "NewUser",
    "EmailAddress",
    "CustomIndicator",
    "ObjectType",
    "ObjectStatusType",
    "StreamProviderType",
    "ObjectActivityType",
    # throttling and observability
    "Throttle",
    "TokenBucket",
    "AdaptiveThrottle",
    "Hooks",
    "ClientStats",
    "RequestEvent",
    "ResponseEvent",
    "RetryEvent",
    "ThrottleEvent",
    # errors
    "CommBoxError",
    "ConfigurationError",
    "InvalidArgumentError",
    "MissingExtraError",
    "ClientStateError",
    "JournalError",
    "InputFileError",
    "TokenError",
    "BulkStoppedError",
    "Processed",
    "APIConnectionError",
    "APITimeoutError",
    "DeadlineExceededError",
    "APIStatusError",
    "BadRequestError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "RateLimitError",
    "ServerError",
    "NotImplementedAPIError",
    "PartialSuccessError",
    "InvalidResponseError",
    "ResponseTooLargeError",
    "DecodeError",
]

# COMMBOX_LOG=debug|info: the one thing importing the library may do, and only when asked.
_configure_from_env()
