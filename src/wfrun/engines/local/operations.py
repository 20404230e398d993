"""Run functions of the local engine's node classes.

Each takes the run's ``NodeContext`` and the node's checked inputs by name and
returns a ``NodeResult``. They run in a worker thread.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from PIL import Image

from wfrun.engines.local import images
from wfrun.engines.local.context import NodeContext, NodeResult
from wfrun.engines.local.outputs import NodeOutput, OutputFile

Inputs = Mapping[str, Any]

DEFAULT_PREFIX = "ComfyUI"
PREVIEW_PREFIX = "ComfyUI_temp"
_UNSAFE_FILENAME_CHARS = re.compile(r'[\x00-\x1f<>:"|?*]')


def run_empty_image(ctx: NodeContext, args: Inputs) -> NodeResult:
    """EmptyImage: a batch of single-colour images."""
    batch = images.empty_image(args["width"], args["height"], args["batch_size"], args["color"])
    return NodeResult((batch,))


def run_load_image(ctx: NodeContext, args: Inputs) -> NodeResult:
    """LoadImage: decodes the named input file into images and masks."""
    name = args["image"]
    try:
        data = ctx.load_image(name)
    except (FileNotFoundError, KeyError) as exc:
        raise FileNotFoundError(f"Image file not found: {name!r}") from exc
    frames, masks = images.decode_image(data)
    return NodeResult((frames, masks))


def run_image_scale(ctx: NodeContext, args: Inputs) -> NodeResult:
    """ImageScale: resize to a width and height."""
    batch = images.scale(
        args["image"], args["upscale_method"], args["width"], args["height"], args["crop"]
    )
    return NodeResult((batch,))


def run_image_scale_by(ctx: NodeContext, args: Inputs) -> NodeResult:
    """ImageScaleBy: resize by a factor."""
    return NodeResult((images.scale_by(args["image"], args["upscale_method"], args["scale_by"]),))


def run_image_invert(ctx: NodeContext, args: Inputs) -> NodeResult:
    """ImageInvert: 255 - value on every channel."""
    return NodeResult((images.invert(args["image"]),))


def run_image_blur(ctx: NodeContext, args: Inputs) -> NodeResult:
    """ImageBlur: Gaussian blur."""
    return NodeResult((images.blur(args["image"], args["blur_radius"], args["sigma"]),))


def run_image_crop(ctx: NodeContext, args: Inputs) -> NodeResult:
    """ImageCrop: crop with the origin clamped inside the image."""
    batch = images.crop(args["image"], args["width"], args["height"], args["x"], args["y"])
    return NodeResult((batch,))


def run_save_image(ctx: NodeContext, args: Inputs) -> NodeResult:
    """SaveImage: encodes the batch as PNG files named after the prefix."""
    return _save(ctx, args["images"], safe_prefix(args["filename_prefix"]), compress_level=4)


def run_preview_image(ctx: NodeContext, args: Inputs) -> NodeResult:
    """PreviewImage: like SaveImage with the fixed prefix ``ComfyUI_temp``."""
    return _save(ctx, args["images"], PREVIEW_PREFIX, compress_level=1)


def _save(ctx: NodeContext, batch: images.Batch, prefix: str, *, compress_level: int) -> NodeResult:
    files = []
    for image in batch:
        ctx.raise_if_interrupted()
        name = f"{prefix}_{ctx.next_counter(prefix):05}_.png"
        data = images.encode_png(image, {"prompt": ctx.prompt_json}, compress_level)
        files.append(OutputFile(filename=name, data=data))
    return NodeResult(ui=NodeOutput(images=tuple(files)))


def safe_prefix(prefix: str) -> str:
    """Reduces a filename prefix to a safe file name.

    ComfyUI treats directories in the prefix as sub-folders; here only the last
    path component is kept, and characters unsafe in file names become ``_``.

    Args:
        prefix: The requested prefix.

    Returns:
        A non-empty prefix without path separators.
    """
    name = re.split(r"[/\\]", prefix)[-1].strip()
    name = _UNSAFE_FILENAME_CHARS.sub("_", name)
    return DEFAULT_PREFIX if name in ("", ".", "..") else name


def run_primitive(ctx: NodeContext, args: Inputs) -> NodeResult:
    """PrimitiveString/Int/Float/Boolean: passes its value through."""
    return NodeResult((args["value"],))


def run_string_concatenate(ctx: NodeContext, args: Inputs) -> NodeResult:
    """StringConcatenate: ``string_a + delimiter + string_b``."""
    return NodeResult((args["delimiter"].join([args["string_a"], args["string_b"]]),))


def run_preview_any(ctx: NodeContext, args: Inputs) -> NodeResult:
    """PreviewAny: shows its input as text."""
    return NodeResult(ui=NodeOutput(text=(preview_text(args["source"]),)))


def preview_text(source: Any) -> str:
    """Turns any value into PreviewAny's text, like ComfyUI.

    Strings are shown as they are, numbers and booleans with ``str``, other values
    as JSON when possible. Image batches (tensors in ComfyUI) are described by
    count, size and mode instead.

    Args:
        source: The value.

    Returns:
        The text.
    """
    if source is None:
        return "None"
    if isinstance(source, str):
        return source
    if isinstance(source, int | float | bool):
        return str(source)
    if _is_image_batch(source):
        first = source[0]
        return f"<{len(source)} x {first.width}x{first.height} {first.mode} image batch>"
    try:
        return json.dumps(source)
    except (TypeError, ValueError):
        return str(source)


def _is_image_batch(value: Any) -> bool:
    return (
        isinstance(value, tuple)
        and bool(value)
        and all(isinstance(item, Image.Image) for item in value)
    )


def run_test_sleep(ctx: NodeContext, args: Inputs) -> NodeResult:
    """TestSleep: sleeps, checking the interrupt flag, then returns its value."""
    ctx.sleep(args["seconds"])
    return NodeResult((args["value"],))
