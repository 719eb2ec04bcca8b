"""Headless Chromium driven over the DevTools protocol (a websocket, with aiohttp): open a
page, collect console errors, uncaught exceptions and failed loads, evaluate a script in the
page, take a full-page screenshot. For the report's browser test and its docs screenshot.

Debian's ``chromium`` package (``/usr/bin/chromium``) with a fresh profile per run, and every
flag that keeps it from calling out (no sync, no component updates, no background traffic).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiohttp

from bot.errors import ConfigError

FLAGS: Final = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
)
START_TIMEOUT_S: Final = 30.0


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass(slots=True)
class PageProblems:
    """What went wrong while a page loaded."""

    console_errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    failed_loads: list[str] = field(default_factory=list)

    @property
    def any(self) -> bool:
        return bool(self.console_errors or self.exceptions or self.failed_loads)


class Page:
    """One tab, spoken to over its DevTools websocket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.problems = PageProblems()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for msg in self._ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            if "id" in data:
                future = self._replies.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_result(data)
                continue
            self._note(data)
            await self._events.put(data)

    def _note(self, data: dict[str, Any]) -> None:
        method, params = data.get("method"), data.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self.problems.console_errors.append(
                " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            )
        elif method == "Runtime.exceptionThrown":
            self.problems.exceptions.append(str(params.get("exceptionDetails", {}).get("text")))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            self.problems.console_errors.append(f"{entry.get('text')} {entry.get('url', '')}")
        elif method == "Network.loadingFailed":
            self.problems.failed_loads.append(
                f"{params.get('errorText')} ({params.get('blockedReason', '')})"
            )

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[call_id] = future
        await self._ws.send_json({"id": call_id, "method": method, "params": params})
        reply = await asyncio.wait_for(future, timeout=30)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def open(self, url: str, *, timeout_s: float = 30.0) -> None:
        """Navigate and wait for the load event, recording problems on the way."""
        for domain in ("Runtime", "Log", "Network", "Page"):
            await self.call(f"{domain}.enable")
        await self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout_s
        while True:
            event = await asyncio.wait_for(self._events.get(), deadline - time.monotonic())
            if event.get("method") == "Page.loadEventFired":
                return

    async def evaluate(self, expression: str) -> Any:
        """The JSON value of ``expression`` in the page (its exceptions are problems)."""
        result = await self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    async def screenshot(
        self, path: Path, *, width: int = 1100, max_height: int | None = None
    ) -> None:
        """A PNG of the page at ``width`` CSS pixels: all of it, or its top ``max_height``."""
        height = int(await self.evaluate("document.documentElement.scrollHeight"))
        if max_height is not None:
            height = min(height, max_height)
        await self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        shot = await self.call(
            "Page.captureScreenshot", format="png", captureBeyondViewport=max_height is None
        )
        await asyncio.to_thread(path.write_bytes, base64.b64decode(shot["data"]))

    async def aclose(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self._ws.close()


@contextlib.asynccontextmanager
async def headless_page(binary: str | None = None) -> AsyncIterator[Page]:
    """A fresh headless Chromium (own profile directory) and its first tab."""
    exe = binary or find_chromium()
    if exe is None:
        raise ConfigError("chromium not found: apt-get install chromium")
    profile = Path(tempfile.mkdtemp(prefix="grantbot-chromium-"))
    proc = _launch([exe, *FLAGS, f"--user-data-dir={profile}", "about:blank"])
    session = aiohttp.ClientSession()
    page: Page | None = None
    try:
        port = await _devtools_port(profile, proc)
        async with session.get(f"http://127.0.0.1:{port}/json/list") as resp:
            targets = await resp.json()
        target = next(t for t in targets if t.get("type") == "page")
        ws = await session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0)
        page = Page(ws)
        yield page
    finally:
        if page is not None:
            await page.aclose()
        await session.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)


def _launch(argv: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603 - our own binary and flags


async def _devtools_port(profile: Path, proc: subprocess.Popen[bytes]) -> int:
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ConfigError(f"chromium exited at start (code {proc.returncode})")
        if marker.exists():
            first = marker.read_text().splitlines()
            if first and first[0].isdigit():
                return int(first[0])
        await asyncio.sleep(0.05)
    raise ConfigError(f"chromium did not open its DevTools port within {START_TIMEOUT_S}s")
