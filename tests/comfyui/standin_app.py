"""HTTP + WebSocket routes of the ComfyUI stand-in (Starlette), mirroring ComfyUI 0.3.64.

Reproduced (reference §4, §5.1): every route also under ``/api``; JSON replies as
``application/json; charset=utf-8``; POSTs that answer 200 with an empty body and no
content type; ``500`` text/plain ``"500 Internal Server Error\\n\\nServer got itself in
trouble"`` for a non-JSON ``/prompt`` body or a non-object ``prompt``; ``400`` with an
empty body for an upload without ``image``; ``403`` (empty) when an ``Origin`` header's
host differs from ``Host``; the WS handshake (first frame ``status`` with ``sid``, the
``feature_flags`` hello, the ``executing`` without ``prompt_id`` on reconnect).
"""

from __future__ import annotations

import json
import mimetypes
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket

from tests.comfyui.standin_state import Peer, QueueItem
from tests.comfyui.standin_validation import error_object, validate_prompt
from wfrun.engines.local.nodes import object_info

if TYPE_CHECKING:
    from tests.comfyui.standin import ComfyStandin

JSON_TYPE = "application/json; charset=utf-8"
FEATURES = {"supports_preview_metadata": True, "max_upload_size": 104857600}


def json_reply(value: Any, status: int = 200) -> Response:
    return Response(json.dumps(value), status_code=status, media_type=JSON_TYPE)


def empty(status: int = 200) -> Response:
    return Response(status_code=status)


def trouble() -> Response:
    body = "500 Internal Server Error\n\nServer got itself in trouble"
    return PlainTextResponse(body, status_code=500)


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    return json.loads(raw) if raw else {}


class Routes:
    """Route handlers bound to one stand-in (its *current* state, which restarts replace)."""

    def __init__(self, standin: ComfyStandin) -> None:
        self.standin = standin

    def table(self) -> list[BaseRoute]:
        get, post = ["GET"], ["POST"]
        routes: list[BaseRoute] = [
            Route("/prompt", self.post_prompt, methods=post),
            Route("/prompt", self.get_prompt, methods=get),
            Route("/queue", self.get_queue, methods=get),
            Route("/queue", self.post_queue, methods=post),
            Route("/interrupt", self.post_interrupt, methods=post),
            Route("/history", self.get_history, methods=get),
            Route("/history/{prompt_id}", self.get_history_item, methods=get),
            Route("/history", self.post_history, methods=post),
            Route("/upload/image", self.upload_image, methods=post),
            Route("/view", self.view, methods=get),
            Route("/system_stats", self.system_stats, methods=get),
            Route("/object_info", self.object_info, methods=get),
            Route("/object_info/{node_class}", self.object_info_class, methods=get),
            Route("/features", self.features, methods=get),
            Route("/embeddings", self.embeddings, methods=get),
            Route("/free", self.free, methods=post),
            WebSocketRoute("/ws", self.websocket),
        ]
        return [*routes, Mount("/api", routes=list(routes))]

    @property
    def state(self) -> Any:
        return self.standin.state

    async def post_prompt(self, request: Request) -> Response:
        try:
            body = await _json_body(request)
        except ValueError:
            return trouble()
        if not isinstance(body, dict):
            return trouble()
        state = self.state
        number = state.take_number(body)
        if "prompt" not in body:
            no_prompt = error_object("no_prompt", "No prompt provided", "No prompt provided")
            return json_reply({"error": no_prompt, "node_errors": {}}, 400)
        prompt = body["prompt"]
        if not isinstance(prompt, dict):
            return trouble()
        targets = body.get("partial_execution_targets")
        verdict = validate_prompt(prompt, self._input_exists, targets)
        if verdict.error is not None:
            return json_reply({"error": verdict.error, "node_errors": verdict.node_errors}, 400)
        extra = dict(body.get("extra_data") or {})
        if "client_id" in body:
            extra["client_id"] = body["client_id"]
        prompt_id = body.get("prompt_id") or str(uuid.uuid4())
        await state.put(QueueItem(number, str(prompt_id), prompt, extra, verdict.outputs))
        reply = {"prompt_id": prompt_id, "number": number, "node_errors": verdict.node_errors}
        return json_reply(reply)

    def _input_exists(self, name: str) -> bool:
        return self.standin.files.input_path(name) is not None

    async def get_prompt(self, request: Request) -> Response:
        return json_reply({"exec_info": {"queue_remaining": self.state.queue_remaining()}})

    async def get_queue(self, request: Request) -> Response:
        state = self.state
        running = [state.running.wire()] if state.running is not None else []
        pending = [item.wire() for item in state.pending()]
        return json_reply({"queue_running": running, "queue_pending": pending})

    async def post_queue(self, request: Request) -> Response:
        body = await _json_body(request)
        if body.get("clear"):
            await self.state.clear()
        if "delete" in body:
            await self.state.delete(list(body["delete"]))
        return empty()

    async def post_interrupt(self, request: Request) -> Response:
        try:
            body = await _json_body(request)
        except ValueError:
            body = {}
        prompt_id = body.get("prompt_id") if isinstance(body, dict) else None
        self.state.interrupt(prompt_id if isinstance(prompt_id, str) else None)
        return empty()

    async def get_history(self, request: Request) -> Response:
        items = list(self.state.history.items())
        max_items = request.query_params.get("max_items")
        offset = request.query_params.get("offset")
        if offset is not None:
            start = int(offset)
            items = items[start : start + int(max_items)] if max_items else items[start:]
        elif max_items is not None:
            items = items[-int(max_items) :] if int(max_items) > 0 else []
        return json_reply(dict(items))

    async def get_history_item(self, request: Request) -> Response:
        prompt_id = request.path_params["prompt_id"]
        entry = self.state.history.get(prompt_id)
        return json_reply({prompt_id: entry} if entry is not None else {})

    async def post_history(self, request: Request) -> Response:
        body = await _json_body(request)
        if body.get("clear"):
            self.state.history.clear()
        for prompt_id in body.get("delete", []):
            self.state.history.pop(prompt_id, None)
        return empty()

    async def upload_image(self, request: Request) -> Response:
        async with request.form() as form:
            image = form.get("image")
            if not isinstance(image, UploadFile) or not image.filename:
                return empty(400)
            overwrite = form.get("overwrite") in ("true", "1")
            subfolder = str(form.get("subfolder") or "")
            kind = str(form.get("type") or "input")
            reply = self.standin.files.upload(
                image.filename,
                await image.read(),
                subfolder=subfolder,
                kind=kind,
                overwrite=overwrite,
            )
        return json_reply(reply) if reply is not None else empty(400)

    async def view(self, request: Request) -> Response:
        query = request.query_params
        if "filename" not in query:
            return empty(404)
        kind = query.get("type", "output")
        status, path = self.standin.files.view(query["filename"], query.get("subfolder"), kind)
        if path is None:
            return empty(status)
        media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        headers = {"Content-Disposition": f'filename="{path.name}"'}
        return Response(path.read_bytes(), media_type=media, headers=headers)

    async def system_stats(self, request: Request) -> Response:
        return json_reply(SYSTEM_STATS)

    async def object_info(self, request: Request) -> Response:
        return json_reply(self._object_info())

    async def object_info_class(self, request: Request) -> Response:
        info = self._object_info()
        name = request.path_params["node_class"]
        return json_reply({name: info[name]} if name in info else {})

    def _object_info(self) -> dict[str, Any]:
        return object_info(self._input_files()) | self.standin.custom_nodes

    def _input_files(self) -> list[str]:
        folder = self.standin.files.directory("input")
        return sorted(p.name for p in folder.iterdir() if p.is_file()) if folder else []

    async def features(self, request: Request) -> Response:
        return json_reply(FEATURES)

    async def embeddings(self, request: Request) -> Response:
        return json_reply([])

    async def free(self, request: Request) -> Response:
        return empty()

    async def websocket(self, ws: WebSocket) -> None:
        await ws.accept()
        state = self.state
        sid = ws.query_params.get("clientId") or uuid.uuid4().hex
        peer = Peer(ws, sid)
        state.sockets[sid] = peer  # replaces an older socket without closing it
        state.peers.add(peer)
        try:
            await peer.send({"type": "status", "data": state.status_data(sid)})
            running = state.running
            if running is not None and running.client_id == sid and state.current_node:
                await peer.send({"type": "executing", "data": {"node": state.current_node}})
            await self._read(ws, peer)
        finally:
            state.peers.discard(peer)
            state.sockets.pop(sid, None)  # faithful: may unregister a newer socket (§5.1)

    async def _read(self, ws: WebSocket, peer: Peer) -> None:
        first = True
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if first and text and _is_feature_hello(text):
                await peer.send({"type": "feature_flags", "data": FEATURES})
            first = False


def _is_feature_hello(text: str) -> bool:
    try:
        data = json.loads(text)
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("type") == "feature_flags"


def build_app(standin: ComfyStandin, middleware: Callable[[Any], Any]) -> Any:
    """The ASGI app: routes wrapped by the recording/delay/origin middleware."""
    return middleware(Starlette(routes=Routes(standin).table()))


SYSTEM_STATS = {
    "system": {
        "os": "posix",
        "ram_total": 25276514304,
        "ram_free": 24259969024,
        "comfyui_version": "0.3.64",
        "required_frontend_version": "1.27.10",
        "installed_templates_version": "0.1.95",
        "required_templates_version": "0.1.95",
        "python_version": "3.11.7 (main, May  9 2026, 07:35:25) [GCC 12.2.0]",
        "pytorch_version": "2.13.0+cpu",
        "embedded_python": False,
        "argv": [
            "<comfyui>/main.py",
            "--cpu",
            "--listen",
            "127.0.0.1",
            "--port",
            "8188",
            "--disable-auto-launch",
        ],
    },
    "devices": [
        {
            "name": "cpu",
            "type": "cpu",
            "index": None,
            "vram_total": 25276514304,
            "vram_free": 24259969024,
            "torch_vram_total": 25276514304,
            "torch_vram_free": 24259969024,
        }
    ],
}
