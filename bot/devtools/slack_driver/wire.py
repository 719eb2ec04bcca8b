"""A request to the bot exactly as sent, the bot's answer, and the same delivery as a Socket
Mode envelope."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

JSON = dict[str, Any]

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
JSON_CONTENT_TYPE = "application/json"
SLACK_USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"


@dataclass(frozen=True)
class SlackRequest:
    """One request exactly as sent: body bytes and every header (signature included)."""

    body: bytes
    headers: Mapping[str, str]

    @property
    def content_type(self) -> str:
        return self.headers["Content-Type"]


@dataclass(frozen=True)
class DriverResponse:
    """The bot's answer: status, headers, body (parsed when JSON), and how long it took."""

    status: int
    headers: Mapping[str, str]
    body: Any
    text: str
    latency_s: float
    request: SlackRequest

    @property
    def json(self) -> JSON:
        if not isinstance(self.body, dict):
            raise ValueError(f"not a JSON object: {self.text[:200]!r}")
        return self.body


def socket_envelope(request: SlackRequest) -> tuple[str, JSON]:
    """An HTTP delivery's Socket Mode equivalent: (envelope type, payload). Over Socket Mode
    Slack sends the same fields, as JSON: a slash command's form fields, an interaction's
    ``payload``, an event callback whole."""
    if request.content_type == JSON_CONTENT_TYPE:
        return "events_api", json.loads(request.body)
    fields = dict(parse_qsl(request.body.decode()))
    if "payload" in fields:
        return "interactive", json.loads(fields["payload"])
    return "slash_commands", dict(fields)
