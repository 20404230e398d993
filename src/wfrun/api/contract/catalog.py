"""Response models of the market, the account and the assets (open-api-v2.md §2, §4, §6)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from wfrun.api.contract.fields import (
    ASSET_ID,
    AT,
    BILLING_ID,
    CLOSED,
    REVISION_ID,
    RUN_ID,
    SIGNED_URL,
    WORKFLOW_ID,
    f,
    money,
)


class Owner(BaseModel):
    model_config = CLOSED
    user_id: str = f("The publisher's account.", "user_a4083c378fba68c89def")
    display_name: str | None = f("The publisher's name.", "Studio Lin")


class MarketItem(BaseModel):
    model_config = CLOSED
    workflow_id: str = f("The workflow.", WORKFLOW_ID)
    revision_id: str = f("Its published revision.", REVISION_ID)
    title: str = f("Title.", "Portrait retouch")
    description: str | None = f("Description.", "Cleans skin, keeps texture.")
    cover_url: str | None = f("Cover image.", None)
    tags: list[str] = f("Tags.", ["image"])
    owner: Owner
    quote_currency: Literal["CNY"] = f("Always CNY.", "CNY")
    quote_amount: str = money("What a run with defaults is quoted")
    may_incur_external_model_cost: bool = f("External model costs may apply.", False)
    updated_at: str = f("Last published.", AT)


class MarketPage(BaseModel):
    """One page of published workflows."""

    model_config = CLOSED
    items: list[MarketItem] = f("Workflows on this page.", [])
    total: int = f("Workflows matching, all pages.", 1)
    page: int = f("This page.", 1)
    page_size: int = f("Items per page.", 20)


class InputEntry(BaseModel):
    """One editable input (the binding to the graph stays internal)."""

    model_config = CLOSED
    key: str = f("Name to use in `inputs`.", "prompt")
    display_name: str = f("Label.", "Prompt")
    description: str | None = f("Help text.", None)
    type: str = f(
        "string, text, integer, number, boolean, enum, image, video, audio, file…", "text"
    )
    required: bool = f("Must be given.", True)
    default_value: Any = f("Default.", None)
    options: list[Any] | None = f("Choices of an enum.", None)
    min: float | None = f("Minimum of a number.", None)
    max: float | None = f("Maximum of a number.", None)
    step: float | None = f("Step of a number.", None)
    max_length: int | None = f("Longest text.", 2000)
    multiple: bool = f("Takes a list.", False)
    max_items: int | None = f("Longest list.", None)
    accept: list[str] | None = f("Accepted media types.", None)
    max_size_bytes: int | None = f("Largest file.", None)


class OutputEntry(BaseModel):
    model_config = CLOSED
    key: str = f("Key in `outputs`.", "image")
    display_name: str = f("Label.", "Image")
    type: str = f("image, video, audio, file or text.", "image")
    multiple: bool = f("A list of values.", False)


class PriceTableData(BaseModel):
    model_config = CLOSED
    fixed_fee: str = money("Fixed fee per run", "0.20000000")
    price_per_second: str = money("Price per second", "0.01000000")
    estimated_seconds: int = f("Estimated seconds.", 100)


class MarketInfoData(MarketItem):
    """The published revision of one workflow."""

    covers: list[str] = f("Cover images.", [])
    external_cost_notice: str | None = f("Notice about external costs.", None)
    editable_parameter_manifest: list[InputEntry] = f("Inputs you may set.", [])
    candidate_output_manifest: list[OutputEntry] = f("Outputs a run produces.", [])
    price_table: PriceTableData


class BalanceData(BaseModel):
    """The caller's balance."""

    model_config = CLOSED
    balance: float = f("Available, in yuan (chenyu's number).", 98.8)
    card_balance: float = f("Compute cards (wfrun has none: 0).", 0)
    available_amount: str = money("Available", "98.80000000")
    frozen_amount: str = money("Frozen by running runs", "1.20000000")
    currency: Literal["CNY"] = f("Always CNY.", "CNY")


class Bill(BaseModel):
    model_config = CLOSED
    amount: float = f("Charged, in yuan (number).", 0.84)
    amount_exact: str = money("Charged, exact", "0.84000000")
    charge_channel: int = f("1 balance.", 1)
    order_number: str = f("Bill number.", BILLING_ID)
    order_time: int | None = f("Submit time (Unix seconds).", 1795996968)
    settle_start_time: int | None = f("Start (Unix seconds).", 1795996970)
    settle_end_time: int | None = f("End (Unix seconds).", 1795997054)
    remark: str = f("Title and run.", f"Portrait retouch ({RUN_ID})")
    run_order_id: str = f("The run.", RUN_ID)


class BillPage(BaseModel):
    """Charges, one bill per settled run."""

    model_config = CLOSED
    order_list: list[Bill] = f("Bills on this page.", [])
    total: int = f("Bills matching, all pages.", 1)


class Recharge(BaseModel):
    model_config = CLOSED
    order_number: str = f("Top-up id.", "led_0a1b2c3d4e5f60718293")
    amount: float = f("Amount, in yuan (number).", 100)
    amount_exact: str = money("Amount, exact", "100.00000000")
    recharge_time: int | None = f("When (Unix seconds).", 1795996968)
    channel: str = f("Who credited it.", "operator")
    remark: str | None = f("Operator's memo.", "welcome credit")


class RechargePage(BaseModel):
    """Top-ups of the caller's balance."""

    model_config = CLOSED
    order_list: list[Recharge] = f("Top-ups on this page.", [])
    total: int = f("Top-ups, all pages.", 1)


class AssetData(BaseModel):
    """A stored file; pass its `asset_uri` as an input."""

    model_config = CLOSED
    asset_id: str = f("The asset.", ASSET_ID)
    asset_uri: str = f("Use this in `inputs`.", f"asset://{ASSET_ID}")
    url: str = f("Signed, expiring download link.", SIGNED_URL)
    content_url: str = f(
        "Stable URL (with the API key) redirecting to a fresh link.",
        f"https://wfrun.example.com/api/open/v2/assets/{ASSET_ID}/content",
    )
    signed_url: str = f("Same as url.", SIGNED_URL)
    signed_url_expires_at: int = f("When the signed link expires (Unix seconds).", 1795999999)
    media_type: str = f("image, video, audio or file.", "image")
    mime_type: str = f("Detected MIME type.", "image/png")
    size_bytes: int = f("Size.", 48213)
    sha256: str = f(
        "Content hash (hex).", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    )
    filename: str | None = f("Uploaded name.", "in.png")
    purpose: str = f("temp_input.", "temp_input")
    persistent: bool = f("Always false: assets expire.", False)
    created_at: str = f("Upload time.", AT)
    expires_at: str = f("Deletion time.", AT)
    status: Literal["ready"] = f("Always ready.", "ready")
