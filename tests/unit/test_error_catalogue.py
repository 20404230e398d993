"""docs/errors.md documents every request error and every run failure code with the HTTP
status the API gives it, and the API's statuses come from categories alone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from wfrun.api.errors import STATUS_BY_CATEGORY, status_for
from wfrun.domain.failures import FailureCode
from wfrun.errors import Category, ServiceError, all_error_classes

DOC = Path(__file__).parents[2] / "docs" / "errors.md"
HANDLER_CODES = {"ENDPOINT_NOT_FOUND": "404", "METHOD_NOT_ALLOWED": "405", "HTTP_ERROR": "any"}
RUN_SECTION = "## Run errors"
# A code whose status depends on where it happened (input vs generated output).
SPLIT = {"CONTENT_SAFETY_REJECTED": "400 / 422"}


def _table(text: str) -> dict[str, str]:
    rows = re.findall(r"^\| ([A-Z_]+) \| ([\w /]+?) \|", text, flags=re.MULTILINE)
    return dict(rows)


def _sections() -> tuple[dict[str, str], dict[str, str]]:
    requests, runs = DOC.read_text().split(RUN_SECTION)
    return _table(requests), _table(runs)


def test_every_category_has_its_own_status():
    assert set(STATUS_BY_CATEGORY) == set(Category)
    assert STATUS_BY_CATEGORY[Category.INTERNAL] == 500
    assert STATUS_BY_CATEGORY[Category.UNAVAILABLE] == 503


@pytest.mark.parametrize("error", all_error_classes(), ids=lambda c: c.__name__)
def test_every_error_has_a_category_a_code_and_a_reason(error: type[ServiceError]):
    assert status_for(error) == STATUS_BY_CATEGORY[error.category]
    assert (error.category is Category.INTERNAL) == (error is ServiceError)
    assert re.fullmatch(r"[A-Z_]+", error.code)
    assert error.reason.endswith(".")


def test_catalogue_documents_every_request_error_with_its_status():
    documented, _ = _sections()
    expected = {cls.code: str(status_for(cls)) for cls in all_error_classes()}
    expected |= HANDLER_CODES
    wrong = {code: status for code, status in expected.items() if documented.get(code) != status}
    assert wrong == {}


def test_catalogue_documents_every_run_failure_with_its_status():
    _, documented = _sections()
    expected = {code.name: str(STATUS_BY_CATEGORY[code.category]) for code in FailureCode}
    expected |= SPLIT
    assert documented == expected
    for code in FailureCode:
        assert code.reason.endswith("."), code
