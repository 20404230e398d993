"""Long-running commands: ``wfrun serve`` (API + embedded worker) and ``wfrun worker``."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import signal
from pathlib import Path
from types import FrameType
from typing import NoReturn

import click
import uvicorn

from wfrun import __version__
from wfrun.api.app import create_app
from wfrun.api.deps import API_PREFIX
from wfrun.cli import startup
from wfrun.cli.lazy import JSON_KEY, fail
from wfrun.config import Settings
from wfrun.db.database import Database
from wfrun.errors import ConfigError, DatabaseUnavailable, ServiceError
from wfrun.metrics.exposition import serving_process
from wfrun.runtime import Runtime, build_runtime
from wfrun.services.seed import KEY_FILE, Demo, ensure_demo
from wfrun.workers.loops import Backoff, pause
from wfrun.workers.stopping import StopSignals
from wfrun.workers.worker import Worker, run_embedded

log = logging.getLogger(__name__)


@click.command()
@click.option("--host", default=None, help="Bind address (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default 8000; 0 picks a free one).")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Data directory; created and seeded on first start.",
)
@click.option("--no-worker", is_flag=True, help="Serve the API only (run workers separately).")
@click.option(
    "--demo/--no-demo",
    default=None,
    help=(
        "Seed a demo customer (100 CNY), key and workflow into an empty database "
        "(default: on SQLite only, never on PostgreSQL; WFRUN_SEED_DEMO)."
    ),
)
@click.pass_context
def serve(
    ctx: click.Context,
    host: str | None,
    port: int | None,
    data_dir: Path | None,
    no_worker: bool,
    demo: bool | None,
) -> None:
    """Run the HTTP API (and a worker) on the configured store."""
    base: Settings = ctx.obj
    updates = {k: v for k, v in {"host": host, "port": port, "data_dir": data_dir}.items() if v}
    if port == 0:
        updates["port"] = 0
    if demo is not None:
        updates["seed_demo"] = demo
    settings = base.model_copy(update=updates)
    as_json = bool(ctx.meta.get(JSON_KEY))
    asyncio.run(_serve(settings, embedded_worker=not no_worker, as_json=as_json))


async def _serve(settings: Settings, *, embedded_worker: bool, as_json: bool = False) -> None:
    """Check, bind, probe, then create: a mistake found before the last step leaves nothing
    behind (no data directory, SQLite file, secret key or demo)."""
    startup.check_paths(settings)
    startup.check_metrics_port(settings.metrics.host, settings.metrics.port)
    with startup.listen(settings) as sock:  # bound first: a port in use creates nothing
        await startup.check_database(settings)
        runtime = await _open(settings)
        try:
            demo = await _seed(runtime)
            signals = StopSignals()
            worker = functools.partial(run_embedded, signals=signals) if embedded_worker else None
            app = create_app(settings, runtime=runtime, background=worker)
            config = uvicorn.Config(app, log_config=None, log_level="info", access_log=False)
            _banner(runtime, sock.getsockname()[1], demo, as_json=as_json)
            await _Server(config, signals).serve(sockets=[sock])
        finally:
            await runtime.close()


async def _open(settings: Settings) -> Runtime:
    """The runtime; the database going away since the probe is a start-up failure too."""
    try:
        return await build_runtime(settings)
    except DatabaseUnavailable as exc:
        raise ConfigError(f"cannot open the database: {exc.detail}") from None


class _Server(uvicorn.Server):
    """uvicorn whose SIGTERM/SIGINT also reaches the embedded worker at once (it stops
    claiming while the API still closes its connections): the first signal drains, the second
    hands the runs in flight back and stops waiting for open connections. The process then
    ends normally (exit 0, runtime closed) instead of re-raising the signal."""

    def __init__(self, config: uvicorn.Config, signals: StopSignals) -> None:
        super().__init__(config)
        self.signals = signals
        self.loop = asyncio.get_running_loop()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit:
            self.force_exit = True
        self.should_exit = True
        self.loop.call_soon_threadsafe(self.signals.request)


async def _seed(runtime: Runtime) -> Demo | None:
    """The demo, seeded into an empty database when wanted: ``seed_demo`` (``--demo`` /
    ``--no-demo``) when set, else on SQLite only (a production PostgreSQL gets none)."""
    wanted = runtime.settings.seed_demo
    if wanted is None:
        wanted = runtime.db.is_sqlite
    if not wanted:
        return None
    return await ensure_demo(
        runtime.db, runtime.settings.data_dir, with_seedance=runtime.seedance is not None
    )


def _banner(runtime: Runtime, port: int, demo: Demo | None, *, as_json: bool) -> None:
    """Where it serves; the demo key when it was just created (under ``--json``: one object)."""
    url = f"http://{runtime.settings.host}:{port}{API_PREFIX}"
    store = "sqlite" if runtime.db.is_sqlite else "postgresql"
    key_file = runtime.settings.data_dir / KEY_FILE
    new_key = demo.api_key if demo is not None and demo.api_key else None
    if as_json:
        kept = str(key_file) if demo is not None and key_file.exists() else None
        banner: dict[str, str | None] = {"version": __version__, "url": url, "database": store}
        banner |= {"docs": f"{url}/docs", "data_dir": str(runtime.settings.data_dir)}
        banner |= {"demo_api_key": new_key}
        click.echo(json.dumps(banner | {"demo_api_key_file": kept}))
        return
    click.echo(f"wfrun {__version__} serving {url} ({store}, data in {runtime.settings.data_dir})")
    click.echo(f"API docs: {url}/docs")
    if new_key:  # just created: printed this once
        click.echo(f"demo API key (also kept in {key_file}):")
        click.echo(new_key)
    elif demo is not None and key_file.exists():
        click.echo(f"demo API key: kept in {key_file}")


@click.command()
@click.option("--once", is_flag=True, help="Run queued jobs until the queue is empty, then exit.")
@click.option(
    "--concurrency",
    type=click.IntRange(1, 256),
    default=None,
    help="Runs at once (default from settings).",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve this worker's /metrics on this port (on metrics.host; 0 picks one; not with --once).",
)
@click.pass_context
def worker(
    ctx: click.Context, once: bool, concurrency: int | None, metrics_port: int | None
) -> None:
    """Run a worker: claim queued runs from the database and execute them."""
    settings: Settings = ctx.obj
    if concurrency:
        settings = settings.model_copy(
            update={"worker": settings.worker.model_copy(update={"concurrency": concurrency})}
        )
    asyncio.run(_work(settings, once=once, metrics_port=metrics_port))


async def _work(settings: Settings, *, once: bool, metrics_port: int | None = None) -> None:
    """A wrong configuration exits 2 before anything is created; a database that is down
    (not wrong) is waited for, or with ``--once`` an outage (exit 1)."""
    startup.check_paths(settings)
    if not once:
        startup.check_metrics_port(settings.metrics.host, metrics_port)
    await startup.check_database(settings, wait_if_down=True)
    if once:
        await _work_once(settings)
        return
    signals = StopSignals()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, signals.request)
    runtime = await _when_reachable(settings, signals.stop)
    if runtime is None:
        return
    try:
        await runtime.listen()  # other processes' run changes wake its webhook delivery
        loop_worker = Worker(runtime)
        click.echo(f"worker {loop_worker.id} on {_describe(runtime.db)}", err=True)
        host = settings.metrics.host
        async with serving_process(runtime.metrics, host, metrics_port) as bound:
            if bound is not None:
                click.echo(f"worker metrics at http://{host}:{bound}/metrics", err=True)
            await loop_worker.run(signals.stop, signals.hurry)
    finally:
        await runtime.close()


async def _work_once(settings: Settings) -> None:
    """``--once``: a database outage is an error (exit 1, one line), not an empty queue."""
    try:
        runtime = await build_runtime(settings)
    except DatabaseUnavailable as exc:
        _fail(exc)
    try:
        loop_worker = Worker(runtime)
        click.echo(f"worker {loop_worker.id} on {_describe(runtime.db)}", err=True)
        await loop_worker.run_until_idle()
    except DatabaseUnavailable as exc:
        _fail(exc)
    finally:
        await runtime.close()


async def _when_reachable(settings: Settings, stop: asyncio.Event) -> Runtime | None:
    """The runtime, once the database answers: a long-running process may start before its
    database (one log line per try, backing off to 2 s); None if stopped meanwhile."""
    backoff = Backoff(0.5)
    while not stop.is_set():
        try:
            return await build_runtime(settings)
        except DatabaseUnavailable as exc:
            log.warning("waiting for the database: %s", exc.detail)
            await pause(stop, backoff.next())
    return None


def _fail(exc: ServiceError) -> NoReturn:
    fail(exc.engine_code, exc.detail)


def _describe(db: Database) -> str:
    return "sqlite" if db.is_sqlite else "postgresql"
