"""wfrun's Python SDK: typed sync and async clients for the chenyu-compatible Open API v2.

    from wfrun_client import Client
    client = Client(base_url="http://127.0.0.1:8000", api_key="wfk_…")
    run = client.runs.submit("wf_…", {"n6_value": "hi"}, wait=True)

Depends on httpx and pydantic only (never on the server package).
"""

from wfrun_client import models, webhooks
from wfrun_client._async import AsyncClient
from wfrun_client._core import RetryPolicy
from wfrun_client._sync import Client
from wfrun_client.errors import (
    APIError,
    AuthError,
    Conflict,
    ConnectionFailed,
    IdempotencyConflict,
    InsufficientBalance,
    InvalidRequest,
    MaxCostExceeded,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    SpendLimitExceeded,
    TooLarge,
    WaitTimeout,
    WebhookVerificationError,
    WfrunError,
)
from wfrun_client.models import RunEvent

__version__ = "0.1.0"
__all__ = [
    "APIError",
    "AsyncClient",
    "AuthError",
    "Client",
    "Conflict",
    "ConnectionFailed",
    "IdempotencyConflict",
    "InsufficientBalance",
    "InvalidRequest",
    "MaxCostExceeded",
    "NotFound",
    "PermissionDenied",
    "RateLimited",
    "RetryPolicy",
    "RunEvent",
    "ServerError",
    "ServiceUnavailable",
    "SpendLimitExceeded",
    "TooLarge",
    "WaitTimeout",
    "WebhookVerificationError",
    "WfrunError",
    "models",
    "webhooks",
]
