"""Node classes of the local engine and their ComfyUI ``/object_info`` description.

Class names, input names and order, defaults and limits are those of ComfyUI.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from wfrun.engines.local import operations as ops
from wfrun.engines.local.context import NodeContext, NodeResult

RunFunction = Callable[[NodeContext, Mapping[str, Any]], NodeResult]

UPSCALE_METHODS = ("nearest-exact", "bilinear", "area", "bicubic", "lanczos")
CROP_METHODS = ("disabled", "center")
_INT64_MAX = 9223372036854775807


@dataclass(frozen=True)
class InputSpec:
    """One required input of a node class.

    Attributes:
        name: Input name.
        type: ``INT``, ``FLOAT``, ``STRING``, ``BOOLEAN``, ``IMAGE``, ``*`` or ``COMBO``.
        options: ComfyUI's option dict (default, min, max, ...); None when ComfyUI
            lists no option dict for the input.
        choices: Allowed values of a COMBO input.
        file_input: The value names an input file resolved at run time (LoadImage)
            rather than one of ``choices``.
    """

    name: str
    type: str
    options: Mapping[str, Any] | None = None
    choices: tuple[str, ...] = ()
    file_input: bool = False

    def object_info(self, files: Sequence[str]) -> list[Any]:
        """Describes the input as ComfyUI's ``/object_info`` does.

        Args:
            files: File names to list for a file input.

        Returns:
            ``[type]``, ``[type, options]`` or ``[[choices...], options]``.
        """
        kind: Any = self.type
        if self.file_input:
            kind = list(files)
        elif self.type == "COMBO":
            kind = list(self.choices)
        return [kind] if self.options is None else [kind, dict(self.options)]


@dataclass(frozen=True)
class NodeSpec:
    """A node class the local engine can run.

    Attributes:
        class_type: ComfyUI class name.
        inputs: Required inputs in ComfyUI's order.
        outputs: Output types.
        output_node: Whether the class is an output node.
        run: The implementation.
        display_name: ComfyUI display name.
        category: ComfyUI menu category.
        python_module: Module ComfyUI defines the class in.
        output_names: Output names (default: the output types).
    """

    class_type: str
    inputs: tuple[InputSpec, ...]
    outputs: tuple[str, ...]
    output_node: bool
    run: RunFunction
    display_name: str = ""
    category: str = ""
    python_module: str = "nodes"
    output_names: tuple[str, ...] = ()

    def object_info(self, files: Sequence[str] = ()) -> dict[str, Any]:
        """Describes the class as ComfyUI's ``/object_info`` does.

        Args:
            files: File names to list for file inputs.

        Returns:
            The class entry.
        """
        return {
            "input": {"required": {inp.name: inp.object_info(files) for inp in self.inputs}},
            "input_order": {"required": [inp.name for inp in self.inputs]},
            "output": list(self.outputs),
            "output_is_list": [False] * len(self.outputs),
            "output_name": list(self.output_names or self.outputs),
            "name": self.class_type,
            "display_name": self.display_name or self.class_type,
            "description": "",
            "python_module": self.python_module,
            "category": self.category,
            "output_node": self.output_node,
        }


def _int(name: str, default: int, low: int, high: int) -> InputSpec:
    return InputSpec(name, "INT", {"default": default, "min": low, "max": high})


def _float(name: str, default: float, low: float, high: float) -> InputSpec:
    return InputSpec(name, "FLOAT", {"default": default, "min": low, "max": high})


def _combo(name: str, choices: tuple[str, ...]) -> InputSpec:
    return InputSpec(name, "COMBO", None, choices)


def _spec(
    class_type: str,
    inputs: tuple[InputSpec, ...],
    outputs: tuple[str, ...],
    run: RunFunction,
    display_name: str,
    category: str,
    module: str = "nodes",
) -> NodeSpec:
    return NodeSpec(
        class_type=class_type,
        inputs=inputs,
        outputs=outputs,
        output_node=not outputs,
        run=run,
        display_name=display_name,
        category=category,
        python_module=module,
    )


_IMAGE = InputSpec("image", "IMAGE")
_IMAGES = InputSpec("images", "IMAGE")
_SIZE = 16384
_PRIMITIVES = "comfy_extras.nodes_primitive"


def _image_nodes() -> Iterable[NodeSpec]:
    empty = (
        _int("width", 512, 1, _SIZE),
        _int("height", 512, 1, _SIZE),
        _int("batch_size", 1, 1, 4096),
        _int("color", 0, 0, 0xFFFFFF),
    )
    yield _spec("EmptyImage", empty, ("IMAGE",), ops.run_empty_image, "EmptyImage", "image")
    upload = InputSpec("image", "COMBO", {"image_upload": True}, file_input=True)
    yield _spec(
        "LoadImage", (upload,), ("IMAGE", "MASK"), ops.run_load_image, "Load Image", "image"
    )
    yield _spec("ImageInvert", (_IMAGE,), ("IMAGE",), ops.run_image_invert, "Invert Image", "image")
    prefix = InputSpec("filename_prefix", "STRING", {"default": "ComfyUI"})
    yield _spec("SaveImage", (_IMAGES, prefix), (), ops.run_save_image, "Save Image", "image")
    yield _spec("PreviewImage", (_IMAGES,), (), ops.run_preview_image, "Preview Image", "image")


def _transform_nodes() -> Iterable[NodeSpec]:
    method = _combo("upscale_method", UPSCALE_METHODS)
    scale = (
        _IMAGE,
        method,
        _int("width", 512, 0, _SIZE),
        _int("height", 512, 0, _SIZE),
        _combo("crop", CROP_METHODS),
    )
    upscaling = "image/upscaling"
    yield _spec("ImageScale", scale, ("IMAGE",), ops.run_image_scale, "Upscale Image", upscaling)
    scale_by = (_IMAGE, method, _float("scale_by", 1.0, 0.01, 8.0))
    yield _spec(
        "ImageScaleBy", scale_by, ("IMAGE",), ops.run_image_scale_by, "Upscale Image By", upscaling
    )
    blur = (_IMAGE, _int("blur_radius", 1, 1, 31), _float("sigma", 1.0, 0.1, 10.0))
    module = "comfy_extras.nodes_post_processing"
    category = "image/postprocessing"
    yield _spec("ImageBlur", blur, ("IMAGE",), ops.run_image_blur, "Image Blur", category, module)
    crop = (
        _IMAGE,
        _int("width", 512, 1, _SIZE),
        _int("height", 512, 1, _SIZE),
        _int("x", 0, 0, _SIZE),
        _int("y", 0, 0, _SIZE),
    )
    yield _spec("ImageCrop", crop, ("IMAGE",), ops.run_image_crop, "Image Crop", "image/transform")


def _primitive(class_type: str, display_name: str, value: InputSpec) -> NodeSpec:
    run = ops.run_primitive
    return _spec(
        class_type, (value,), (value.type,), run, display_name, "utils/primitive", _PRIMITIVES
    )


def _primitive_nodes() -> Iterable[NodeSpec]:
    bounds = {"min": -_INT64_MAX, "max": _INT64_MAX}
    single = InputSpec("value", "STRING", {"multiline": False})
    yield _primitive("PrimitiveString", "String", single)
    multi = InputSpec("value", "STRING", {"multiline": True})
    yield _primitive("PrimitiveStringMultiline", "String (Multiline)", multi)
    yield _primitive("PrimitiveInt", "Int", InputSpec("value", "INT", bounds))
    yield _primitive("PrimitiveFloat", "Float", InputSpec("value", "FLOAT", bounds))
    yield _primitive("PrimitiveBoolean", "Boolean", InputSpec("value", "BOOLEAN", {}))


def _utility_nodes() -> Iterable[NodeSpec]:
    concat = (
        InputSpec("string_a", "STRING", {"multiline": True}),
        InputSpec("string_b", "STRING", {"multiline": True}),
        InputSpec("delimiter", "STRING", {"default": ""}),
    )
    run_concat = ops.run_string_concatenate
    module = "comfy_extras.nodes_string"
    yield _spec(
        "StringConcatenate", concat, ("STRING",), run_concat, "Concatenate", "utils/string", module
    )
    source = (InputSpec("source", "*", {}),)
    module = "comfy_extras.nodes_preview_any"
    yield _spec("PreviewAny", source, (), ops.run_preview_any, "Preview Any", "utils", module)
    seconds = InputSpec(
        "seconds", "FLOAT", {"default": 2.0, "min": 0.0, "max": 9999.0, "step": 0.01}
    )
    sleep = (InputSpec("value", "*", {}), seconds)
    yield _spec("TestSleep", sleep, ("*",), ops.run_test_sleep, "Test Sleep", "_for_testing")


def _build_specs() -> Mapping[str, NodeSpec]:
    specs = [*_image_nodes(), *_transform_nodes(), *_primitive_nodes(), *_utility_nodes()]
    return MappingProxyType({spec.class_type: spec for spec in specs})


NODE_SPECS: Mapping[str, NodeSpec] = _build_specs()
"""Every node class the local engine runs, by class name (read-only)."""


def object_info(image_files: Sequence[str] = ()) -> dict[str, Any]:
    """ComfyUI's ``/object_info`` for the local engine's node classes.

    Args:
        image_files: Input file names LoadImage offers (listed sorted).

    Returns:
        ``{class_type: {"input": {"required": ...}, "output": [...], ...}}``.
    """
    files = sorted(image_files)
    return {name: spec.object_info(files) for name, spec in NODE_SPECS.items()}
