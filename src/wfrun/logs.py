"""The process's log: every line in one format, whoever writes it.

wfrun's modules log through the standard library (``logging.getLogger(__name__)``, structured
fields as ``extra={...}``), and so do uvicorn and alembic; :func:`configure` sends all of it
through structlog's renderer (``structlog.stdlib.ProcessorFormatter``) on one handler:

* ``json``: one JSON object per line (``timestamp``, ``level``, ``logger``, ``event``, the
  fields, and ``exception`` with the traceback of a line that carries one);
* ``console``: readable ``key=value`` lines, the traceback below its line;
* ``auto`` (the default): console when the stream is a terminal, else json.

Fields bound with :func:`structlog.contextvars.bind_contextvars` (the API binds each request's
``request_id`` and, once authenticated, its ``account_id``) appear on every line logged in that
context. An exception is logged with its traceback once: a later line carrying the same
exception object (e.g. uvicorn's "Exception in ASGI application" after wfrun logged the error
with its request) is dropped.

Nothing happens at import; entrypoints call :func:`configure` once (``wfrun.cli.main``), and
structlog itself is imported with the first line written (a command that logs nothing stays
quick).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import TYPE_CHECKING, Literal, TextIO

from wfrun.config import LogSettings

if TYPE_CHECKING:
    from structlog.typing import EventDict, Processor

Format = Literal["json", "console"]

QUIET = {"httpx": logging.WARNING, "httpcore": logging.WARNING}
"""Loggers that write a line per outgoing HTTP request at INFO (probes, webhooks, Ark): kept to
warnings unless the level is DEBUG."""

_LOGGED = "_wfrun_logged"


def resolve_format(setting: str, stream: TextIO) -> Format:
    """The format ``setting`` (auto, json or console) means on ``stream``."""
    if setting == "auto":
        return "console" if _is_terminal(stream) else "json"
    return "console" if setting == "console" else "json"


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


def _shared() -> list[Processor]:
    """What every line gets, stdlib's or structlog's: the request context, level, logger
    name, ``extra`` fields and an ISO-8601 UTC timestamp."""
    import structlog

    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


FIRST = ("timestamp", "level", "logger", "event")
"""The keys every line starts with (then the request context, then the line's own)."""


def _tidy(_logger: object, _method: str, event: EventDict) -> EventDict:
    """The fixed keys first; uvicorn's ``color_message`` (its message with ANSI colours) out."""
    event.pop("color_message", None)
    ordered: EventDict = {key: event.pop(key) for key in FIRST if key in event}
    ordered.update(event)
    return ordered


def _renderer(fmt: Format, stream: TextIO) -> list[Processor]:
    import structlog

    if fmt == "json":
        return [
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(default=str, ensure_ascii=False),
        ]
    return [
        structlog.dev.ConsoleRenderer(
            colors=_is_terminal(stream),
            exception_formatter=structlog.dev.plain_traceback,
            sort_keys=False,
        )
    ]


class _OncePerException(logging.Filter):
    """Drops a line whose exception was already logged (its first line told everything)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None:
            return True
        if getattr(exc, _LOGGED, False):
            return False
        with contextlib.suppress(AttributeError):  # a type that takes no attributes
            setattr(exc, _LOGGED, True)
        return True


class _Handler(logging.StreamHandler[TextIO]):
    """The handler :func:`configure` installs (and replaces when called again)."""


class _Formatter(logging.Formatter):
    """structlog's ``ProcessorFormatter``, built at the first line: importing structlog (and
    the ``rich`` it loads where installed) costs a command that logs nothing ~0.1–0.3 s."""

    def __init__(self, fmt: Format, stream: TextIO) -> None:
        super().__init__()
        self._fmt_name, self._stream = fmt, stream
        self._built: logging.Formatter | None = None

    def format(self, record: logging.LogRecord) -> str:
        if self._built is None:
            self._built = _processor_formatter(self._fmt_name, self._stream)
        return self._built.format(record)


def _processor_formatter(fmt: Format, stream: TextIO) -> logging.Formatter:
    import structlog

    shared = _shared()
    structlog.configure(  # structlog's own loggers, if any, end on the same handler
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _tidy,
            *_renderer(fmt, stream),
        ],
    )


def configure(settings: LogSettings, stream: TextIO | None = None) -> None:
    """Route every log line of the process to ``stream`` (default: stderr) in the format
    ``settings`` pick. Calling it again replaces the previous configuration."""
    out = stream if stream is not None else sys.stderr
    handler = _Handler(out)
    handler.setFormatter(_Formatter(resolve_format(settings.format, out), out))
    handler.addFilter(_OncePerException())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    level = logging.getLevelNamesMapping()[settings.level.upper()]
    handler.setLevel(level)  # also below loggers that set their own level (uvicorn's)
    root.addHandler(handler)
    root.setLevel(level)
    for name, quiet in QUIET.items():
        logging.getLogger(name).setLevel(max(level, quiet) if level > logging.DEBUG else level)
