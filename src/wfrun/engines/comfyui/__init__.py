"""The ComfyUI engine: runs wfrun graphs on remote ComfyUI servers over HTTP + WebSocket."""

from wfrun.engines.comfyui.client import (
    ComfyClient,
    ComfyProtocolError,
    ComfyRequestError,
    ComfyServerError,
    ComfyUnavailable,
    PromptRejected,
    QueueState,
)
from wfrun.engines.comfyui.engine import ComfyUIEngine
from wfrun.engines.comfyui.session import ComfyUISettings

__all__ = [
    "ComfyClient",
    "ComfyProtocolError",
    "ComfyRequestError",
    "ComfyServerError",
    "ComfyUIEngine",
    "ComfyUISettings",
    "ComfyUnavailable",
    "PromptRejected",
    "QueueState",
]
