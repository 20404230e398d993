"""Shorthands shared by the response models: one described, exemplified field per line."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

CLOSED = ConfigDict(extra="forbid")
"""Response models list every field: a new wire field must be documented (the suite's
response check fails otherwise)."""

RUN_ID = "wfrun_6090b0d0a52badaa026b"
WORKFLOW_ID = "wf_82b280f4e07d77959f1e"
REVISION_ID = "wfr_636b7709c0de47f442a3"
TASK_ID = "task_1795996968600109876_aeaafae27dce7b8c"
PROMPT_ID = "prompt_1795996968600122257_90851a2408a06a73"
BILLING_ID = "wfbill_1795996968600131522"
MODEL_RUN_ID = "modelrun_1795996968600138311_24314317"
ASSET_ID = "asset_5f0c2b9d1e7a4c3b8a6d9e0f1a2b3c4d"
AT = "2026-11-29T08:15:30Z"
AMOUNT = "1.20000000"
SIGNED_URL = (
    "https://wfrun.example.com/files/outputs/wfrun_6090b0d0a52badaa026b/out_00001.png"
    "?expires=1795999999&signature=9f2c…"
)


def f(description: str, example: Any, **kwargs: Any) -> Any:
    """A field with its description and one realistic example."""
    return Field(description=description, examples=[example], **kwargs)


def money(description: str, example: str | None = AMOUNT) -> Any:
    """An exact amount: a decimal string with 8 places, in CNY."""
    return f(f"{description} (CNY, decimal string with 8 places).", example)


def example_of(model: type[BaseModel]) -> dict[str, Any]:
    """An example of a whole nested model, from its fields' own examples."""
    return {name: info.examples[0] for name, info in model.model_fields.items() if info.examples}
