"""Slack's request bodies: slash commands (a form), interactions (a form with one ``payload``
field of JSON), Events API callbacks (JSON envelopes)."""

from __future__ import annotations

import itertools
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from bot.devtools.slack_emulator.directory import DEFAULT_TEAM_ID

JSON = dict[str, Any]


@dataclass
class Payloads:
    """Builds Slack's request bodies. Pure apart from minting ids from ``clock``."""

    team_id: str = DEFAULT_TEAM_ID
    team_domain: str = "grantbot-demo"
    api_app_id: str = "A0GRANTBOT"
    bot_user_id: str = "U0GRANTBOT"
    verification_token: str = "emulator-verification-token"  # noqa: S105 - Slack's legacy field
    clock: Callable[[], float] = time.time
    #: The Enterprise Grid organisation the workspace belongs to (None: not on Grid).
    enterprise_id: str | None = None
    #: The acting person's home workspace (a Slack Connect guest's differs); default team_id.
    actor_team_id: str | None = None
    _seq: itertools.count[int] = field(
        default_factory=lambda: itertools.count(1), init=False, repr=False
    )

    def ts(self) -> str:
        return f"{int(self.clock())}.{next(self._seq):06d}"

    @property
    def actor_team(self) -> str:
        return self.actor_team_id or self.team_id

    def user(self, user_id: str, user_name: str | None) -> JSON:
        name = user_name or user_id.lower()
        return {"id": user_id, "username": name, "name": name, "team_id": self.actor_team}

    def team(self) -> JSON:
        team: JSON = {"id": self.team_id, "domain": self.team_domain}
        if self.enterprise_id:
            team["enterprise_id"] = self.enterprise_id
        return team

    def enterprise(self) -> JSON | None:
        if not self.enterprise_id:
            return None
        return {"id": self.enterprise_id, "name": f"{self.team_domain}-org"}

    def slash_command(
        self,
        *,
        user_id: str,
        user_name: str | None,
        text: str,
        channel_id: str,
        channel_name: str,
        command: str,
        trigger_id: str,
        response_url: str,
    ) -> bytes:
        fields = {
            "token": self.verification_token,
            "team_id": self.team_id,
            "team_domain": self.team_domain,
            "channel_id": channel_id,
            "channel_name": channel_name,
            "user_id": user_id,
            "user_name": user_name or user_id.lower(),
            "command": command,
            "text": text,
            "api_app_id": self.api_app_id,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id,
        }
        if self.enterprise_id:  # Slack adds these on Enterprise Grid
            fields["enterprise_id"] = self.enterprise_id
            fields["enterprise_name"] = f"{self.team_domain}-org"
        return urlencode(fields).encode()

    def interactive(self, payload: Mapping[str, Any]) -> bytes:
        """Interactivity bodies are a form with a single ``payload`` field holding JSON."""
        return urlencode({"payload": json.dumps(payload, separators=(",", ":"))}).encode()

    def interaction_base(
        self, kind: str, user_id: str, user_name: str | None, trigger: str
    ) -> JSON:
        return {
            "type": kind,
            "user": self.user(user_id, user_name),
            "api_app_id": self.api_app_id,
            "token": self.verification_token,
            "trigger_id": trigger,
            "team": self.team(),
            "enterprise": self.enterprise(),
            "is_enterprise_install": False,
        }

    def event_callback(self, event: Mapping[str, Any], *, event_id: str | None = None) -> bytes:
        envelope = {
            "token": self.verification_token,
            "team_id": self.team_id,
            **({"enterprise_id": self.enterprise_id} if self.enterprise_id else {}),
            "context_team_id": self.team_id,
            "context_enterprise_id": self.enterprise_id,
            "api_app_id": self.api_app_id,
            "event": dict(event),
            "type": "event_callback",
            "event_id": event_id or f"Ev{secrets.token_hex(5).upper()}",
            "event_time": int(self.clock()),
            "authorizations": [
                {
                    "enterprise_id": self.enterprise_id,
                    "team_id": self.team_id,
                    "user_id": self.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": f"4-{secrets.token_urlsafe(24)}",
        }
        return json.dumps(envelope).encode()
