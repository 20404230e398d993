"""Every error resolves to a status, and docs/errors.md documents every code with it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from wfrun.api.errors import status_for
from wfrun.errors import ServiceError, all_error_classes

DOC = Path(__file__).parents[2] / "docs" / "errors.md"
HANDLER_CODES = {"ENDPOINT_NOT_FOUND": "404", "METHOD_NOT_ALLOWED": "405", "HTTP_ERROR": "any"}


def _documented() -> dict[str, str]:
    rows = re.findall(r"^\| ([A-Z_]+) \| (\w+) \|", DOC.read_text(), flags=re.MULTILINE)
    return dict(rows)


@pytest.mark.parametrize("error", all_error_classes(), ids=lambda c: c.__name__)
def test_every_error_has_a_status_a_code_and_a_reason(error: type[ServiceError]):
    assert 400 <= status_for(error) <= 503
    assert re.fullmatch(r"[A-Z_]+", error.code)
    assert error.reason.endswith(".")


def test_catalogue_documents_every_request_error_with_its_status():
    documented = _documented()
    expected = {cls.code: str(status_for(cls)) for cls in all_error_classes()}
    expected |= HANDLER_CODES
    missing = {code: status for code, status in expected.items() if documented.get(code) != status}
    assert missing == {}
