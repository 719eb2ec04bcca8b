"""Which Redis to use: REDIS_URL, else localhost:6379, else an embedded redis-server.

The embedded server keeps its data (AOF) under GRANTBOT_DATA_DIR/redis so a restarted bot
keeps its grants and revocation schedule, and it records its URL there so that CLI commands
run beside a bot find the same server.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

from bot.config import Settings
from bot.devtools.redis_server import RedisServer, port_answers
from bot.errors import ConfigError
from bot.store.preflight import check_reachable

log = logging.getLogger(__name__)

LOCAL_REDIS_URL = "redis://127.0.0.1:6379/0"
_URL_FILE = "redis.url"


def _answers(url: str) -> bool:
    parsed = urlparse(url)
    return port_answers(parsed.hostname or "127.0.0.1", parsed.port or 6379)


def _embedded_dir(settings: Settings) -> Path:
    return settings.data_dir / "redis"


@contextlib.contextmanager
def redis_url_for(settings: Settings, *, start_embedded: bool) -> Iterator[str]:
    """Yield the Redis URL to use; start (and finally stop) an embedded server if allowed.

    Raises ConfigError when nothing is reachable and ``start_embedded`` is false (CLI
    commands that only read should not conjure an empty database).
    """
    if settings.redis_url:
        check_reachable(settings.redis_url)  # a URL grantbot cannot use: one line, exit 1
        yield settings.redis_url
        return
    if port_answers("127.0.0.1", 6379):
        yield LOCAL_REDIS_URL
        return
    url_file = _embedded_dir(settings) / _URL_FILE
    if url_file.exists():
        recorded = url_file.read_text().strip()
        if recorded and _answers(recorded):
            yield recorded
            return
    if not start_embedded:
        raise ConfigError(
            "no Redis: set REDIS_URL, start redis on localhost:6379, or run `grantbot serve` "
            "(it starts an embedded one)"
        )
    data_dir = _embedded_dir(settings)
    server = RedisServer(data_dir=data_dir, appendonly=True).start()
    url_file.write_text(server.url)
    log.info("started embedded redis-server", extra={"redis_url": server.url, "dir": str(data_dir)})
    try:
        yield server.url
    finally:
        url_file.unlink(missing_ok=True)
        server.stop(keep_data=True)
