"""The SDK's sans-IO core: base URLs, envelopes, retry decisions, the event-stream parser,
the follower's once-only reporting, output file names."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from wfrun_client import _core, _ops, errors
from wfrun_client import models as m
from wfrun_client._follow import Follower, SSEParser


@pytest.mark.parametrize(
    "given",
    ["http://h:1", "http://h:1/", "http://h:1/api/open/v2", "http://h:1/api/open/v2/"],
)
def test_root_or_prefix_is_accepted(given: str):
    assert _core.api_root(given) == "http://h:1/api/open/v2"


def test_base_url_and_key_come_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("WFRUN_BASE_URL", "https://api.example.com")
    monkeypatch.setenv("WFRUN_API_KEY", "wfk_env")
    assert _core.api_root(None) == "https://api.example.com/api/open/v2"
    assert _core.api_key(None) == "wfk_env"
    assert _core.api_key("wfk_arg") == "wfk_arg"


def test_retry_after_is_seconds_or_an_http_date():
    assert _core.retry_after("7") == 7.0
    assert _core.retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert _core.retry_after("soon") is None
    assert _core.retry_after(None) is None


def _busy(status: int, after: float | None = None) -> errors.APIError:
    body = {"code": 1, "data": {"error": {"engine_code": "X", "status_code": status}}}
    return errors.from_envelope(status, body, retry_after=after)


def test_what_is_retried_and_after_how_long():
    policy = _core.RetryPolicy(max_retries=3, backoff=0.5, max_backoff=1.5, max_retry_after=10)
    submit = _ops.submit({"workflow_id": "wf"}, "key")
    upload = _ops.upload("x.png", None, None)
    dropped = httpx.RemoteProtocolError("Server disconnected without sending a response.")
    refused = httpx.ConnectError("refused")
    assert [policy.delay(submit, n, dropped) for n in (1, 2, 3, 4)] == [0.5, 1.0, 1.5, None]
    assert policy.delay(upload, 1, dropped) is None  # the upload may have been stored
    assert policy.delay(upload, 1, refused) == 0.5  # never sent
    assert policy.delay(submit, 1, _busy(503, 3.0)) == 3.0
    assert policy.delay(submit, 1, _busy(429, 99.0)) == 10  # capped
    assert policy.delay(upload, 1, _busy(503)) == 0.5
    assert policy.delay(submit, 1, _busy(400)) is None
    assert policy.delay(submit, 1, _busy(500)) is None


def test_envelopes_become_data_or_the_exception_of_their_category():
    assert _core.unwrap(httpx.Response(200, json={"code": 0, "msg": "ok", "data": {"a": 1}})) == {
        "a": 1
    }
    failure = {"code": 1, "msg": "m", "data": {"error": {"reason": "r", "detail": "d",
               "engine_code": "RUN_NOT_FOUND", "status_code": 404}}}  # fmt: skip
    with pytest.raises(errors.NotFound) as caught:
        _core.unwrap(httpx.Response(404, json=failure, headers={"X-Request-Id": "req-1"}))
    assert (caught.value.detail, caught.value.reason, caught.value.request_id) == (
        "d",
        "r",
        "req-1",
    )
    with pytest.raises(errors.NotFound):  # chenyu style: a failure inside a 200
        _core.unwrap(httpx.Response(200, json=failure))
    with pytest.raises(errors.ServerError, match="HTTP_502"):
        _core.unwrap(httpx.Response(200, text="<html>proxy error</html>"))
    with pytest.raises(errors.ServiceUnavailable) as busy:
        _core.unwrap(httpx.Response(503, text="down", headers={"Retry-After": "5"}))
    assert (busy.value.engine_code, busy.value.retry_after) == ("HTTP_503", 5.0)


STREAM = """: keepalive

event: status
id: 4
data: {"run_order_id": "wfrun_1", "run_status": "queued", "change": "run.queued"}

event: status
id: 8
data: {"run_order_id": "wfrun_1", "run_status": "running"}

event: progress
id: 12
data: {"run_order_id": "wfrun_1", "at": "t1", "event_type": "node_done",
data:  "message": "node 4", "node_id": "4", "progress_percent": 50}

event: done
id: 18
data: {"run_order_id": "wfrun_1", "workflow_id": "wf_1", "run_status": "succeeded"}

"""


def _parse(text: str) -> list[m.RunEvent]:
    parser = SSEParser()
    return [e for line in text.split("\n") if (e := parser.feed(line)) is not None]


def test_the_stream_parser_reads_events_ids_and_multiline_data():
    events = _parse(STREAM)
    assert [(e.event, e.id) for e in events] == [("status", 4), ("status", 8), ("progress", 12),
                                                 ("done", 18)]  # fmt: skip
    assert events[2].data["progress_percent"] == 50


def test_the_follower_reports_each_thing_once_whatever_the_source():
    seen: list[m.RunEvent] = []
    follower = Follower("wfrun_1", seen.append)
    queued = m.Execution(status="queued", queue_info=m.QueueInfo(position=2, estimated_wait_sec=9))
    follower.queued(queued)
    events = _parse(STREAM)
    assert not any(follower.stream(e) for e in events[:3])
    assert not any(follower.stream(e) for e in events[:3])  # a replay after a resume
    assert follower.last_id == 12
    assert follower.stream(events[3])
    assert follower.final is not None
    assert follower.final.run_status == "succeeded"
    assert [e.event for e in seen] == ["status", "queue", "status", "progress", "done"]


def test_polled_snapshots_report_new_log_lines_only():
    seen: list[m.RunEvent] = []
    follower = Follower("wfrun_1", seen.append)
    log = m.LogEntry(at="t1", event_type="node_done", message="node 4", progress_percent=50)
    running = m.Execution(status="running", logs=[log])
    assert not follower.execution(running)
    assert not follower.execution(running)
    info = m.RunInfo(run_order_id="wfrun_1", workflow_id="wf", run_status="succeeded",
                     outputs={"n7_text": "hi"})  # fmt: skip
    assert follower.execution(m.Execution(status="succeeded", logs=[log]))
    follower.finish(info)
    assert [e.event for e in seen] == ["progress", "status", "status", "output", "done"]


def test_outputs_become_files_named_by_key(tmp_path: Path):
    outputs = {
        "n5_images": ["http://h/files/a/poster_00001_.png?sig=1", "http://h/files/b/x.webp"],
        "n7_text": "caption",
        "n8_video": "https://cdn/v.mp4",
        "n9_gone": None,
    }
    planned = {(d.path.name, d.url, d.text) for d in _core.plan_downloads(outputs, tmp_path)}
    assert planned == {
        ("n5_images_0.png", "http://h/files/a/poster_00001_.png?sig=1", None),
        ("n5_images_1.webp", "http://h/files/b/x.webp", None),
        ("n7_text.txt", None, "caption"),
        ("n8_video.mp4", "https://cdn/v.mp4", None),
    }


def test_amounts_keep_their_fixed_point_spelling_in_json():
    balance = m.Balance.model_validate({"balance": 0, "available_amount": "0.00000000",
                                        "frozen_amount": "1.50000000"})  # fmt: skip
    dumped = balance.model_dump(mode="json")
    assert (dumped["available_amount"], dumped["frozen_amount"]) == ("0.00000000", "1.50000000")


def test_run_pages_follow_the_cursor_or_else_the_page_numbers():
    def page(**fields: object) -> m.Page[m.RunSummary]:
        return m.Page[m.RunSummary].model_validate({"items": [], "total": 5, **fields})

    run = {"run_order_id": "wfrun_1", "workflow_id": "wf_1", "run_status": "queued"}
    wfrun = page(items=[run], page=None, next_cursor="abc")
    assert _ops.next_run_place(wfrun, (None, "xyz"), 2) == (None, "abc")
    assert _ops.next_run_place(page(next_cursor=None), (None, "abc"), 2) is None
    chenyu = page(items=[run, run], page=2)  # no next_cursor at all
    assert _ops.next_run_place(chenyu, (2, None), 2) == (3, None)
    assert _ops.next_run_place(chenyu, (3, None), 2) is None  # 3 × 2 ≥ total
    assert _ops.run_page(None, 2, "wf_1", None, "abc").params == {
        "cursor": "abc",
        "page_size": 2,
        "workflow_id": "wf_1",
    }
    assert _ops.run_page(4, 2, None, "queued").params == {
        "page": 4,
        "page_size": 2,
        "run_status": "queued",
    }
