"""Values the local engine hands back for output nodes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OutputFile:
    """One file produced by an output node (for example a PNG from SaveImage)."""

    filename: str
    data: bytes
    mime_type: str = "image/png"


@dataclass(frozen=True)
class NodeOutput:
    """What one output node produced: image files and/or text."""

    images: tuple[OutputFile, ...] = ()
    text: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        """Tells whether the node produced nothing.

        Returns:
            True when there are neither images nor text.
        """
        return not self.images and not self.text
