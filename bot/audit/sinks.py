"""Where ``serve`` ships the audit log: an append-only file, or an HTTPS endpoint (a SIEM's
HTTP collector). A sink takes one batch of JSON lines at a time and either has it (returns)
or not (raises :class:`SinkUnavailable`; the same batch is sent again).

``GRANTBOT_AUDIT_SHIP_TO`` names the sink: ``https://collector.example/audit`` (``http://``
only to a loopback address, for a local forwarder), or a file as ``file:///var/log/x.jsonl``
or an absolute path. ``GRANTBOT_AUDIT_SHIP_TOKEN``, when set, is sent as
``Authorization: Bearer ...``.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path
from typing import Final, Protocol
from urllib.parse import urlsplit

import aiohttp

from bot.errors import ConfigError, SinkUnavailable

SHIP_TO_ENV: Final = "GRANTBOT_AUDIT_SHIP_TO"
HTTP_TIMEOUT_S: Final = 30.0
_LOOPBACK: Final = frozenset({"127.0.0.1", "::1", "localhost"})


class Sink(Protocol):
    """One destination of the audit log."""

    @property
    def id(self) -> str:
        """A stable name (no secret in it): the key of the sink's position in Redis."""

    @property
    def kind(self) -> str:
        """``file`` or ``http``: for logs and metrics."""

    async def send(self, lines: list[str], *, first_seq: int, last_seq: int) -> None:
        """Deliver ``lines`` (JSON, no newlines) or raise SinkUnavailable."""

    async def aclose(self) -> None: ...


def _sink_id(destination: str) -> str:
    return hashlib.sha256(destination.encode()).hexdigest()[:16]


class FileSink:
    """Appends each batch to a file and fsyncs it before the batch counts as shipped."""

    kind = "file"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.id = _sink_id(f"file:{path}")

    async def send(self, lines: list[str], *, first_seq: int, last_seq: int) -> None:
        data = "".join(line + "\n" for line in lines).encode()
        try:
            await asyncio.to_thread(self._append, data)
        except OSError as e:
            raise SinkUnavailable(f"cannot append to {self.path}: {e.strerror}") from e

    def _append(self, data: bytes) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)

    async def aclose(self) -> None:
        return None


class HttpSink:
    """POSTs each batch as ``application/x-ndjson``; any 2xx means the endpoint has it."""

    kind = "http"

    def __init__(self, url: str, *, token: str | None) -> None:
        self.url = url
        self.id = _sink_id(f"http:{url}")
        self._token = token
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)
            )
        return self._session

    async def send(self, lines: list[str], *, first_seq: int, last_seq: int) -> None:
        headers = {
            "Content-Type": "application/x-ndjson",
            "X-Grantbot-First-Seq": str(first_seq),
            "X-Grantbot-Last-Seq": str(last_seq),
        }
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        body = "".join(line + "\n" for line in lines).encode()
        try:
            async with self._client().post(self.url, data=body, headers=headers) as resp:
                if not 200 <= resp.status < 300:
                    raise SinkUnavailable(f"{self.url} answered HTTP {resp.status}")
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise SinkUnavailable(f"{self.url}: {type(e).__name__}") from e

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def sink_from_setting(value: str, *, token: str | None) -> Sink:
    """The sink ``GRANTBOT_AUDIT_SHIP_TO`` names; ConfigError naming what is wrong."""
    raw = value.strip()
    parts = urlsplit(raw)
    if parts.scheme == "https":
        if not parts.hostname:
            raise ConfigError(f"{SHIP_TO_ENV}: {raw!r} has no host")
        return HttpSink(raw, token=token)
    if parts.scheme == "http":
        if parts.hostname not in _LOOPBACK:
            raise ConfigError(
                f"{SHIP_TO_ENV}: plain http:// is only for a loopback forwarder; use https://"
            )
        return HttpSink(raw, token=token)
    if parts.scheme == "file":
        path = Path(parts.path)
    elif not parts.scheme and raw.startswith("/"):
        path = Path(raw)
    else:
        raise ConfigError(
            f"{SHIP_TO_ENV}: {raw[:80]!r} is not https://..., file:///... or an absolute path"
        )
    if not path.is_absolute() or not path.parent.is_dir():
        raise ConfigError(f"{SHIP_TO_ENV}: {path} is not in an existing directory")
    return FileSink(path)
