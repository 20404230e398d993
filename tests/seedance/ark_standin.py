"""A Volcengine Ark stand-in for Seedance: a real HTTP server on 127.0.0.1.

Runs uvicorn + Starlette in its own thread and event loop (like a separate process), started
and stopped from synchronous code (:meth:`ArkStandin.launch` / :meth:`ArkStandin.shutdown`).
Every behaviour cites /work/shared/reference/seedance-ark.md (§); "silent:" marks a choice
the reference does not make, resolved conservatively.

Served:
- data plane (§1.1) under ``/api/v3``: ``POST/GET /contents/generations/tasks``,
  ``GET/DELETE /contents/generations/tasks/{id}``, Bearer API-key auth;
- output files: ``/tos/{task_id}/video.mp4`` and ``/tos/{task_id}/last_frame.png`` (presigned,
  24 h, §1.6);
- asset control plane (§4.3/§4.4): ``POST /?Action=…&Version=2024-01-01`` with Volcengine V4
  HMAC-SHA256 signatures (verified against the stand-in's AK/SK), plus ``GET /h5/liveness``
  standing in for the person's phone completing liveness verification.

Task timing is computed from :class:`Clock` (real time plus an offset tests can
:meth:`Clock.advance`), so status is a pure function of time: queued for ``queued_s``, running
for ``running_s``, then succeeded/failed; expired when ``execution_expires_after`` passes first.

Not modelled: callbacks to ``callback_url`` (stored and echoed only), rate limits by RPM or
concurrency other than :attr:`ArkStandin.max_active_tasks`, media inspection of public URLs
(size/duration/format limits of §1.4), request-size limit (64 MB), billing of video inputs.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import random
import string
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tests.seedance.ark_media import build_mp4, build_png
from tests.seedance.ark_rules import (
    FPS,
    MODELS,
    ArkError,
    MediaRef,
    ModelSpec,
    TaskSpec,
    bad,
    completion_tokens,
    frame_count,
    pixel_size,
    validate_create,
)
from tests.support.uvicorn_runner import serve_on_loopback, stop_serving

API = "/api/v3"  # §1.1 base URL path
DAY = 86400.0
_LIST_STATUSES = ("queued", "running", "cancelled", "succeeded", "failed")


class Clock:
    """Wall time plus an offset; :meth:`advance` moves the stand-in into the future."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def _stamp(now: float) -> str:
    return dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y%m%d%H%M%S")


def _suffix(n: int = 5) -> str:
    return "".join(random.choices(string.ascii_lowercase + string.digits, k=n))


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass(frozen=True)
class KeyInfo:
    """§1.1: an API key belongs to one project and can be restricted to Model/Endpoint IDs."""

    project: str = "default"
    allowed_models: frozenset[str] | None = None


@dataclass
class TaskPlan:
    """How one task will run (knob :meth:`ArkStandin.next_task`); ``None`` = the stand-in's
    default duration. ``hold_queued``/``hold_running`` keep it there until :meth:`release`.
    ``completion_tokens`` replaces the usage a success reports (default: §2.1's arithmetic on
    the rendered size), e.g. more tokens than the quote allowed for."""

    queued_s: float | None = None
    running_s: float | None = None
    hold_queued: bool = False
    hold_running: bool = False
    fail_code: str | None = None
    fail_message: str = "The output video may contain sensitive content."
    completion_tokens: int | None = None


@dataclass
class Task:
    id: str
    spec: TaskSpec
    project: str
    created_at: float
    start_at: float | None  # None: held in queue
    end_at: float | None  # None: held running
    fail: tuple[str, str] | None = None
    cancelled_at: float | None = None
    expired_at: float | None = None  # forced by the expire knob
    deleted: bool = False
    with_video_input: bool = False
    completion_tokens: int | None = None  # reported usage, when a plan fixed it

    def state(self, now: float) -> tuple[str, float]:
        """(status, time of the last transition) at ``now``."""
        if self.cancelled_at is not None:
            return "cancelled", self.cancelled_at
        # §1.3 execution_expires_after: "A task still queued or running past this, counted
        # from created_at, becomes expired".
        deadline = self.created_at + self.spec.execution_expires_after
        if self.expired_at is not None:
            deadline = min(deadline, self.expired_at)
        finish = self.end_at if self.end_at is not None else float("inf")
        if now >= deadline and deadline < finish:
            return "expired", deadline
        if self.start_at is None or now < self.start_at:
            return "queued", self.created_at
        if now < finish:
            return "running", self.start_at
        return ("failed" if self.fail else "succeeded"), finish


@dataclass
class AssetGroup:
    id: str
    name: str
    description: str
    group_type: str  # "AIGC" | "LivenessFace"
    project: str
    created_at: float
    authorisation_active: bool = True


@dataclass
class Asset:
    id: str
    group_id: str
    url: str
    asset_type: str
    name: str
    project: str
    created_at: float
    ready_at: float | None  # None: held Processing until ArkStandin.release_asset
    error: tuple[str, str] | None

    def status(self, now: float) -> str:
        # §4.4: "Status goes from Processing to Active, or to Failed with an Error{Code,Message}"
        if self.ready_at is None or now < self.ready_at:
            return "Processing"
        return "Failed" if self.error else "Active"


@dataclass
class LivenessSession:
    token: str
    callback_url: str
    project: str
    created_at: float
    result_code: int | None = None
    group_id: str | None = None
    consumed: bool = False


class CtrlError(Exception):
    """§4.4/§5.3: control-plane error in ``ResponseMetadata.Error``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(code)
        self.status, self.code, self.message = status, code, message


@dataclass
class _Injected:
    status: int
    code: str
    message: str


@dataclass
class ArkStandin:
    """The stand-in; tests use the public attributes and methods as knobs."""

    api_keys: dict[str, KeyInfo] = field(default_factory=lambda: {"test-ark-key": KeyInfo()})
    access_key: str = "AKTESTSTANDIN"
    secret_key: str = "SKTESTSTANDIN"
    region: str = "cn-beijing"
    # §1.1: model accepts a Model ID or an Endpoint ID (ep-…); endpoint → Model ID.
    endpoints: dict[str, str] = field(default_factory=dict)
    # §5.1 404 ModelNotOpen: Model IDs not activated on the account.
    not_open_models: set[str] = field(default_factory=set)
    queued_s: float = 0.15
    running_s: float = 0.25
    # §1.3 duration -1 "model chooses; it is billed". silent: which value → the maximum.
    auto_duration: int | None = None
    # §1.8: "QuotaExceeded also covers too many tasks queued" → 429 when this many are active.
    max_active_tasks: int | None = None
    # §1.5/§5.1: input blocked synchronously; a URL or prompt substring → error code.
    sensitive_inputs: dict[str, str] = field(default_factory=dict)
    # §4.1: images/videos showing a real face → ...PrivacyInformation, unless trusted (route A).
    real_face_urls: set[str] = field(default_factory=set)
    trusted_urls: set[str] = field(default_factory=set)
    # §4.1 route B: preset virtual portraits (asset IDs usable without registration).
    preset_assets: dict[str, str] = field(default_factory=dict)  # id → Image|Video|Audio
    # §4.2: "Your account has not activated the Asset Service" → 400 InvalidParameter.
    asset_service_activated: bool = True
    # §4.4: IAM policy ark:*Asset*; without it 403 AccessDenied.
    asset_api_allowed: bool = True
    asset_processing_s: float = 0.1
    asset_video_processing_s: float = 0.3  # §4.4 "Video takes longer"
    hold_assets: bool = False  # new assets stay Processing until release_asset()
    asset_failures: dict[str, tuple[str, str]] = field(default_factory=dict)  # URL → Error
    max_asset_groups: int | None = None  # §5.3 QuotaExceeded (403, too many groups)
    liveness_result_code: int = 10000  # §4.3: resultCode=10000 means success
    reply_delay: float = 0.0

    def __post_init__(self) -> None:
        self.clock = Clock()
        self.port = 0
        self.requests: list[RecordedRequest] = []
        self.tasks: dict[str, Task] = {}
        self.groups: dict[str, AssetGroup] = {}
        self.assets: dict[str, Asset] = {}
        self.sessions: dict[str, LivenessSession] = {}
        self._lock = threading.RLock()
        self._create_failures: list[_Injected] = []
        self._list_failures: list[_Injected] = []
        self._drops = 0
        self._list_drops = 0
        self._plans: list[TaskPlan] = []
        self._action_failures: dict[str, list[_Injected]] = {}
        self._url_secret = _suffix(16).encode()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: uvicorn.Server | None = None
        self._serving: asyncio.Task[None] | None = None

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The SDK's ``base_url`` (``…/api/v3``, §1.1)."""
        return f"http://127.0.0.1:{self.port}{API}"

    @property
    def host(self) -> str:
        """Host for the control plane (``volcenginesdkcore.Configuration.host``)."""
        return f"127.0.0.1:{self.port}"

    def launch(self) -> ArkStandin:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(10)
        return self

    def shutdown(self) -> None:
        asyncio.run_coroutine_threadsafe(self._unserve(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _serve(self) -> None:
        self._server, self._serving, self.port = await serve_on_loopback(
            _TransportCapture(self._app()), http="h11"
        )

    async def _unserve(self) -> None:
        if self._server is not None and self._serving is not None:
            await stop_serving(self._server, self._serving)

    def _app(self) -> Starlette:
        tasks = f"{API}/contents/generations/tasks"
        return Starlette(
            routes=[
                Route(tasks, self._create, methods=["POST"]),
                Route(tasks, self._list, methods=["GET"]),
                Route(tasks + "/{task_id}", self._get, methods=["GET"]),
                Route(tasks + "/{task_id}", self._delete, methods=["DELETE"]),
                Route("/tos/{task_id}/{name}", self._file, methods=["GET"]),
                Route("/h5/liveness", self._h5, methods=["GET"]),
                Route("/", self._action, methods=["POST", "GET"]),
            ]
        )

    # -- knobs ----------------------------------------------------------------------------

    def fail_next_create(
        self, status: int, code: str, message: str = "injected failure", times: int = 1
    ) -> None:
        """The next ``times`` creates answer this error before anything is processed."""
        with self._lock:
            self._create_failures += [_Injected(status, code, message)] * times

    def fail_next_list(
        self, status: int, code: str, message: str = "injected", times: int = 1
    ) -> None:
        """The next ``times`` list calls answer this error."""
        with self._lock:
            self._list_failures += [_Injected(status, code, message)] * times

    def drop_next_create_response(self, times: int = 1) -> None:
        """The next ``times`` creates are processed (a billable task exists) and then the
        connection is aborted before any response byte is sent."""
        with self._lock:
            self._drops += times

    def drop_next_list(self, times: int = 1) -> None:
        """The next ``times`` list calls lose their connection before any answer (as when a
        server closes an idle keep-alive connection the client is reusing)."""
        with self._lock:
            self._list_drops += times

    def next_task(self, plan: TaskPlan) -> None:
        """The next created task runs to ``plan`` (queue of plans, one per create)."""
        with self._lock:
            self._plans.append(plan)

    def fail_task(self, task_id: str, code: str, message: str = "injected") -> None:
        """§5.2: the task ends ``failed`` with ``error.code`` when it would have finished."""
        with self._lock:
            self.tasks[task_id].fail = (code, message)

    def release(self, task_id: str, running_s: float | None = 0.0) -> None:
        """Starts a held task now; it then runs for ``running_s`` (``None``: held running)."""
        with self._lock:
            task, now = self.tasks[task_id], self.clock.now()
            task.start_at = task.start_at if task.start_at is not None else now
            task.end_at = None if running_s is None else max(task.start_at, now) + running_s

    def release_asset(self, asset_id: str) -> None:
        """A held asset's processing ends now (Active, or Failed per ``asset_failures``)."""
        with self._lock:
            self.assets[asset_id].ready_at = self.clock.now()

    def expire(self, task_id: str) -> None:
        """The task expires now if it is still queued or running."""
        with self._lock:
            self.tasks[task_id].expired_at = self.clock.now()

    def fail_next_action(self, action: str, status: int, code: str, message: str = "") -> None:
        with self._lock:
            self._action_failures.setdefault(action, []).append(_Injected(status, code, message))

    def revoke_authorisation(self, group_id: str) -> None:
        """§4.3: a LivenessFace group's authorisation expires/is rejected (deletable then)."""
        with self._lock:
            self.groups[group_id].authorisation_active = False

    def calls(self, method: str, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path == path]

    def creates(self) -> list[RecordedRequest]:
        return self.calls("POST", f"{API}/contents/generations/tasks")

    def create_counts(self, key: Callable[[RecordedRequest], Hashable]) -> Counter[Hashable]:
        """How many create requests arrived per ``key`` (e.g. safety_identifier + body)."""
        return Counter(key(r) for r in self.creates())

    def live_tasks(self) -> list[Task]:
        with self._lock:
            return [t for t in self.tasks.values() if not t.deleted]

    def status_of(self, task_id: str) -> str:
        with self._lock:
            return self.tasks[task_id].state(self.clock.now())[0]

    # -- plumbing -------------------------------------------------------------------------

    async def _record(self, request: Request) -> bytes:
        body = await request.body()
        with self._lock:
            self.requests.append(
                RecordedRequest(
                    request.method,
                    request.url.path,
                    request.url.query,
                    dict(request.headers),
                    body,
                )
            )
        if self.reply_delay:
            await asyncio.sleep(self.reply_delay)
        return body

    def _auth(self, request: Request) -> KeyInfo:
        # §1.1 "Authorization: Bearer $ARK_API_KEY"; §5.1 401 AuthenticationError.
        header = request.headers.get("authorization", "")
        key = header.removeprefix("Bearer ") if header.startswith("Bearer ") else None
        info = self.api_keys.get(key or "")
        if info is None:
            raise ArkError(
                401, "AuthenticationError", "The API key in the request is missing or invalid."
            )
        return info

    @staticmethod
    def _error(err: ArkError) -> JSONResponse:
        request_id = _stamp(time.time()) + _suffix(20)
        # §3.3: "The server request ID is in the X-Request-Id header". silent: x-should-retry
        # is never sent (not documented for Ark).
        return JSONResponse(
            err.body(request_id), status_code=err.status, headers={"X-Request-Id": request_id}
        )

    # -- data plane -----------------------------------------------------------------------

    def _resolve_model(self, body: Any, key: KeyInfo) -> tuple[ModelSpec, str]:
        if not isinstance(body, dict):
            raise bad("InvalidParameter", "The request body must be a JSON object.")
        requested = body.get("model")
        if not isinstance(requested, str) or not requested:
            raise bad("MissingParameter.model", "The parameter `model` is required.", "model")
        model_id = self.endpoints.get(requested, requested)
        model = MODELS.get(model_id)
        if model is None:  # §5.1 404 InvalidEndpointOrModel.NotFound
            raise ArkError(
                404, "InvalidEndpointOrModel.NotFound", f"The model {requested} does not exist."
            )
        if key.allowed_models is not None and requested not in key.allowed_models:
            # §1.1 key restricted to Model/Endpoint IDs; §5.1 403 AccessDenied
            raise ArkError(403, "AccessDenied", f"The API key may not use {requested}.")
        if model_id in self.not_open_models:
            raise ArkError(404, "ModelNotOpen", f"The model {model_id} is not activated.")
        return model, requested

    def _check_media(self, spec: TaskSpec, project: str) -> None:
        for ref in spec.media:
            if ref.asset_id is not None:
                self._check_asset(ref, ref.asset_id, project)
                continue
            code = self.sensitive_inputs.get(ref.url)
            if code:  # §5.1 Input*SensitiveContentDetected (400, synchronous)
                raise bad(code, f"The input {ref.kind} '{ref.param}' was blocked.", ref.param)
            if ref.kind in ("image", "video") and self._face_blocked(ref.url):
                # §1.5 example message; §4.1 PrivacyInformation. silent: applied to every model
                # (the reference states the rule for 2.0) → stricter.
                raise bad(
                    f"Input{ref.kind.capitalize()}SensitiveContentDetected.PrivacyInformation",
                    f"The request failed because the input {ref.kind} '{ref.param}' "
                    "may contain real person.",
                    ref.param,
                )
        for needle, code in self.sensitive_inputs.items():
            if spec.prompt and needle in spec.prompt:
                raise bad(code, "The input text was blocked.", "content")

    def _face_blocked(self, url: str) -> bool:
        # §4.1 route A: the same account's own Seedance outputs (≤ 30 days) are trusted; a
        # test declares copies it stored unedited in ``trusted_urls``.
        return url in self.real_face_urls and not (url in self.trusted_urls or self._own(url))

    def _own(self, url: str) -> bool:
        prefix = f"http://127.0.0.1:{self.port}/tos/"
        if not url.startswith(prefix):
            return False
        task = self.tasks.get(url.removeprefix(prefix).split("/", 1)[0])
        return task is not None and self.clock.now() - task.created_at <= 30 * DAY

    def _check_asset(self, ref: MediaRef, asset_id: str, project: str) -> None:
        if not self.asset_service_activated:  # §4.2 third-party field report, 400
            raise bad("InvalidParameter", "Your account has not activated the Asset Service")
        preset = self.preset_assets.get(asset_id)
        asset = self.assets.get(asset_id)
        kind = preset or (asset.asset_type if asset else None)
        # §4.2 "The asset must be Active"; same project as the API key. silent: the error for an
        # unknown, processing, failed or foreign-project asset is undocumented → 400
        # InvalidParameter naming the content item (refused synchronously, nothing billed).
        usable = preset is not None or (
            asset is not None
            and asset.status(self.clock.now()) == "Active"
            and asset.project == project
        )
        if not usable:
            raise bad("InvalidParameter", f"The asset {asset_id} is not available.", ref.param)
        if kind != ref.kind.capitalize():  # §4.2 "url of the item that matches its type"
            raise bad("InvalidParameter", f"The asset {asset_id} is not a {ref.kind}.", ref.param)

    def _check_draft(self, spec: TaskSpec) -> None:
        if spec.draft_task_id is None:
            return
        # §1.3 draft: "A later task takes content:[{type:draft_task, draft_task:{id}}]".
        # silent: the source must be an existing succeeded draft task, else 400.
        src = self.tasks.get(spec.draft_task_id)
        ok = src is not None and src.spec.draft and src.state(self.clock.now())[0] == "succeeded"
        if not ok:
            raise bad("InvalidParameter", "draft_task.id is not a succeeded draft.", "content")

    def _admit(self, spec: TaskSpec, key: KeyInfo) -> Task:
        now = self.clock.now()
        if self.max_active_tasks is not None:
            active = sum(
                1
                for t in self.tasks.values()
                if not t.deleted and t.state(now)[0] in ("queued", "running")
            )
            if active >= self.max_active_tasks:  # §1.8 / §5.1 429 QuotaExceeded
                raise ArkError(429, "QuotaExceeded", "Too many tasks are queued.")
        plan = self._plans.pop(0) if self._plans else TaskPlan()
        queued = self.queued_s if plan.queued_s is None else plan.queued_s
        running = self.running_s if plan.running_s is None else plan.running_s
        start = None if plan.hold_queued else now + queued
        end = None if start is None or plan.hold_running else start + running
        task = Task(
            id=f"cgt-{_stamp(now)}-{_suffix()}",  # §1.5 "cgt-20250331175019-68d9t"
            spec=spec,
            project=key.project,
            created_at=now,
            start_at=start,
            end_at=end,
            fail=(plan.fail_code, plan.fail_message) if plan.fail_code else None,
            with_video_input=any(m.kind == "video" for m in spec.media),
            completion_tokens=plan.completion_tokens,
        )
        self.tasks[task.id] = task
        return task

    async def _create(self, request: Request) -> Response:
        raw = await self._record(request)
        try:
            key = self._auth(request)
            with self._lock:
                injected = self._create_failures.pop(0) if self._create_failures else None
            if injected:
                raise ArkError(injected.status, injected.code, injected.message)
            try:
                body = json.loads(raw)
            except ValueError:
                raise bad("InvalidParameter", "The request body is not valid JSON.") from None
            with self._lock:
                model, requested = self._resolve_model(body, key)
                default_auto = model.durations[1]
                spec = validate_create(
                    body, model, requested, auto_duration=self.auto_duration or default_auto
                )
                self._check_media(spec, key.project)
                self._check_draft(spec)
                task = self._admit(spec, key)
                drop = self._drops > 0
                self._drops -= int(drop)
        except ArkError as err:
            return self._error(err)
        if drop:
            await _abort(request)
        # §1.5: {"id": "cgt-…"}
        return JSONResponse({"id": task.id})

    def _visible(self, task: Task | None, now: float) -> bool:
        if task is None or task.deleted:
            return False
        status, at = task.state(now)
        # §1.5 "A task ID is kept for 7 days"; §1.6 cancelled "deleted automatically after 24 h".
        if status == "cancelled":
            return now - at < DAY
        return now - task.created_at < 7 * DAY

    def _lookup(self, task_id: str) -> Task:
        task = self.tasks.get(task_id)
        if task is None or not self._visible(task, self.clock.now()):
            # §5.1 404 NotFound.<P> "unknown task ID". silent: <P> spelled task_id.
            raise ArkError(404, "NotFound.task_id", f"The task {task_id} was not found.", "id")
        return task

    async def _get(self, request: Request) -> Response:
        await self._record(request)
        try:
            self._auth(request)
            with self._lock:
                task = self._lookup(request.path_params["task_id"])
                return JSONResponse(self._render(task))
        except ArkError as err:
            return self._error(err)

    def _presign(self, task: Task, name: str, at: float) -> str:
        # §1.6: presigned TOS URL, X-Tos-Expires=86400. silent: signature scheme → HMAC of the
        # path and date with a stand-in secret; checked on download.
        path = f"/tos/{task.id}/{name}"
        date = str(int(at))
        sig = hmac.new(self._url_secret, (path + date).encode(), hashlib.sha256).hexdigest()
        query = urlencode({"X-Tos-Date": date, "X-Tos-Expires": "86400", "X-Tos-Signature": sig})
        return f"http://127.0.0.1:{self.port}{path}?{query}"

    def _render(self, task: Task) -> dict[str, Any]:
        now = self.clock.now()
        status, at = task.state(now)
        spec = task.spec
        ratio = "16:9" if spec.ratio == "adaptive" else spec.ratio  # silent: adaptive → 16:9
        out: dict[str, Any] = {
            "id": task.id,
            "model": spec.model.model_id,  # §1.6 model is name-version (the Model ID)
            "status": status,
            "error": None,
            "created_at": int(task.created_at),
            "updated_at": int(at),
            "resolution": spec.resolution,
            "ratio": ratio,
            "framespersecond": FPS,
            "service_tier": spec.service_tier,
            "execution_expires_after": spec.execution_expires_after,
        }
        # §1.6: "duration or frames (only one is returned)"
        if spec.frames is not None:
            out["frames"] = spec.frames
        else:
            out["duration"] = spec.duration
        optional = {
            "seed": spec.seed if spec.seed not in (None, -1) else 11 if spec.model.seed else None,
            "generate_audio": spec.generate_audio,
            "draft": spec.draft,
            "priority": spec.priority,
            "safety_identifier": spec.safety_identifier,
            "tools": spec.tools,
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        if status == "failed" and task.fail:
            out["error"] = {"code": task.fail[0], "message": task.fail[1]}
        elif status == "expired":
            # silent: the error object of an expired task is undocumented → code "Expired".
            out["error"] = {"code": "Expired", "message": "execution_expires_after elapsed"}
        if status == "succeeded":
            out["content"] = {"video_url": self._presign(task, "video.mp4", at)}
            if spec.return_last_frame:  # §1.3 return_last_frame → content.last_frame_url
                out["content"]["last_frame_url"] = self._presign(task, "last_frame.png", at)
            width, height = pixel_size(spec.model, spec.resolution, ratio)
            tokens = task.completion_tokens or completion_tokens(
                width, height, frame_count(spec.duration, spec.frames)
            )
            # §1.6: input tokens are 0, total == completion; §2.1 only successes are billed.
            # silent: usage is omitted on non-succeeded tasks.
            out["usage"] = {"completion_tokens": tokens, "total_tokens": tokens}
            if spec.tools:
                out["usage"]["tool_usage"] = {"web_search": 1}
        return out

    async def _list(self, request: Request) -> Response:
        await self._record(request)
        with self._lock:
            drop = self._list_drops > 0
            self._list_drops -= int(drop)
        if drop:
            await _abort(request)
            return Response(status_code=500)  # never sent: the connection is gone
        try:
            self._auth(request)
            with self._lock:
                injected = self._list_failures.pop(0) if self._list_failures else None
            if injected:  # §5.1 500 InternalServiceError and the like
                raise ArkError(injected.status, injected.code, injected.message)
            query = parse_qsl(request.url.query, keep_blank_values=True)
            with self._lock:
                return JSONResponse(self._list_body(query))
        except ArkError as err:
            return self._error(err)

    @staticmethod
    def _page(query: list[tuple[str, str]], name: str) -> int:
        values = [v for k, v in query if k == name]
        try:
            value = int(values[-1]) if values else 1 if name == "page_num" else 10
        except ValueError:
            raise bad(f"InvalidParameter.{name}", f"{name} must be an integer.", name) from None
        if not 1 <= value <= 500:  # §1.6 List: page_num, page_size each in [1, 500]
            raise bad(f"InvalidParameter.{name}", f"{name} must be in [1, 500].", name)
        return value

    def _list_body(self, query: list[tuple[str, str]]) -> dict[str, Any]:
        page_num, page_size = self._page(query, "page_num"), self._page(query, "page_size")
        filters: dict[str, list[str]] = {}
        for k, v in query:
            filters.setdefault(k, []).append(v)
        status = filters.get("filter.status", [None])[-1]
        # §1.6: filter.status takes one of queued, running, cancelled, succeeded, failed.
        if status is not None and status not in _LIST_STATUSES:
            raise bad("InvalidParameter.filter.status", "bad filter.status", "filter.status")
        tier = filters.get("filter.service_tier", [None])[-1]
        if tier is not None and tier not in ("default", "flex"):
            raise bad("InvalidParameter.filter.service_tier", "bad service_tier", "service_tier")
        now = self.clock.now()
        ids = set(filters.get("filter.task_ids", []))
        model = filters.get("filter.model", [None])[-1]
        items = [
            t
            for t in self.tasks.values()
            if self._visible(t, now)
            and (status is None or t.state(now)[0] == status)
            and (not ids or t.id in ids)
            and (model is None or model == t.spec.requested_model)  # "matched exactly"
            and (tier is None or tier == t.spec.service_tier)
        ]
        # §1.6 only the last 7 days (covered by _visible). silent: order → newest first.
        items.sort(key=lambda t: t.created_at, reverse=True)
        page = items[(page_num - 1) * page_size : page_num * page_size]
        return {"total": len(items), "items": [self._render(t) for t in page]}

    async def _delete(self, request: Request) -> Response:
        await self._record(request)
        try:
            self._auth(request)
            with self._lock:
                task = self._lookup(request.path_params["task_id"])
                status, _ = task.state(self.clock.now())
                # §1.7: queued → cancelled; succeeded/failed/expired → record deleted.
                if status == "queued":
                    task.cancelled_at = self.clock.now()
                elif status in ("succeeded", "failed", "expired"):
                    task.deleted = True
                else:
                    # §1.7 [third-party]: running cannot be cancelled. silent: the error for
                    # running/cancelled → 400 InvalidParameter (not 409, which the SDK retries).
                    raise bad("InvalidParameter", f"A {status} task cannot be deleted.", "id")
        except ArkError as err:
            return self._error(err)
        return JSONResponse({})  # §1.7 returns {}

    async def _file(self, request: Request) -> Response:
        await self._record(request)
        task_id, name = request.path_params["task_id"], request.path_params["name"]
        with self._lock:
            task = self.tasks.get(task_id)
            if task is None or name not in ("video.mp4", "last_frame.png"):
                return Response(status_code=404)
            status, at = task.state(self.clock.now())
            if status != "succeeded":
                return Response(status_code=404)
            expected = self._presign(task, name, at).split("?", 1)[1]
            # §1.6 video_url "Deleted after 24 h"; silent: the record's deletion does not remove
            # the file before then; an expired or wrong signature → 403.
            if request.url.query != expected or self.clock.now() - at >= DAY:
                return Response(status_code=403)
            spec = task.spec
            ratio = "16:9" if spec.ratio == "adaptive" else spec.ratio
            width, height = pixel_size(spec.model, spec.resolution, ratio)
            frames = frame_count(spec.duration, spec.frames)
        if name == "video.mp4":
            data = build_mp4(width, height, round(frames * 1000 / FPS))
            return Response(data, media_type="video/mp4")
        return Response(build_png(width, height), media_type="image/png")

    # -- control plane (§4.3 / §4.4) -------------------------------------------------------

    async def _action(self, request: Request) -> Response:
        raw = await self._record(request)
        query = dict(parse_qsl(request.url.query))
        action, request_id = query.get("Action", ""), _stamp(time.time()) + _suffix(12)
        meta: dict[str, Any] = {
            "RequestId": request_id,
            "Action": action,
            "Version": query.get("Version", ""),
            "Service": "ark",
            "Region": self.region,
        }
        try:
            self._verify_signature(request, raw)
            handler = _ACTIONS.get(action)
            if handler is None or query.get("Version") != "2024-01-01":
                raise CtrlError(404, "InvalidActionOrVersion", f"{action} is not supported.")
            if not self.asset_api_allowed:
                raise CtrlError(403, "AccessDenied", "ark:*Asset* is not allowed.")
            with self._lock:
                failures = self._action_failures.get(action)
                if failures:
                    f = failures.pop(0)
                    raise CtrlError(f.status, f.code, f.message)
                body = json.loads(raw) if raw else {}
                result = handler(self, body if isinstance(body, dict) else {})
        except CtrlError as err:
            meta["Error"] = {"Code": err.code, "Message": err.message}
            return JSONResponse({"ResponseMetadata": meta}, status_code=err.status)
        except ValueError:
            meta["Error"] = {"Code": "InvalidParameter", "Message": "bad JSON"}
            return JSONResponse({"ResponseMetadata": meta}, status_code=400)
        return JSONResponse({"ResponseMetadata": meta, "Result": result})

    def _verify_signature(self, request: Request, body: bytes) -> None:
        """§4.4: "Volcengine V4 HMAC-SHA256 signature with AK/SK only. The API key is not
        accepted." Recomputes the signature over the signed headers. silent: HTTP status for
        a bad signature → 401 SignatureDoesNotMatch (§5.3 names the code)."""
        header = request.headers.get("authorization", "")
        parts = dict(
            p.strip().split("=", 1)
            for p in header.removeprefix("HMAC-SHA256 ").split(",")
            if "=" in p
        )
        credential = parts.get("Credential", "").split("/")
        if not header.startswith("HMAC-SHA256 ") or len(credential) != 5:
            raise CtrlError(401, "SignatureDoesNotMatch", "A V4 AK/SK signature is required.")
        ak, date, region, service, _ = credential
        signed = parts.get("SignedHeaders", "").split(";")
        body_hash = hashlib.sha256(body).hexdigest()
        lines = "".join(f"{h}:{request.headers.get(h, '')}\n" for h in signed)
        canonical = "\n".join(
            [
                request.method,
                request.url.path or "/",
                _canonical_query(request.url.query),
                lines,
                ";".join(signed),
                body_hash,
            ]
        )
        scope = f"{date}/{region}/{service}/request"
        to_sign = "\n".join(
            [
                "HMAC-SHA256",
                request.headers.get("x-date", ""),
                scope,
                hashlib.sha256(canonical.encode()).hexdigest(),
            ]
        )
        key = self.secret_key.encode()
        for part in (date, region, service, "request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        valid = (
            ak == self.access_key
            and service == "ark"
            and region == self.region
            and request.headers.get("x-content-sha256", body_hash) == body_hash
            and hmac.compare_digest(expected, parts.get("Signature", ""))
        )
        if not valid:
            raise CtrlError(401, "SignatureDoesNotMatch", "The request signature does not match.")

    async def _h5(self, request: Request) -> Response:
        """Stands in for the person opening ``H5Link``, logging in and passing liveness.
        §4.3: Ark then redirects to ``CallbackURL?bytedToken=…&resultCode=…``."""
        await self._record(request)
        token = request.query_params.get("token", "")
        with self._lock:
            session = self.sessions.get(token)
            now = self.clock.now()
            # §4.3 "The H5 link is short-lived (about 120 s before it must be opened)".
            if session is None or now - session.created_at > 120:
                return Response("link expired", status_code=410)
            session.result_code = self.liveness_result_code
            if session.result_code == 10000:
                group = self._new_group("liveness", "", "LivenessFace", session.project)
                session.group_id = group.id
        query = urlencode({"bytedToken": token, "resultCode": session.result_code})
        return RedirectResponse(f"{session.callback_url}?{query}", status_code=302)

    def _new_group(self, name: str, desc: str, group_type: str, project: str) -> AssetGroup:
        now = self.clock.now()
        group = AssetGroup(f"group-{_stamp(now)}-{_suffix()}", name, desc, group_type, project, now)
        self.groups[group.id] = group
        return group

    def _group(self, group_id: Any) -> AssetGroup:
        group = self.groups.get(str(group_id))
        if group is None:
            raise CtrlError(404, "NotFound.group_id", f"group {group_id} not found")
        return group

    def _asset_json(self, asset: Asset) -> dict[str, Any]:
        now = self.clock.now()
        status = asset.status(now)
        out: dict[str, Any] = {
            "Id": asset.id,
            "Name": asset.name,
            # silent: the "temporary URL (valid about 12 h)" → the stored URL is echoed.
            "URL": asset.url,
            "AssetType": asset.asset_type,
            "GroupId": asset.group_id,
            "Status": status,
            "Moderation": {},  # silent: shape undocumented
            "ProjectName": asset.project,
            "CreateTime": _iso(asset.created_at),  # silent: time format undocumented → RFC 3339
            "UpdateTime": _iso(
                asset.created_at if status == "Processing" else asset.ready_at or now
            ),
        }
        if status == "Failed" and asset.error:
            out["Error"] = {"Code": asset.error[0], "Message": asset.error[1]}
        return out


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _canonical_query(query: str) -> str:
    pairs = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in parse_qsl(query))
    return "&".join(f"{k}={v}" for k, v in pairs)


def _require(body: dict[str, Any], name: str) -> Any:
    value = body.get(name)
    if value in (None, ""):
        raise CtrlError(400, f"MissingParameter.{name}", f"{name} is required")
    return value


def _project(standin: ArkStandin, body: dict[str, Any]) -> str:
    # §4.2/§6: asset, API key and endpoint share one ProjectName. §5.3 NotFound.ProjectName.
    # silent: default "default"; known projects = those of the configured API keys.
    name = str(body.get("ProjectName") or "default")
    if name not in {k.project for k in standin.api_keys.values()}:
        raise CtrlError(404, "NotFound.ProjectName", f"project {name} not found")
    return name


def _create_group(s: ArkStandin, body: dict[str, Any]) -> dict[str, Any]:
    name = str(_require(body, "Name"))
    desc = str(body.get("Description") or "")
    # §4.4: GroupType AIGC only; §4.3 "A LivenessFace group cannot be created with
    # CreateAssetGroup".
    if body.get("GroupType", "AIGC") != "AIGC":
        raise CtrlError(400, "InvalidParameter.GroupType", "GroupType must be AIGC")
    if len(name) > 64 or len(desc) > 300:
        raise CtrlError(400, "InvalidParameter.Name", "Name ≤ 64, Description ≤ 300")
    if s.max_asset_groups is not None and len(s.groups) >= s.max_asset_groups:
        raise CtrlError(403, "QuotaExceeded", "too many groups")
    return {"Id": s._new_group(name, desc, "AIGC", _project(s, body)).id}


def _create_asset(s: ArkStandin, body: dict[str, Any]) -> dict[str, Any]:
    group = s._group(_require(body, "GroupId"))
    url = str(_require(body, "URL"))
    asset_type = str(_require(body, "AssetType"))
    project = _project(s, body)
    # §4.4 CreateAsset: "URL (public URL only; no base64 or file upload)".
    if not url.startswith(("http://", "https://")):
        raise CtrlError(400, "InvalidParameter.URL", "URL must be a public URL")
    if asset_type not in ("Image", "Video", "Audio"):
        raise CtrlError(400, "InvalidParameter.AssetType", "AssetType: Image|Video|Audio")
    if project != group.project:
        raise CtrlError(404, "NotFound.group_id", "group not in this project")
    now = s.clock.now()
    delay = s.asset_video_processing_s if asset_type == "Video" else s.asset_processing_s
    asset = Asset(
        f"asset-{_stamp(now)}-{_suffix()}",
        group.id,
        url,
        asset_type,
        str(body.get("Name") or ""),
        project,
        now,
        None if s.hold_assets else now + delay,
        s.asset_failures.get(url),
    )
    s.assets[asset.id] = asset
    return {"Id": asset.id}


def _get_asset(s: ArkStandin, body: dict[str, Any]) -> dict[str, Any]:
    asset = s.assets.get(str(_require(body, "Id")))
    if asset is None:
        raise CtrlError(404, "NotFound.Id", "asset not found")  # silent: code spelled NotFound.Id
    return s._asset_json(asset)


def _paging(body: dict[str, Any]) -> tuple[int, int]:
    number, size = int(body.get("PageNumber") or 1), int(body.get("PageSize") or 10)
    if number < 1 or not 1 <= size <= 100:  # §4.4 PageSize ≤ 100
        raise CtrlError(400, "InvalidParameter.PageSize", "PageSize must be in [1, 100]")
    return number, size


def _list_assets(s: ArkStandin, body: dict[str, Any]) -> dict[str, Any]:
    number, size = _paging(body)
    # §4.4: Filter.GroupIds (plural), Statuses, GroupType, Name; unknown keys (e.g. the
    # singular GroupId) are silently ignored.
    flt = body.get("Filter") or {}
    ids, statuses = flt.get("GroupIds"), flt.get("Statuses")
    items = [
        a
        for a in s.assets.values()
        if (not ids or a.group_id in ids)
        and (not statuses or a.status(s.clock.now()) in statuses)
        and (not flt.get("GroupType") or s.groups[a.group_id].group_type == flt["GroupType"])
        and (not flt.get("Name") or flt["Name"] in a.name)
    ]
    page = items[(number - 1) * size : number * size]
    return {"Items": [s._asset_json(a) for a in page], "TotalCount": len(items)}


def _group_json(group: AssetGroup) -> dict[str, Any]:
    return {
        "Id": group.id,
        "Name": group.name,
        "Description": group.description,
        "GroupType": group.group_type,
        "ProjectName": group.project,
        "CreateTime": _iso(group.created_at),
    }


def _list_groups(s: ArkStandin, body: dict[str, Any]) -> dict[str, Any]:
    number, size = _paging(body)
    flt = body.get("Filter") or {}
    items = [
        g
        for g in s.groups.values()
        if (not flt.get("GroupIds") or g.id in flt["GroupIds"])
        and (not flt.get("GroupType") or g.group_type == flt["GroupType"])
        and (not flt.get("Name") or flt["Name"] in g.name)
    ]
    page = items[(number - 1) * size : number * size]
    return {"Items": [_group_json(g) for g in page], "TotalCount": len(items)}


def _get_group(s: ArkStandin, body: dict[str, Any]) -> dict[str, Any]:
    return _group_json(s._group(_require(body, "Id")))


def _update_group(s: ArkStandin, body: dict[str, Any]) -> dict[str, Any]:
    group = s._group(_require(body, "Id"))
    group.name = str(body.get("Name") or group.name)
    group.description = str(body.get("Description") or group.description)
    return {}


def _update_asset(s: ArkStandin, body: dict[str, Any]) -> dict[str, Any]:
    asset = s.assets.get(str(_require(body, "Id")))
    if asset is None:
        raise CtrlError(404, "NotFound.Id", "asset not found")
    asset.name = str(body.get("Name") or asset.name)
    return {}


def _delete_asset(s: ArkStandin, body: dict[str, Any]) -> dict[str, Any]:
    if s.assets.pop(str(_require(body, "Id")), None) is None:
        raise CtrlError(404, "NotFound.Id", "asset not found")
    return {}


def _delete_group(s: ArkStandin, body: dict[str, Any]) -> dict[str, Any]:
    group = s._group(_require(body, "Id"))
    # §4.3: a LivenessFace group "can only be deleted after its authorisation has expired or
    # been rejected". silent: the error → 400 InvalidParameter.
    if group.group_type == "LivenessFace" and group.authorisation_active:
        raise CtrlError(400, "InvalidParameter", "the authorisation is still active")
    del s.groups[group.id]
    for asset_id in [a.id for a in s.assets.values() if a.group_id == group.id]:
        del s.assets[asset_id]  # §4.4 "deleting a group deletes its assets"
    return {}


def _create_session(s: ArkStandin, body: dict[str, Any]) -> dict[str, Any]:
    callback = str(_require(body, "CallbackURL"))
    if not callback.startswith("https://"):  # §4.3 "CallbackURL": "<https URL>"
        raise CtrlError(400, "InvalidParameter.CallbackURL", "CallbackURL must be https")
    token = _suffix(32)
    s.sessions[token] = LivenessSession(token, callback, _project(s, body), s.clock.now())
    link = f"http://127.0.0.1:{s.port}/h5/liveness?{urlencode({'token': token, 'lng': 'zh'})}"
    return {"BytedToken": token, "H5Link": link, "CallbackURL": callback}


def _get_result(s: ArkStandin, body: dict[str, Any]) -> dict[str, Any]:
    token = str(_require(body, "BytedToken"))
    session = s.sessions.get(token)
    now = s.clock.now()
    # §4.3: BytedToken valid ~30 min and usable once; "If the check is not finished or has
    # expired, it returns an error and can be polled again". silent: the code →
    # 400 InvalidParameter.BytedToken with the reason in the message.
    if session is None or session.consumed or now - session.created_at > 1800:
        raise CtrlError(400, "InvalidParameter.BytedToken", "token unknown, used or expired")
    if session.group_id is None:
        state = "not finished" if session.result_code is None else "failed"
        raise CtrlError(400, "InvalidParameter.BytedToken", f"verification {state}")
    session.consumed = True
    return {"GroupId": session.group_id, "GroupType": "LivenessFace"}


_ACTIONS: dict[str, Callable[[ArkStandin, dict[str, Any]], dict[str, Any]]] = {
    "CreateAssetGroup": _create_group,
    "CreateAsset": _create_asset,
    "ListAssetGroups": _list_groups,
    "ListAssets": _list_assets,
    "GetAsset": _get_asset,
    "GetAssetGroup": _get_group,
    "UpdateAssetGroup": _update_group,
    "UpdateAsset": _update_asset,
    "DeleteAsset": _delete_asset,
    "DeleteAssetGroup": _delete_group,
    "CreateVisualValidateSession": _create_session,
    "GetVisualValidateResult": _get_result,
}


class _TransportCapture:
    """Outermost ASGI app: keeps uvicorn's ``send`` in the scope so a handler can abort the
    TCP connection (the h11 cycle's bound ``send`` carries the transport)."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope["standin.raw_send"] = send
        await self.app(scope, receive, send)


async def _abort(request: Request) -> None:
    """Drops the connection without a response (the client sees a protocol error)."""
    cycle = getattr(request.scope["standin.raw_send"], "__self__", None)
    transport = getattr(cycle, "transport", None)
    assert transport is not None, "uvicorn h11 cycle expected"
    transport.abort()
    for _ in range(3):  # let connection_lost mark the cycle disconnected
        await asyncio.sleep(0)
    with contextlib.suppress(Exception):
        cycle.disconnected = True  # type: ignore[union-attr]
