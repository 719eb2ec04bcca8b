"""Where things are on the emulator's HTTP edge: Slack's own paths live under ``/api/``; the
emulator's control endpoints (and the response_urls it hands out) under ``/_emulator``."""

from __future__ import annotations

API_PREFIX = "/api/"
CONTROL_PREFIX = "/_emulator"
RESPONSE_URL_PATH = f"{CONTROL_PREFIX}/response/"
RESPONSE_URL_METHOD = "response_url"  # the `method` of a recorded response_url post
APPS_CONNECTIONS_OPEN = "apps.connections.open"  # the one method taking the app-level token
