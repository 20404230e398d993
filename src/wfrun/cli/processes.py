"""Long-running commands: ``wfrun serve`` (API + embedded worker) and ``wfrun worker``."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import click
import uvicorn

from wfrun import __version__
from wfrun.api.app import create_app
from wfrun.api.deps import API_PREFIX
from wfrun.cli.sockets import listen_tcp
from wfrun.config import Settings
from wfrun.db.database import Database
from wfrun.runtime import Runtime, build_runtime
from wfrun.services.seed import KEY_FILE, ensure_demo
from wfrun.workers.worker import Worker, run_embedded


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
@click.pass_context
def serve(
    ctx: click.Context, host: str | None, port: int | None, data_dir: Path | None, no_worker: bool
) -> None:
    """Run the HTTP API (and a worker) on the configured store."""
    base: Settings = ctx.obj
    updates = {k: v for k, v in {"host": host, "port": port, "data_dir": data_dir}.items() if v}
    if port == 0:
        updates["port"] = 0
    settings = base.model_copy(update=updates)
    asyncio.run(_serve(settings, embedded_worker=not no_worker))


async def _serve(settings: Settings, *, embedded_worker: bool) -> None:
    runtime = await build_runtime(settings)
    try:
        demo_key = await _seed(runtime)
        app = create_app(
            settings, runtime=runtime, background=run_embedded if embedded_worker else None
        )
        config = uvicorn.Config(app, log_level="info", access_log=False)
        with listen_tcp(settings.host, settings.port) as sock:  # bound first: for the banner
            _banner(runtime, sock.getsockname()[1], demo_key)
            await uvicorn.Server(config).serve(sockets=[sock])
    finally:
        await runtime.close()


async def _seed(runtime: Runtime) -> str | None:
    if not runtime.settings.seed_demo:
        return None
    demo = await ensure_demo(
        runtime.db, runtime.settings.data_dir, with_seedance=runtime.seedance is not None
    )
    return demo.api_key


def _banner(runtime: Runtime, port: int, demo_key: str | None) -> None:
    url = f"http://{runtime.settings.host}:{port}{API_PREFIX}"
    store = "sqlite" if runtime.db.is_sqlite else "postgresql"
    click.echo(f"wfrun {__version__} serving {url} ({store}, data in {runtime.settings.data_dir})")
    click.echo(f"API docs: {url}/docs")
    if demo_key:
        click.echo(f"demo API key (also in {runtime.settings.data_dir / KEY_FILE}):")
        click.echo(demo_key)


@click.command()
@click.option("--once", is_flag=True, help="Run queued jobs until the queue is empty, then exit.")
@click.option(
    "--concurrency",
    type=click.IntRange(1, 256),
    default=None,
    help="Runs at once (default from settings).",
)
@click.pass_context
def worker(ctx: click.Context, once: bool, concurrency: int | None) -> None:
    """Run a worker: claim queued runs from the database and execute them."""
    settings: Settings = ctx.obj
    if concurrency:
        settings = settings.model_copy(
            update={"worker": settings.worker.model_copy(update={"concurrency": concurrency})}
        )
    asyncio.run(_work(settings, once=once))


async def _work(settings: Settings, *, once: bool) -> None:
    runtime = await build_runtime(settings)
    loop_worker = Worker(runtime)
    click.echo(f"worker {loop_worker.id} on {_describe(runtime.db)}", err=True)
    try:
        if once:
            await loop_worker.run_until_idle()
            return
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await loop_worker.run(stop)
    finally:
        await runtime.close()


def _describe(db: Database) -> str:
    return "sqlite" if db.is_sqlite else "postgresql"
