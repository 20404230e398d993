"""A thin async HTTP client for ONE ComfyUI server.

Protocol facts relied on (ComfyUI 0.3.64):

- Every route also lives under ``/api``; the bare routes are used here.
- No authentication, but a loopback server answers 403 to an ``Origin`` header whose host
  differs from ``Host``: no ``Origin`` header is ever sent.
- The event loop stalls 0.25–0.42 s after prompts (``gc.collect``), and far longer while a
  heavy node holds the GIL, so timeouts are generous (30 s reads, 10 s connects).
- ``POST /prompt`` answers ``200 {"prompt_id", "number", "node_errors"}``,
  ``400 {"error", "node_errors"}`` when invalid, and a text/plain 500 on a malformed body.
  A 200 may still carry ``node_errors``: the failing outputs were *dropped* and the rest
  queued. This client treats that as a rejection too (:class:`PromptRejected` with
  ``accepted=True``): a wfrun workflow declares all its outputs, so running a subset would
  deliver incomplete results; the caller withdraws the accepted prompt.
- ``POST /queue {"delete": [...]}`` and ``POST /interrupt {"prompt_id"}`` answer 200 with
  an empty body whatever happened; callers confirm through WS, ``/queue`` or ``/history``.
- ``GET /history/{id}`` is ``{}`` both for unknown and for pending/running prompts.
- ``GET /queue`` items are ``[number, prompt_id, graph, extra_data, outputs]``; pending
  ones come in heap order.
- ``POST /upload/image`` (multipart ``image``, ``overwrite``, ``subfolder``, ``type``)
  answers ``{"name", "subfolder", "type"}``; LoadImage takes ``subfolder/name``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple
from urllib.parse import quote

import httpx

from wfrun.engines.base import EnginePermanent, EngineTransient, EngineUnreachable
from wfrun.engines.comfyui.events import VALIDATION_FAILED, describe_rejection

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class ComfyRequestError(EngineTransient):
    """An HTTP request to ComfyUI failed (base of the errors below)."""


class ComfyUnavailable(ComfyRequestError, EngineUnreachable):
    """The server could not be reached or did not answer in time."""


class ComfyServerError(ComfyRequestError):
    """The server answered 5xx."""


class ComfyProtocolError(ComfyRequestError):
    """The server answered something this client does not expect (status or shape)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class PromptRejected(EnginePermanent):
    """``POST /prompt`` refused the graph (400), or accepted it while dropping outputs.

    Attributes:
        error: ComfyUI's ``error`` object (``{}`` for a 200 with ``node_errors``).
        node_errors: ComfyUI's ``node_errors``.
        accepted: True when the server queued the valid remainder (200); the caller should
            withdraw ``prompt_id`` from the server.
        prompt_id: The queued prompt when ``accepted``.
    """

    def __init__(
        self,
        error: Mapping[str, Any],
        node_errors: Mapping[str, Any],
        *,
        accepted: bool = False,
        prompt_id: str | None = None,
    ) -> None:
        failure = describe_rejection(error, node_errors)
        super().__init__(failure.message, code=VALIDATION_FAILED, node_id=failure.node_id)
        self.error = dict(error)
        self.node_errors = dict(node_errors)
        self.accepted = accepted
        self.prompt_id = prompt_id


class QueueState(NamedTuple):
    """``GET /queue``: ids running and pending (pending sorted by ``number``)."""

    running: tuple[str, ...]
    pending: tuple[str, ...]

    def knows(self, prompt_id: str) -> bool:
        """True when the prompt is running or pending."""
        return prompt_id in self.running or prompt_id in self.pending


class ComfyClient:
    """HTTP calls to one ComfyUI server; network trouble becomes :class:`EngineTransient`."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """Creates the client.

        Args:
            base_url: The server, e.g. ``http://10.0.0.5:8188`` (a path prefix is kept).
            timeout: httpx timeouts.
            transport: Optional httpx transport (tests).
        """
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout, transport=transport, follow_redirects=False
        )

    async def aclose(self) -> None:
        """Closes the connection pool."""
        await self._http.aclose()

    async def system_stats(self) -> dict[str, Any]:
        """``GET /system_stats``: versions and devices; a cheap liveness probe."""
        return _object(await self._json("GET", "/system_stats"), "/system_stats")

    async def object_info(self) -> dict[str, Any]:
        """``GET /object_info``: every node class by name."""
        return _object(await self._json("GET", "/object_info"), "/object_info")

    async def upload_image(
        self, name: str, data: bytes, *, subfolder: str = "", overwrite: bool = True
    ) -> str:
        """``POST /upload/image`` into the input directory.

        Returns:
            The value to put in ``LoadImage.image``: ``name`` as stored, prefixed with
            ``subfolder/`` when the server reports a non-empty subfolder.
        """
        form = {"overwrite": "true" if overwrite else "false", "type": "input"}
        if subfolder:
            form["subfolder"] = subfolder
        files = {"image": (name, data, "application/octet-stream")}
        response = await self._send("POST", "/upload/image", data=form, files=files)
        reply = _object(self._decode(response, "/upload/image"), "/upload/image")
        stored, folder = reply.get("name"), reply.get("subfolder") or ""
        if not isinstance(stored, str) or not stored or not isinstance(folder, str):
            raise ComfyProtocolError(f"{self.base_url}/upload/image answered {reply!r}")
        return f"{folder}/{stored}" if folder else stored

    async def queue_prompt(
        self,
        graph: Mapping[str, Any],
        *,
        prompt_id: str,
        client_id: str,
        extra_data: Mapping[str, Any] | None = None,
    ) -> int:
        """``POST /prompt``: queues the graph under a chosen id, routed to ``client_id``.

        Returns:
            The queue ``number``.

        Raises:
            PromptRejected: 400, or 200 with non-empty ``node_errors`` (``accepted=True``).
            EngineTransient: network trouble, 5xx or an unexpected reply.
        """
        body = {
            "prompt": graph,
            "client_id": client_id,
            "prompt_id": prompt_id,
            "extra_data": dict(extra_data or {}),
        }
        response = await self._send("POST", "/prompt", json=body)
        if response.status_code == 400:
            reply = _object(_parse_json(response, self.base_url), "/prompt")
            raise PromptRejected(_mapping(reply.get("error")), _mapping(reply.get("node_errors")))
        reply = _object(self._decode(response, "/prompt"), "/prompt")
        node_errors = _mapping(reply.get("node_errors"))
        if node_errors:
            raise PromptRejected({}, node_errors, accepted=True, prompt_id=prompt_id)
        number = reply.get("number")
        return int(number) if isinstance(number, int | float) else 0

    async def queue(self) -> QueueState:
        """``GET /queue``: running and pending prompt ids."""
        reply = _object(await self._json("GET", "/queue"), "/queue")
        return QueueState(
            _ids(reply.get("queue_running")), _ids(reply.get("queue_pending"), by_number=True)
        )

    async def delete_pending(self, prompt_id: str) -> None:
        """``POST /queue {"delete": [id]}``: drops a *pending* prompt (running ones stay)."""
        await self._empty("POST", "/queue", {"delete": [prompt_id]})

    async def interrupt(self, prompt_id: str) -> None:
        """``POST /interrupt {"prompt_id": id}``: interrupts it only if it is running."""
        await self._empty("POST", "/interrupt", {"prompt_id": prompt_id})

    async def delete_history(self, prompt_id: str) -> None:
        """``POST /history {"delete": [id]}``: forgets a finished prompt."""
        await self._empty("POST", "/history", {"delete": [prompt_id]})

    async def history(self, prompt_id: str) -> dict[str, Any] | None:
        """``GET /history/{id}``.

        Returns:
            The entry, or None when the server answers ``{}`` (unknown, pending or running).
        """
        path = f"/history/{quote(prompt_id, safe='')}"
        reply = _object(await self._json("GET", path), path)
        entry = reply.get(prompt_id)
        return entry if isinstance(entry, dict) else None

    async def view(self, filename: str, subfolder: str = "", type: str = "output") -> bytes:
        """``GET /view``: the bytes of an output, temp or input file."""
        params = {"filename": filename, "subfolder": subfolder, "type": type}
        response = await self._send("GET", "/view", params=params)
        if response.status_code != 200:
            raise ComfyProtocolError(
                f"{self.base_url}/view of {subfolder + '/' if subfolder else ''}{filename} "
                f"({type}) answered HTTP {response.status_code}",
                status=response.status_code,
            )
        return response.content

    async def _json(self, method: str, path: str) -> Any:
        return self._decode(await self._send(method, path), path)

    async def _empty(self, method: str, path: str, body: Mapping[str, Any]) -> None:
        response = await self._send(method, path, json=body)
        self._check_status(response, path)

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise ComfyUnavailable(
                f"ComfyUI at {self.base_url} did not answer {method} {path} in time "
                f"({type(exc).__name__})"
            ) from exc
        except httpx.TransportError as exc:
            raise ComfyUnavailable(
                f"ComfyUI at {self.base_url} is unreachable ({method} {path}): "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    def _decode(self, response: httpx.Response, path: str) -> Any:
        self._check_status(response, path)
        return _parse_json(response, self.base_url)

    def _check_status(self, response: httpx.Response, path: str) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        excerpt = response.text[:200]
        if status >= 500:
            raise ComfyServerError(
                f"ComfyUI at {self.base_url} answered HTTP {status} to {path}: {excerpt!r}"
            )
        raise ComfyProtocolError(
            f"ComfyUI at {self.base_url} answered HTTP {status} to {path}: {excerpt!r}",
            status=status,
        )


def _parse_json(response: httpx.Response, base_url: str) -> Any:
    try:
        return json.loads(response.content)
    except ValueError as exc:
        raise ComfyProtocolError(
            f"ComfyUI at {base_url} answered non-JSON to {response.request.url.path}: "
            f"{response.text[:200]!r}",
            status=response.status_code,
        ) from exc


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ComfyProtocolError(f"expected a JSON object from {path}, got {type(value).__name__}")
    return value


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _ids(items: Any, *, by_number: bool = False) -> tuple[str, ...]:
    """Prompt ids of queue items ``[number, prompt_id, graph, extra_data, outputs]``."""
    valid = [
        item
        for item in (items if isinstance(items, list) else [])
        if isinstance(item, list) and len(item) >= 2 and isinstance(item[1], str)
    ]
    if by_number:
        valid.sort(key=lambda item: item[0] if isinstance(item[0], int | float) else 0)
    return tuple(item[1] for item in valid)
