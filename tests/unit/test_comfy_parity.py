"""The built-in engine stores what real ComfyUI stores (values observed on ComfyUI 0.3.64, CPU,
commit a125cd84, through wfrun's ComfyUIEngine: EmptyImage(color) → ImageInvert → SaveImage and
a 256-level gradient through LoadImage → ImageInvert → SaveImage matched byte for byte)."""

from __future__ import annotations

import io
import threading

import pytest
from PIL import Image

from wfrun.engines.base import RunSpec
from wfrun.engines.local.engine import LocalEngine

OBSERVED = {  # EmptyImage color → pixel ComfyUI saved after ImageInvert
    0x123456: (237, 203, 169),
    0x414243: (189, 189, 187),
    0x808080: (126, 126, 126),
    0xFFFFFF: (0, 0, 0),
    0x010203: (254, 253, 252),
    0x7F8081: (127, 126, 125),
}


class _Sink:
    async def node_started(self, node_id: str, class_type: str, index: int, total: int) -> None:
        return None

    async def node_finished(self, node_id: str, class_type: str, index: int, total: int) -> None:
        return None


@pytest.mark.parametrize(("color", "saved"), OBSERVED.items(), ids=[hex(c) for c in OBSERVED])
async def test_invert_matches_comfyui_float32_rounding(color: int, saved: tuple[int, int, int]):
    graph = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 2, "height": 2, "batch_size": 1, "color": color},
        },
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "p"}},
    }
    results = await LocalEngine().execute(RunSpec("r", 1, graph), _Sink(), threading.Event())
    with Image.open(io.BytesIO(results["3"].files[0].data)) as image:
        assert image.convert("RGB").getpixel((1, 1)) == saved
