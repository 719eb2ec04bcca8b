"""Who is on call in Opsgenie, through the Who-is-on-call API.

``GET /v2/schedules/{name}/on-calls?scheduleIdentifierType=name&flat=true&date=...`` with
``Authorization: GenieKey <key>`` answers ``{"data": {"_parent": {...}, "onCallRecipients":
["user@example.com", ...]}, "took": ..., "requestId": ...}``. Opsgenie usernames are email
addresses; each is mapped to a Slack user (users.lookupByEmail), and one without a Slack
account is not on call. A recipient that is not an email (a team or escalation name) is
ignored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.oncall.base import HttpClient, OnCallUnavailable, SlackUserMap, get_json

#: Where Opsgenie's API lives when the policy gives no base_url (EU accounts use
#: https://api.eu.opsgenie.com).
OPSGENIE_API_URL: Final = "https://api.opsgenie.com"
SERVICE: Final = "Opsgenie"


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class _Data(_Lenient):
    on_call_recipients: list[str] = Field(alias="onCallRecipients")


class _Body(_Lenient):
    data: _Data


def opsgenie_date(now: float) -> str:
    """``now`` in the format the ``date`` parameter takes (yyyy-MM-dd'T'HH:mm:ssZ)."""
    return datetime.fromtimestamp(now, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


class OpsgenieSource:
    """An :class:`~bot.oncall.base.OnCallSource` for one Opsgenie schedule, by name."""

    label = SERVICE

    def __init__(
        self,
        *,
        api_key: str,
        schedule: str,
        base_url: str | None = None,
        http: HttpClient,
        users: SlackUserMap,
    ) -> None:
        self._api_key = api_key
        self.schedule = schedule
        self.base_url = (base_url or OPSGENIE_API_URL).rstrip("/")
        self._http = http
        self._users = users

    def __repr__(self) -> str:  # never the key
        return f"OpsgenieSource(schedule={self.schedule!r}, base_url={self.base_url!r})"

    async def on_call(self, *, now: float) -> frozenset[str]:
        return await self._users.slack_ids(await self.on_call_emails(now=now))

    async def on_call_emails(self, *, now: float) -> frozenset[str]:
        """Emails of the schedule's on-call recipients at ``now``. Raises OnCallUnavailable."""
        body = await get_json(
            self._http,
            f"{self.base_url}/v2/schedules/{quote(self.schedule, safe='')}/on-calls",
            service=SERVICE,
            params=[
                ("scheduleIdentifierType", "name"),
                ("flat", "true"),
                ("date", opsgenie_date(now)),
            ],
            headers={"Authorization": f"GenieKey {self._api_key}"},
        )
        try:
            recipients = _Body.model_validate(body).data.on_call_recipients
        except ValidationError as e:
            raise OnCallUnavailable(f"{SERVICE} sent an unexpected on-calls answer") from e
        return frozenset(r for r in recipients if "@" in r)
