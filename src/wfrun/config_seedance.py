"""Settings of the Seedance engine (Volcengine Ark video): credentials, tracking and prices.

A group of :class:`wfrun.config.Settings` (``seedance.*``, ``WFRUN_SEEDANCE__*``), kept in its
own module for size; import it from ``wfrun.config``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from wfrun.config_sources import SECRET


class SeedancePrice(BaseModel):
    """CNY per million output tokens (decimal strings), as Ark bills (seedance-ark.md §2)."""

    per_million: str = Field(description="Without a reference video.")
    per_million_with_video: str = Field(description="With a reference video.")


def _default_seedance_prices() -> dict[str, SeedancePrice]:
    # seedance-ark.md §2.2 list prices (online tier); check your console before selling.
    table = {
        "doubao-seedance-2-0-260128": ("46", "28"),
        "doubao-seedance-2-0-260128@1080p": ("51", "31"),
        "doubao-seedance-2-0-fast-260128": ("37", "22"),
        "doubao-seedance-2-0-mini-260615": ("23", "23"),
        "doubao-seedance-1-5-pro-251215": ("16", "16"),
    }
    return {
        k: SeedancePrice(per_million=a, per_million_with_video=b) for k, (a, b) in table.items()
    }


class SeedanceSettings(BaseModel):
    """Volcengine Ark (Seedance video): credentials, tracking and prices."""

    ark_base_url: str = Field(
        "https://ark.cn-beijing.volces.com/api/v3", description="Ark data-plane base URL."
    )
    ark_api_key: str | None = Field(
        None, description="Ark API key; unset = engine disabled.", json_schema_extra=SECRET
    )
    request_timeout_seconds: float = Field(30.0, gt=0, description="Per Ark call.")
    control_host: str = Field(
        "ark.cn-beijing.volcengineapi.com", description="Asset control-plane host (AK/SK)."
    )
    control_scheme: Literal["https", "http"] = Field("https", description="Control-plane scheme.")
    region: str = Field("cn-beijing", description="Volcengine region.")
    access_key_id: str | None = Field(
        None, description="AK for real-person registration.", json_schema_extra=SECRET
    )
    secret_access_key: str | None = Field(
        None, description="SK for real-person registration.", json_schema_extra=SECRET
    )
    project_name: str = Field("default", description="Ark project of the key and the assets.")
    real_person_group_id: str | None = Field(
        None,
        description=(
            "Default LivenessFace asset group (a verified, authorising person) for accounts "
            "that verified no person of their own (POST /real-person/verifications); unset = "
            "their real-person runs are refused at submit."
        ),
    )
    asset_ready_timeout_seconds: float = Field(
        600.0, gt=0, description="Longest wait for a registered asset to become Active."
    )
    poll_min_seconds: float = Field(2.0, gt=0, description="First status check of a task.")
    poll_max_seconds: float = Field(30.0, gt=0, description="Longest gap between checks.")
    tracker_batch: int = Field(
        200, ge=1, le=500, description="Tasks checked per Ark list call (≤ 500)."
    )
    execution_expires_after: int = Field(
        172_800, ge=7200, le=259_200, description="Ark task expiry (§1.3), seconds."
    )
    max_output_bytes: int = Field(1024**3, ge=1, description="Largest result video accepted.")
    media_url_ttl_seconds: int = Field(
        49 * 3600,
        ge=600,
        le=7 * 86400,
        description=(
            "Lifetime of signed media URLs handed to Ark: longer than a task may wait in Ark's "
            "queue (execution_expires_after, 48 h by default); S3 presigning allows 7 days."
        ),
    )
    callback_base_url: str | None = Field(
        None,
        description=(
            "Public origin of this wfrun that Ark can reach; when set, tasks carry a signed "
            "callback_url and Ark's status callbacks trigger an immediate check (polling stays "
            "the source of truth: callbacks are unsigned by Ark)."
        ),
    )
    model_run_fee: str = Field("0", description="Platform fee per model run (CNY).")
    cancel_wait_seconds: float = Field(
        10.0,
        ge=0,
        description="How long /model-runs/cancel waits for the upstream cancel to settle.",
    )
    prices: dict[str, SeedancePrice] = Field(
        default_factory=_default_seedance_prices,
        description="Per model id, or 'model@resolution' for a resolution-specific price.",
    )
