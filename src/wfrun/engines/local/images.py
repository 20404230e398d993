"""Pillow implementations of the image operations behind the local engine's nodes.

An IMAGE is a non-empty tuple of equally sized RGB images and a MASK a tuple of
"L" images (255 = fully masked), mirroring ComfyUI's batched tensors. Images are
never modified in place, so a batch may hold the same object several times.
"""

from __future__ import annotations

import io
import math
from array import array
from collections.abc import Callable, Mapping

from PIL import Image, ImageMath, ImageOps, ImageSequence
from PIL.PngImagePlugin import PngInfo

Batch = tuple[Image.Image, ...]

MAX_BATCH_PIXELS = 1 << 27
"""Largest number of pixels (width x height x batch) one operation may produce."""

RESAMPLING: Mapping[str, Image.Resampling] = {
    "nearest-exact": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "area": Image.Resampling.BOX,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}
"""ComfyUI upscale method names mapped to Pillow resampling filters."""

_EMPTY_MASK_SIZE = (64, 64)


def map_batch(func: Callable[[Image.Image], Image.Image], batch: Batch) -> Batch:
    """Applies ``func`` to every image, once per distinct image object.

    Args:
        func: Per-image operation.
        batch: Source images (the same object may appear several times).

    Returns:
        The results, sharing objects where the sources did.
    """
    done: dict[int, Image.Image] = {}
    for image in batch:
        if id(image) not in done:
            done[id(image)] = func(image)
    return tuple(done[id(image)] for image in batch)


def check_budget(width: int, height: int, count: int) -> None:
    """Refuses to produce an image batch larger than ``MAX_BATCH_PIXELS``.

    Args:
        width: Width of each image.
        height: Height of each image.
        count: Number of images in the batch.

    Raises:
        ValueError: When the batch would be empty-sized or too large.
    """
    if width < 1 or height < 1:
        raise ValueError(f"image size must be at least 1x1, got {width}x{height}")
    if width * height * count > MAX_BATCH_PIXELS:
        raise ValueError(
            f"batch of {count} {width}x{height} images exceeds the limit of "
            f"{MAX_BATCH_PIXELS} pixels"
        )


def empty_image(width: int, height: int, batch_size: int, color: int) -> Batch:
    """Creates a batch of single-colour images.

    Args:
        width: Image width.
        height: Image height.
        batch_size: Number of images.
        color: Colour as 0xRRGGBB.

    Returns:
        The batch.
    """
    check_budget(width, height, batch_size)
    rgb = ((color >> 16) & 0xFF, (color >> 8) & 0xFF, color & 0xFF)
    return (Image.new("RGB", (width, height), rgb),) * batch_size


def decode_image(data: bytes) -> tuple[Batch, Batch]:
    """Decodes an image file the way ComfyUI's LoadImage does.

    Every frame is EXIF-transposed and converted to RGB; frames whose size differs
    from the first are skipped; MPO files only give their first frame. The mask of
    a frame is its inverted alpha channel, or a 64x64 zero mask without alpha.

    Args:
        data: The encoded file.

    Returns:
        ``(images, masks)``, one entry per kept frame.

    Raises:
        ValueError: When the file has no frames or is too large.
    """
    frames: list[Image.Image] = []
    masks: list[Image.Image] = []
    with Image.open(io.BytesIO(data)) as container:
        for raw in ImageSequence.Iterator(container):
            frame = _prepare_frame(raw)
            if frames and frame.size != frames[0].size:
                continue
            check_budget(frame.width, frame.height, len(frames) + 1)
            frames.append(frame.convert("RGB"))
            masks.append(_frame_mask(frame))
            if container.format == "MPO":
                break
    if not frames:
        raise ValueError("image file contains no frames")
    return tuple(frames), tuple(masks)


def _prepare_frame(frame: Image.Image) -> Image.Image:
    transposed = ImageOps.exif_transpose(frame) or frame
    if transposed.mode.startswith("I;16"):
        transposed = transposed.convert("I")
    if transposed.mode == "I":
        transposed = transposed.point(_affine(1 / 255, 0.0))
    return transposed


def _frame_mask(frame: Image.Image) -> Image.Image:
    if "A" in frame.getbands():
        return ImageOps.invert(frame.getchannel("A"))
    if frame.mode == "P" and "transparency" in frame.info:
        return ImageOps.invert(frame.convert("RGBA").getchannel("A"))
    return Image.new("L", _EMPTY_MASK_SIZE, 0)


def scale(batch: Batch, method: str, width: int, height: int, crop: str) -> Batch:
    """Resizes a batch like ComfyUI's ImageScale.

    A zero width or height is derived from the other to keep the aspect ratio;
    both zero leaves the batch unchanged. ``crop="center"`` first crops the
    source to the target aspect ratio.

    Args:
        batch: Source images.
        method: One of ``RESAMPLING``'s keys.
        width: Target width or 0.
        height: Target height or 0.
        crop: ``"disabled"`` or ``"center"``.

    Returns:
        The resized batch.
    """
    if width == 0 and height == 0:
        return batch
    old_width, old_height = batch[0].size
    if width == 0:
        width = max(1, round(old_width * height / old_height))
    elif height == 0:
        height = max(1, round(old_height * width / old_width))
    return _resize(batch, method, width, height, center_crop=crop == "center")


def scale_by(batch: Batch, method: str, factor: float) -> Batch:
    """Resizes a batch by a factor like ComfyUI's ImageScaleBy.

    Args:
        batch: Source images.
        method: One of ``RESAMPLING``'s keys.
        factor: Scale factor; the new size is ``round(size * factor)``.

    Returns:
        The resized batch.
    """
    old_width, old_height = batch[0].size
    width, height = round(old_width * factor), round(old_height * factor)
    return _resize(batch, method, width, height, center_crop=False)


def _resize(batch: Batch, method: str, width: int, height: int, *, center_crop: bool) -> Batch:
    check_budget(width, height, len(batch))
    old_width, old_height = batch[0].size
    box = _center_box(old_width, old_height, width, height) if center_crop else None
    resample = RESAMPLING[method]

    def resize(image: Image.Image) -> Image.Image:
        source = image if box is None else image.crop(box)  # hard crop, no bleeding
        return source.resize((width, height), resample)

    return map_batch(resize, batch)


def _center_box(
    old_width: int, old_height: int, width: int, height: int
) -> tuple[int, int, int, int]:
    """Same arithmetic as ComfyUI's ``common_upscale`` centre crop."""
    old_aspect = old_width / old_height
    new_aspect = width / height
    x = y = 0
    if old_aspect > new_aspect:
        x = round((old_width - old_width * (new_aspect / old_aspect)) / 2)
    elif old_aspect < new_aspect:
        y = round((old_height - old_height * (old_aspect / new_aspect)) / 2)
    return (x, y, old_width - x, old_height - y)


def _f32(value: float) -> float:
    """``value`` rounded to float32, as torch holds it."""
    return array("f", [value])[0]


def _comfy_invert_level(level: int) -> int:
    """What ComfyUI saves for an 8-bit ``level`` after ImageInvert: it loads ``level / 255``
    as float32, computes ``1.0 - x`` in float32, and SaveImage truncates ``255 * x`` to uint8,
    so 159 of the 256 levels come out as ``254 - level``, not ``255 - level`` (checked against
    a real ComfyUI 0.3.64 server)."""
    return int(_f32(255.0 * _f32(1.0 - _f32(level / 255.0))))


_INVERT_TABLE = [_comfy_invert_level(level) for level in range(256)]


def invert(batch: Batch) -> Batch:
    """Inverts every channel exactly as ComfyUI's ImageInvert → SaveImage would store it.

    Args:
        batch: Source images.

    Returns:
        The inverted batch.
    """
    return map_batch(lambda image: image.point(_INVERT_TABLE * len(image.getbands())), batch)


def crop(batch: Batch, width: int, height: int, x: int, y: int) -> Batch:
    """Crops like ComfyUI's ImageCrop: the origin is clamped inside the image.

    Args:
        batch: Source images.
        width: Crop width.
        height: Crop height.
        x: Left edge, clamped to ``image width - 1``.
        y: Top edge, clamped to ``image height - 1``.

    Returns:
        The cropped batch (smaller than requested where the box leaves the image).
    """
    old_width, old_height = batch[0].size
    x, y = min(x, old_width - 1), min(y, old_height - 1)
    box = (x, y, min(x + width, old_width), min(y + height, old_height))
    return map_batch(lambda image: image.crop(box), batch)


def gaussian_weights(radius: int, sigma: float) -> list[float]:
    """One-dimensional weights of ComfyUI's ImageBlur kernel.

    ComfyUI samples ``exp(-d^2 / (2 sigma^2))`` on ``linspace(-1, 1, 2r+1)``, so
    ``sigma`` is relative to the radius, and normalises the 2-D kernel. That
    kernel is the outer product of these normalised 1-D weights.

    Args:
        radius: Blur radius (kernel size ``2 * radius + 1``).
        sigma: Standard deviation relative to the radius.

    Returns:
        ``2 * radius + 1`` weights summing to 1.
    """
    raw = [
        math.exp(-(((i - radius) / radius) ** 2) / (2 * sigma * sigma))
        for i in range(2 * radius + 1)
    ]
    total = sum(raw)
    return [weight / total for weight in raw]


def blur(batch: Batch, radius: int, sigma: float) -> Batch:
    """Gaussian blur with ComfyUI's ImageBlur kernel and reflected borders.

    Args:
        batch: Source images.
        radius: Blur radius, at least 1.
        sigma: Standard deviation relative to the radius.

    Returns:
        The blurred batch.
    """
    weights = gaussian_weights(radius, sigma)
    return map_batch(lambda image: _blur_image(image, weights), batch)


def _blur_image(image: Image.Image, weights: list[float]) -> Image.Image:
    bands = [_blur_band(band.convert("F"), weights) for band in image.split()]
    return Image.merge("RGB", bands)


def _blur_band(band: Image.Image, weights: list[float]) -> Image.Image:
    rows = _convolve_rows(band, weights).transpose(Image.Transpose.TRANSPOSE)
    both = _convolve_rows(rows, weights).transpose(Image.Transpose.TRANSPOSE)
    return both.point(_affine(1.0, 0.5)).convert("L")


def _convolve_rows(band: Image.Image, weights: list[float]) -> Image.Image:
    radius = len(weights) // 2
    padded = _reflect_pad(band, radius)
    width, height = band.size
    total = padded.crop((0, 0, width, height)).point(_affine(weights[0], 0.0))
    for offset, weight in enumerate(weights[1:], start=1):
        term = padded.crop((offset, 0, offset + width, height)).point(_affine(weight, 0.0))
        total = _add(total, term)
    return total


def _add(left: Image.Image, right: Image.Image) -> Image.Image:
    result = ImageMath.lambda_eval(lambda args: args["a"] + args["b"], a=left, b=right)
    if not isinstance(result, Image.Image):
        raise TypeError("ImageMath did not return an image")
    return result


def _reflect_pad(band: Image.Image, radius: int) -> Image.Image:
    """Pads left and right by ``radius`` columns, mirroring without the edge."""
    width, height = band.size
    padded = Image.new(band.mode, (width + 2 * radius, height))
    padded.paste(band, (radius, 0))
    for column in (*range(-radius, 0), *range(width, width + radius)):
        source = _reflect_index(column, width)
        padded.paste(band.crop((source, 0, source + 1, height)), (column + radius, 0))
    return padded


def _reflect_index(index: int, size: int) -> int:
    if size == 1:
        return 0
    period = 2 * (size - 1)
    index %= period
    return period - index if index >= size else index


def _affine(
    factor: float, offset: float
) -> Callable[[Image.ImagePointTransform], Image.ImagePointTransform]:
    def transform(value: Image.ImagePointTransform) -> Image.ImagePointTransform:
        return value * factor + offset

    return transform


def encode_png(image: Image.Image, text: Mapping[str, str], compress_level: int) -> bytes:
    """Encodes an image as a deterministic PNG (no timestamps).

    Args:
        image: The image.
        text: tEXt chunks to add, such as ``{"prompt": json}``.
        compress_level: zlib level 0-9.

    Returns:
        The PNG file.
    """
    info = PngInfo()
    for key, value in text.items():
        info.add_text(key, value)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info, compress_level=compress_level)
    return buffer.getvalue()
