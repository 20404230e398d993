"""Errors raised by the safe media fetcher; ``code`` is the run failure they cause."""

from __future__ import annotations

from typing import ClassVar

from wfrun.domain.failures import FailureCode


class FetchError(Exception):
    """Base of every fetch failure.

    Attributes:
        code: The run failure (wire ``engine_code``) it causes.
        detail: Precise explanation naming the URL, host or address involved.
    """

    code: ClassVar[FailureCode] = FailureCode.MEDIA_FETCH_FAILED

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class FetchRefused(FetchError):
    """The URL (or a redirect target) is not allowed: scheme, credentials or address."""

    code: ClassVar[FailureCode] = FailureCode.MEDIA_URL_FORBIDDEN


class FetchTooLarge(FetchError):
    """The body is (or declares itself) larger than the policy allows."""

    code: ClassVar[FailureCode] = FailureCode.MEDIA_TOO_LARGE


class FetchFailed(FetchError):
    """DNS, connection, timeout, HTTP status or redirect-count failure."""

    code: ClassVar[FailureCode] = FailureCode.MEDIA_FETCH_FAILED


class FetchUnexpected(FetchFailed):
    """A failure the fetcher has no precise mapping for: a bug to fix (it is logged with its
    traceback), yet still a ``FetchError``, so the run fails at once as ``MEDIA_FETCH_FAILED``
    instead of crashing its runner."""
