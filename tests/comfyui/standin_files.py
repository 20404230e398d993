"""The stand-in's input/output/temp directories, with ComfyUI's naming rules.

Reproduced (ComfyUI 0.3.64, reference §4.7, §4.8, §9):

- ``/upload/image``: ``overwrite`` ``"true"``/``"1"`` replaces in place; otherwise same name
  and same bytes reuses the name, different bytes gets ``"name (1).png"``, ``"name (2).png"``.
  ``subfolder`` is created; a path escaping the directory is refused (400).
- ``/view``: a filename starting with ``/`` or containing ``..`` → 400; a subfolder escaping
  the directory → 403; a missing file → 404. ``name.png [output]`` annotations are honoured.
- Saved files are ``<prefix>_<5-digit counter>_.png``, the counter continuing from the
  files already in the directory; ``filename_prefix`` ``"dir/name"`` saves into sub-folder
  ``dir``. PreviewImage writes ``ComfyUI_temp_<5 random letters>_<counter>_.png`` to temp.
"""

from __future__ import annotations

import os
import random
import re
import string
from dataclasses import dataclass
from pathlib import Path

KINDS = ("input", "output", "temp")
_ANNOTATION = re.compile(r"^(.*) \[(input|output|temp)\]$")


@dataclass(frozen=True)
class Saved:
    """A file an output node wrote: ``{"filename", "subfolder", "type"}`` on the wire."""

    filename: str
    subfolder: str
    type: str

    def wire(self) -> dict[str, str]:
        return {"filename": self.filename, "subfolder": self.subfolder, "type": self.type}


class FileStore:
    """Directories that survive a stand-in "process restart" (they are on disk)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for kind in KINDS:
            (root / kind).mkdir(parents=True, exist_ok=True)

    def directory(self, kind: str) -> Path | None:
        return self.root / kind if kind in KINDS else None

    def upload(
        self, filename: str, data: bytes, *, subfolder: str, kind: str, overwrite: bool
    ) -> dict[str, str] | None:
        """Stores an upload; None means 400 (bad type or a path escaping the directory)."""
        base = self.directory(kind)
        if base is None or not filename:
            return None
        folder = Path(os.path.abspath(base / os.path.normpath(subfolder or ".")))
        path = Path(os.path.abspath(folder / filename))
        if os.path.commonpath((str(base.resolve()), str(path))) != str(base.resolve()):
            return None
        folder.mkdir(parents=True, exist_ok=True)
        name, duplicate = self._free_name(folder, filename, data, overwrite)
        if not duplicate:
            (folder / name).write_bytes(data)
        return {"name": name, "subfolder": subfolder, "type": kind}

    @staticmethod
    def _free_name(folder: Path, filename: str, data: bytes, overwrite: bool) -> tuple[str, bool]:
        if overwrite:
            return filename, False
        stem, ext = os.path.splitext(filename)
        name, counter = filename, 1
        while (folder / name).exists():
            if (folder / name).read_bytes() == data:
                return name, True
            name = f"{stem} ({counter}){ext}"
            counter += 1
        return name, False

    def view(self, filename: str, subfolder: str | None, kind: str) -> tuple[int, Path | None]:
        """Resolves a ``/view`` query to ``(status, path)``."""
        annotated = _ANNOTATION.match(filename)
        if annotated:
            filename, kind = annotated.group(1), annotated.group(2)
        if not filename or filename.startswith("/") or ".." in filename:
            return 400, None
        base = self.directory(kind)
        if base is None:
            return 400, None
        folder = base
        if subfolder is not None:
            folder = Path(os.path.abspath(base / subfolder))
            if os.path.commonpath((str(folder), str(base.resolve()))) != str(base.resolve()):
                return 403, None
        path = folder / os.path.basename(filename)
        return (200, path) if path.is_file() else (404, None)

    def input_path(self, name: str) -> Path | None:
        """LoadImage's ``image`` value (``name`` or ``subfolder/name``) → file, if it exists."""
        folder, _, base = name.replace("\\", "/").rpartition("/")
        status, path = self.view(base, folder or None, "input")
        return path if status == 200 else None

    def read_input(self, name: str) -> bytes:
        """LoadImage's file loader (raises ``FileNotFoundError``)."""
        path = self.input_path(name)
        if path is None:
            raise FileNotFoundError(name)
        return path.read_bytes()

    def save(self, data: bytes, prefix: str, subfolder: str, kind: str) -> Saved:
        """Writes one output under the next free counter of ``prefix``."""
        base = self.directory(kind)
        assert base is not None
        folder = base / subfolder if subfolder else base
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{prefix}_{self._next_counter(folder, prefix):05}_.png"
        (folder / name).write_bytes(data)
        return Saved(name, subfolder, kind)

    @staticmethod
    def _next_counter(folder: Path, prefix: str) -> int:
        pattern = re.compile(re.escape(prefix) + r"_(\d{5})_")
        counters = [
            int(found.group(1))
            for entry in folder.iterdir()
            if (found := pattern.match(entry.name)) is not None
        ]
        return max(counters, default=0) + 1


def temp_prefix() -> str:
    """PreviewImage's prefix: ``ComfyUI_temp_`` plus 5 random lowercase letters."""
    return "ComfyUI_temp_" + "".join(random.choices(string.ascii_lowercase, k=5))
