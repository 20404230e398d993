"""Webhook tests: receivers on loopback are allow-listed, retries are a few milliseconds."""

from __future__ import annotations

import pytest

from wfrun.config import Settings, WebhookSettings

FAST = WebhookSettings(
    allow_networks=["127.0.0.0/8"],
    poll_interval=0.02,
    retry_schedule_seconds=[0.02, 0.02, 0.02, 0.02],
    retry_jitter=0.0,
    timeout_seconds=5.0,
)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhooks": FAST})
