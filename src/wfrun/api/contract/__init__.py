"""The published contract of the API: response models, the error envelope and the
document-wide parts of the OpenAPI document, and the offline docs pages.

Routes attach their models with :func:`wfrun.api.contract.envelope.documented`; everything that
applies to every operation (security, servers, generic error statuses) is added once in
:mod:`wfrun.api.contract.document`. The models only describe: handlers keep returning
``wire`` dicts, and the test suite validates every real response against the document.
"""

from __future__ import annotations

from fastapi import FastAPI

from wfrun.api.contract import document, pages
from wfrun.api.deps import API_PREFIX
from wfrun.config import Settings


def install(app: FastAPI, settings: Settings) -> None:
    """The completed OpenAPI document and the offline docs pages."""
    document.install(app, public_base_url=settings.public_base_url)
    pages.install(app, prefix=API_PREFIX, openapi_url=f"{API_PREFIX}/openapi.json")
