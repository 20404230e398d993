"""Streaming multipart uploads: the file part goes straight to a temporary file on disk while
it is counted, hashed and its first bytes kept for sniffing. Memory stays flat whatever the
size; an upload over the limit is refused as soon as the limit is crossed and nothing of it is
kept. (A ``Content-Length`` over the limit plus :data:`MULTIPART_OVERHEAD` is refused before the
request gets here, by :class:`wfrun.api.guards.BodyLimit`.)
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from wfrun.api.text import check_text
from wfrun.errors import AssetTooLarge, InvalidParameter

HEAD_BYTES = 512
MAX_FIELD_BYTES = 1024
MAX_FIELDS = 16
MULTIPART_OVERHEAD = 64 * 1024
"""What an upload's body may hold beyond its file: boundaries, part headers, form fields."""


@dataclass
class ReceivedUpload:
    path: Path
    size: int
    sha256: str
    head: bytes
    filename: str
    fields: dict[str, str]


@dataclass
class _Part:
    name: str = ""
    filename: str | None = None
    data: bytearray = field(default_factory=bytearray)


class _Receiver:
    """python-multipart callbacks; file bytes are queued here and written off the loop."""

    def __init__(self, handle: IO[bytes], max_bytes: int) -> None:
        self.handle, self.max_bytes = handle, max_bytes
        self.part = _Part()
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self.pending: list[bytes] = []
        self.size = 0
        self.digest = hashlib.sha256()
        self.head = b""
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self._part_begin,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value_cb,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
        }

    def _part_begin(self) -> None:
        self.part = _Part()
        self._disposition = b""

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_cb(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = self._header_value = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if b"name" not in options:
            raise InvalidParameter("every multipart part needs a Content-Disposition name")
        self.part.name = options[b"name"].decode("utf-8", "replace")
        check_text("a form field name", self.part.name)
        if b"filename" in options:
            if self.part.name != "file" or self.filename is not None:
                raise InvalidParameter("send exactly one file, in the field named 'file'")
            self.part.filename = options[b"filename"].decode("utf-8", "replace")[:255]
            check_text("filename", self.part.filename)
            self.filename = self.part.filename

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self.part.filename is None:
            if len(self.part.data) + len(chunk) > MAX_FIELD_BYTES:
                raise InvalidParameter(f"form field {self.part.name!r} is too long")
            self.part.data.extend(chunk)
            return
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise AssetTooLarge(f"the file is larger than the {self.max_bytes}-byte limit")
        if len(self.head) < HEAD_BYTES:
            self.head += chunk[: HEAD_BYTES - len(self.head)]
        self.digest.update(chunk)
        self.pending.append(chunk)

    def _part_end(self) -> None:
        if self.part.filename is None:
            if len(self.fields) >= MAX_FIELDS:
                raise InvalidParameter("too many form fields")
            value = self.part.data.decode("utf-8", "replace")
            check_text(self.part.name, value)
            self.fields[self.part.name] = value

    def flush(self) -> None:
        for chunk in self.pending:
            self.handle.write(chunk)
        self.pending.clear()


def _boundary(request: Request) -> bytes:
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise InvalidParameter("the body must be multipart/form-data with a 'file' part")
    return params[b"boundary"]


async def receive_upload(request: Request, *, tmp_dir: Path, max_bytes: int) -> ReceivedUpload:
    """Stream the request's multipart body; the file lands in a temp file under ``tmp_dir``.

    Raises:
        InvalidParameter: not multipart, malformed, or without exactly one ``file`` part.
        AssetTooLarge: more than ``max_bytes`` of file data (nothing is kept).
    """
    boundary = _boundary(request)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="upload-")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            receiver = _Receiver(handle, max_bytes)
            await _parse(request, boundary, receiver)
    except BaseException:
        with contextlib.suppress(OSError):
            path.unlink()
        raise
    if receiver.filename is None:
        path.unlink()
        raise InvalidParameter("the form has no 'file' part")
    return ReceivedUpload(
        path,
        receiver.size,
        receiver.digest.hexdigest(),
        receiver.head,
        receiver.filename,
        receiver.fields,
    )


async def _parse(request: Request, boundary: bytes, receiver: _Receiver) -> None:
    parser = MultipartParser(boundary, receiver.callbacks())  # type: ignore[arg-type]
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            if receiver.pending:
                await asyncio.to_thread(receiver.flush)
        parser.finalize()
    except FormParserError as exc:
        raise InvalidParameter(f"malformed multipart body: {exc}") from None
