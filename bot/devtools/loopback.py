"""What every wire fake shares: an aiohttp server's life on a loopback port, and running one
standalone until SIGINT/SIGTERM.

The Slack, PagerDuty and Opsgenie emulators differ in what they answer, not in how they start,
stop, hold a call until they stop, or print where they listen; that part lives here once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Self

from aiohttp import web
from aiohttp.typedefs import Middleware


class LoopbackServer:
    """An aiohttp server on ``host`` (port 0: any free one). Subclasses add their routes in
    :meth:`routes` (and middlewares in :meth:`middlewares`); ``async with`` starts and stops it.
    """

    #: How long stopping waits for requests still being answered.
    shutdown_timeout_s: float = 0.5

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host, self._port = host, port
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._stopping = asyncio.Event()  # ends every hold when the server stops

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def middlewares(self) -> list[Middleware]:
        return []

    async def closing(self) -> None:
        """Called as the server stops, before its connections are closed (e.g. websockets)."""

    # --- lifecycle ---
    async def start(self) -> Self:
        self._stopping.clear()
        app = web.Application(middlewares=self.middlewares())
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=self.shutdown_timeout_s)
        await self._runner.setup()
        await self._listen()
        return self

    async def _listen(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, self._host, self._port)
        await self._site.start()
        self._port = int(self._runner.addresses[0][1])

    async def _stop_listening(self) -> None:
        """Close the listener only: new connections are refused; :meth:`_listen` reopens it."""
        if self._site is not None:
            await self._site.stop()
            self._site = None

    async def stop(self) -> None:
        self._stopping.set()
        if self._runner is not None:
            await self.closing()
            await self._runner.cleanup()
            self._runner = self._site = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def hold(self, seconds: float) -> None:
        """Wait ``seconds``, or less if the server stops first (a held call must not keep
        the server from stopping)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    @property
    def port(self) -> int:
        return self._port

    @property
    def origin(self) -> str:
        """``http://host:port``, no trailing slash."""
        return f"http://{self._host}:{self._port}"


# --- standalone -----------------------------------------------------------------------------
def standalone_parser(description: str, *, prog: str | None = None) -> argparse.ArgumentParser:
    """An argument parser with the options every standalone emulator takes (--host, --port)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    return parser


def read_json_file(path: str | None) -> Any:
    """A standalone emulator's data file, parsed; ``{}`` when no file was named."""
    if not path:
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


async def serve_forever(server: LoopbackServer, lines: Callable[[], Sequence[str]]) -> None:
    """Run ``server`` until SIGINT/SIGTERM, printing ``lines()`` (KEY=value) once started."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        for line in lines():
            print(line, flush=True)
        await stop.wait()


def run_standalone(server: LoopbackServer, lines: Callable[[], Sequence[str]]) -> int:
    """``python -m`` entry: serve until a signal; the process's exit status."""
    asyncio.run(serve_forever(server, lines))
    return 0
