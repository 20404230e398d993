"""The error tree every layer raises; the API maps categories to HTTP statuses in one place.

Each concrete error has a stable ``code`` (the wire ``engine_code``) and a ``reason`` (the short
human message, also the wire ``msg``); ``detail`` is the precise, instance-specific explanation.

    ServiceError
    ├── InvalidInput (400)        ├── NotFound (404)        ├── Conflict (409)
    ├── Unauthenticated (401)     ├── PaymentRequired (402) ├── IdempotencyMismatch (422)
    ├── Forbidden (403)           ├── TooLarge (413)        ├── TooManyRequests (429)
    │                                                       └── Unavailable (503)
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar


class Category(StrEnum):
    """What kind of failure something is. Only the API turns a category into an HTTP status
    (``api/errors.py``); below it, errors and run failures carry a category, never a status."""

    INVALID_INPUT = "invalid_input"
    UNAUTHENTICATED = "unauthenticated"
    PAYMENT_REQUIRED = "payment_required"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    TOO_LARGE = "too_large"
    UNPROCESSABLE = "unprocessable"
    """Well-formed but refused: an idempotency key reused for another request, generated
    content a provider's safety check rejected."""
    RATE_LIMITED = "rate_limited"
    """Too much at once from one caller: retry later (HTTP 429 with ``Retry-After``)."""
    INTERNAL = "internal"
    UNAVAILABLE = "unavailable"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    """Not an error: the user stopped the run."""


class ServiceError(Exception):
    """Base of every expected failure."""

    code: ClassVar[str] = "INTERNAL_ERROR"
    reason: ClassVar[str] = "Internal error."
    category: ClassVar[Category] = Category.INTERNAL
    retry_after: int | None = None
    """Seconds a 429 or 503 advises waiting (``Retry-After``); None: the operator's default."""

    def __init__(
        self, detail: str, *, engine_code: str | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.engine_code = engine_code or self.code
        self.retry_after = retry_after


class InvalidInput(ServiceError):
    code = "INVALID_REQUEST"
    reason = "The request is invalid."
    category = Category.INVALID_INPUT


class Unauthenticated(ServiceError):
    code = "UNAUTHENTICATED"
    reason = "Authentication failed."
    category = Category.UNAUTHENTICATED


class Forbidden(ServiceError):
    code = "FORBIDDEN"
    reason = "Forbidden."
    category = Category.FORBIDDEN


class NotFound(ServiceError):
    code = "NOT_FOUND"
    reason = "Not found."
    category = Category.NOT_FOUND


class Conflict(ServiceError):
    code = "CONFLICT"
    reason = "Conflict."
    category = Category.CONFLICT


class PaymentRequired(ServiceError):
    code = "INSUFFICIENT_BALANCE"
    reason = "Insufficient balance."
    category = Category.PAYMENT_REQUIRED


class IdempotencyMismatch(ServiceError):
    code = "IDEMPOTENCY_KEY_REUSED"
    reason = "Idempotency key reused with a different request."
    category = Category.UNPROCESSABLE


class TooLarge(ServiceError):
    code = "PAYLOAD_TOO_LARGE"
    reason = "Payload too large."
    category = Category.TOO_LARGE


class TooManyRequests(ServiceError):
    code = "TOO_MANY_REQUESTS"
    reason = "Too many requests."
    category = Category.RATE_LIMITED


class Unavailable(ServiceError):
    code = "ENGINE_UNAVAILABLE"
    reason = "Service unavailable."
    category = Category.UNAVAILABLE


# ---- concrete errors -------------------------------------------------------------------------


class InvalidWorkflowInput(InvalidInput):
    code = "INVALID_WORKFLOW_INPUT"
    reason = "Workflow input content is invalid."


class InvalidParameter(InvalidInput):
    code = "INVALID_PARAMETER"
    reason = "Request parameter is invalid."


class IdempotencyKeyRequired(InvalidInput):
    code = "IDEMPOTENCY_KEY_REQUIRED"
    reason = "idempotency_key is required."


class ExternalCostRiskNotAccepted(InvalidInput):
    code = "EXTERNAL_COST_RISK_NOT_ACCEPTED"
    reason = "This workflow may incur external model cost; accept_external_cost_risk is required."


class InvalidWorkflowPackage(InvalidInput):
    code = "INVALID_WORKFLOW_PACKAGE"
    reason = "Workflow package is invalid."


class MissingApiKey(Unauthenticated):
    code = "API_KEY_MISSING"
    reason = "API key is missing."


class InvalidApiKey(Unauthenticated):
    code = "API_KEY_INVALID"
    reason = "API key is invalid or revoked."


class WorkflowNotFound(NotFound):
    code = "WORKFLOW_NOT_FOUND"
    reason = "Workflow not found."


class RevisionNotFound(NotFound):
    code = "REVISION_NOT_FOUND"
    reason = "Workflow revision not found."


class RunNotFound(NotFound):
    code = "RUN_NOT_FOUND"
    reason = "Run not found."


class AccountNotFound(NotFound):
    code = "ACCOUNT_NOT_FOUND"
    reason = "Account not found."


class ApiKeyNotFound(NotFound):
    code = "API_KEY_NOT_FOUND"
    reason = "API key not found."


class AssetNotFound(NotFound):
    code = "ASSET_NOT_FOUND"
    reason = "Asset not found."


class AssetExpired(NotFound):
    code = "ASSET_EXPIRED"
    reason = "Asset has expired."


class WebhookEndpointNotFound(NotFound):
    code = "WEBHOOK_ENDPOINT_NOT_FOUND"
    reason = "Webhook endpoint not found."


class WebhookDeliveryNotFound(NotFound):
    code = "WEBHOOK_DELIVERY_NOT_FOUND"
    reason = "Webhook delivery not found."


class InvalidAsset(InvalidInput):
    code = "INVALID_ASSET"
    reason = "The uploaded file is not acceptable."


class AssetTooLarge(TooLarge):
    code = "ASSET_TOO_LARGE"
    reason = "The uploaded file is too large."


class InstanceNotFound(NotFound):
    code = "INSTANCE_NOT_FOUND"
    reason = "Engine instance not found."


class InstanceExists(Conflict):
    code = "INSTANCE_EXISTS"
    reason = "An engine instance with that URL is already registered."


class InstanceBusy(Conflict):
    code = "INSTANCE_BUSY"
    reason = "The engine instance still has runs in flight."


class FileNotFound(NotFound):
    code = "FILE_NOT_FOUND"
    reason = "File not found."


class FileLinkInvalid(Forbidden):
    code = "SIGNED_URL_INVALID"
    reason = "The link is invalid or expired."


class ModelRunNotFound(NotFound):
    code = "MODEL_RUN_NOT_FOUND"
    reason = "Model run not found."


class VerificationNotFound(NotFound):
    code = "VERIFICATION_NOT_FOUND"
    reason = "Verification not found."


class DatabaseUnavailable(Unavailable):
    """The database cannot be reached or cannot take the transaction right now (connection
    refused or lost, server starting or shutting down, SQLite locked past its busy timeout or
    its disk full). The request changed nothing, unless the connection dropped while
    committing (then it may have completed): retrying it later is safe either way."""

    code = "SERVICE_UNAVAILABLE"
    reason = "The service is temporarily unavailable."


class RealPersonUnavailable(Unavailable):
    code = "REAL_PERSON_REGISTRATION_UNAVAILABLE"
    reason = "Real-person material registration is not available."


class ProviderNotConfigured(Unavailable):
    code = "PROVIDER_NOT_CONFIGURED"
    reason = "The model provider is not configured on this server."


class TooManyStreams(TooManyRequests):
    code = "TOO_MANY_STREAMS"
    reason = "Too many open event streams for this API key."


class RateLimited(TooManyRequests):
    """The API key made more requests than its rate allows (``limits.requests_per_second``,
    shared by every API process); nothing was done."""

    code = "RATE_LIMITED"
    reason = "Too many requests for this API key."


class TooManyQueuedRuns(TooManyRequests):
    """The account already has ``limits.max_queued_runs`` runs waiting; nothing was frozen."""

    code = "TOO_MANY_QUEUED_RUNS"
    reason = "Too many queued runs for this account."


class Overloaded(Unavailable):
    """The API process has more requests waiting than it sheds (``limits.*``): answered at
    once, before anything was done."""

    code = "SERVICE_UNAVAILABLE"
    reason = "The service is temporarily unavailable."


class InsufficientBalance(PaymentRequired):
    code = "INSUFFICIENT_BALANCE"
    reason = "Insufficient balance."


class SpendLimitExceeded(PaymentRequired):
    """The quote would take the key's frozen + spent in its period past its spend limit."""

    code = "SPEND_LIMIT_EXCEEDED"
    reason = "The API key's spend limit would be exceeded."


class MaxCostExceeded(InvalidInput):
    """The quote is above the request's ``max_cost``."""

    code = "MAX_COST_EXCEEDED"
    reason = "The quote is above max_cost."


class NoAbleInstance(Conflict):
    """A ``comfyui`` revision was imported or published while no registered instance is able
    to run it (none active with its kind and labels): its runs would wait for nothing."""

    code = "NO_ABLE_INSTANCE"
    reason = "No registered engine instance is able to run this workflow."


class InstancesUnreachable(Unavailable):
    """No instance able to run a revision answered ``/object_info``, so its graph cannot be
    checked; nothing was stored or published."""

    code = "INSTANCE_UNREACHABLE"
    reason = "No engine instance able to run this workflow answered."


class InvalidTransition(Conflict):
    code = "INVALID_STATE_TRANSITION"
    reason = "The run cannot move to that state."


class NotPublished(Conflict):
    code = "WORKFLOW_NOT_PUBLISHED"
    reason = "Workflow has no published revision."


def all_error_classes() -> list[type[ServiceError]]:
    """Every ServiceError subclass, for the catalogue and its tests."""
    found: list[type[ServiceError]] = []
    stack: list[type[ServiceError]] = [ServiceError]
    while stack:
        cls = stack.pop()
        found.append(cls)
        stack.extend(cls.__subclasses__())
    return found


# ---- start-up ------------------------------------------------------------------------------


class ConfigError(Exception):
    """A configuration or start-up mistake (an unknown setting, a bad value, a port in use, a
    database that does not exist, a missing extra), told in one line: what, where, what to do.
    Not a ServiceError: it never reaches the API; the CLI prints ``error: <message>`` and
    exits 2."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MissingExtra(ConfigError):
    """Start-up: a configured feature needs an optional extra that is not installed. Not a
    ServiceError: it stops a process from starting, it never answers a request."""

    def __init__(self, setting: str, extra: str) -> None:
        super().__init__(f"{setting} needs the {extra} extra: pip install 'wfrun[{extra}]'")
        self.setting = setting
        self.extra = extra
