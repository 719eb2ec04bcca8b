"""Slack's retried deliveries are processed once.

Slack retries an Events API delivery (``X-Slack-Retry-Num``, same ``event_id``) when it did
not see a 200 in time; a network can deliver anything twice; an attacker can replay a signed
request within Bolt's 5-minute window. Each delivery is named by a token: events by
``event_id``, everything else (commands, clicks, submissions, whose bodies carry a unique
trigger_id / action_ts) by a SHA-256 of the body. The token is claimed (a
:class:`~bot.ports.FirstSeen`: in serve, the store's ``Dedupe``, one Redis ``SET NX EX``)
by the work that follows the ack (``SlackDeps.later``), not before it: a
repeated delivery is acknowledged like the first (Slack only needs its 200) and its work is
dropped, and no ack ever waits on Redis.

When Redis cannot be reached the delivery is processed (fail open): every state change is a
compare-and-set in the store, so a double delivery cannot double a decision; it can at most
repeat a reply.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def delivery_token(body: Any, raw_body: str) -> str:
    """``event:<event_id>`` for Events API callbacks, else ``body:<sha256 of the body>``."""
    if isinstance(body, dict):
        event_id = body.get("event_id")
        if body.get("type") == "event_callback" and isinstance(event_id, str) and event_id:
            return f"event:{event_id[:128]}"
    raw = raw_body or json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return "body:" + hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()
