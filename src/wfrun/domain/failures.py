"""How runs end badly: the one catalogue of run failure codes (the wire ``engine_code``), each
with its stable reason and its category. Engines and workers name a :class:`FailureCode`; the
API alone turns a category into an HTTP status; ``docs/errors.md`` documents every code (a
test holds the two together).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from wfrun.errors import Category


class FailureCode(Enum):
    """Every code a run can end with, as ``(reason, category)``."""

    ENGINE_VALIDATION_FAILED = ("The workflow graph failed validation.", Category.INTERNAL)
    ENGINE_EXECUTION_FAILED = ("A workflow node failed.", Category.INTERNAL)
    ENGINE_OUTPUT_MISSING = (
        "The workflow did not produce a promised output.",
        Category.INTERNAL,
    )
    ENGINE_TIMEOUT = ("The run timed out.", Category.TIMEOUT)
    ENGINE_UNAVAILABLE = ("The engine stayed unavailable.", Category.UNAVAILABLE)
    QUEUE_TIMEOUT = ("The run did not start within its queue deadline.", Category.UNAVAILABLE)
    WORKER_LOST = ("The run was interrupted too many times.", Category.INTERNAL)
    MEDIA_URL_FORBIDDEN = ("A media URL was refused.", Category.INVALID_INPUT)
    MEDIA_FETCH_FAILED = ("A media URL could not be fetched.", Category.INVALID_INPUT)
    MEDIA_TOO_LARGE = ("A media file is too large.", Category.TOO_LARGE)
    INPUT_ASSET_GONE = ("An input asset is no longer available.", Category.INVALID_INPUT)
    INVALID_WORKFLOW_INPUT = ("Workflow input content is invalid.", Category.INVALID_INPUT)
    PROVIDER_REJECTED = ("The provider rejected the request.", Category.INVALID_INPUT)
    PROVIDER_UNAVAILABLE = (
        "The provider refused the request for this account.",
        Category.UNAVAILABLE,
    )
    PROVIDER_NOT_CONFIGURED = (
        "The model provider is not configured on this server.",
        Category.UNAVAILABLE,
    )
    CONTENT_SAFETY_REJECTED = (
        "The provider's content safety check rejected the input.",
        Category.INVALID_INPUT,
    )
    CONTENT_REAL_PERSON_DETECTED = (
        "The provider found a real person in the input media.",
        Category.INVALID_INPUT,
    )
    REAL_PERSON_REGISTRATION_FAILED = (
        "The real-person material failed registration.",
        Category.INVALID_INPUT,
    )
    REAL_PERSON_REGISTRATION_UNAVAILABLE = (
        "Real-person material registration is not available.",
        Category.UNAVAILABLE,
    )
    USER_CANCELLED = ("Run cancelled by the user.", Category.CANCELLED)
    COST_LIMIT_REACHED = (
        "The run was stopped at its cost limit.",
        Category.PAYMENT_REQUIRED,
    )

    @property
    def reason(self) -> str:
        reason: str = self.value[0]
        return reason

    @property
    def category(self) -> Category:
        category: Category = self.value[1]
        return category


@dataclass(frozen=True)
class Failure:
    """Why one run ended without succeeding: a catalogue code plus the precise detail.

    ``reason`` and ``category`` default to the code's; a few failures say more precisely
    (a provider's reason, or content refused on the *output*, which is unprocessable rather
    than invalid input)."""

    code: FailureCode
    detail: str
    node_id: str | None = None
    reason_override: str | None = None
    category_override: Category | None = None

    @property
    def reason(self) -> str:
        return self.reason_override or self.code.reason

    @property
    def category(self) -> Category:
        return self.category_override or self.code.category


def failure_code(
    name: str, default: FailureCode = FailureCode.ENGINE_EXECUTION_FAILED
) -> FailureCode:
    """The catalogue member named ``name`` (an engine's or provider's code), else ``default``."""
    return FailureCode.__members__.get(name, default)


def cancelled(detail: str) -> Failure:
    return Failure(FailureCode.USER_CANCELLED, detail)
