"""Who is on call in PagerDuty, through REST API v2 ``GET /oncalls``.

One lookup asks for the on-calls overlapping ``now`` (``since`` = ``until`` = now) for one
schedule (``schedule_ids[]``) or one escalation policy (``escalation_policy_ids[]``), with
``include[]=users`` so each entry carries the user's email, following ``more``/``offset``
pages. Each email is mapped to a Slack user (users.lookupByEmail); a user whose email has no
Slack account is not on call.

Which entries count:

* a schedule: every entry for that schedule, at any escalation level;
* an escalation policy: only level-1 entries (the person paged first), so a manager who
  sits at level 3 of every policy is not "on call" for all of them.

An entry counts only while ``start <= now < end`` (a null start or end is open-ended),
checked here as well as by PagerDuty.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final
from urllib.parse import quote

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from bot.oncall.base import (
    HttpClient,
    OnCallUnavailable,
    SlackUserMap,
    gather_all,
    get_json,
    utc_iso,
)

#: Where PagerDuty's REST API lives when the policy gives no base_url.
PAGERDUTY_API_URL: Final = "https://api.pagerduty.com"
#: REST API v2 asks for this media type; without it some endpoints answer as v1.
PAGERDUTY_ACCEPT: Final = "application/vnd.pagerduty+json;version=2"
#: PagerDuty's page size ceiling for classic pagination ("limit ... maximum 100").
PAGE_LIMIT: Final = 100
#: A schedule has a handful of on-call entries at one instant; this many pages is a runaway.
MAX_PAGES: Final = 20
SERVICE: Final = "PagerDuty"


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Ref(_Lenient):
    id: str


class _User(_Lenient):
    id: str
    email: str | None = None  # present when include[]=users embedded the full user


class _OnCall(_Lenient):
    user: _User
    schedule: _Ref | None = None
    escalation_policy: _Ref | None = None
    escalation_level: int = 1
    start: AwareDatetime | None = None  # a time without an offset is refused, not guessed
    end: AwareDatetime | None = None

    def covers(self, now: float) -> bool:
        starts_ok = self.start is None or self.start.timestamp() <= now
        return starts_ok and (self.end is None or now < self.end.timestamp())


class _Page(_Lenient):
    oncalls: list[_OnCall]
    more: bool = False


class _UserBody(_Lenient):
    user: _User


class PagerDutySource:
    """An :class:`~bot.oncall.base.OnCallSource` for one PagerDuty schedule or escalation
    policy (exactly one of ``schedule_id`` / ``escalation_policy_id``)."""

    label = SERVICE

    def __init__(
        self,
        *,
        token: str,
        schedule_id: str | None = None,
        escalation_policy_id: str | None = None,
        base_url: str | None = None,
        http: HttpClient,
        users: SlackUserMap,
    ) -> None:
        if (schedule_id is None) == (escalation_policy_id is None):
            raise ValueError("give exactly one of schedule_id or escalation_policy_id")
        self._token = token
        self.schedule_id = schedule_id
        self.escalation_policy_id = escalation_policy_id
        self.base_url = (base_url or PAGERDUTY_API_URL).rstrip("/")
        self._http = http
        self._users = users

    def __repr__(self) -> str:  # never the token
        target = f"schedule_id={self.schedule_id!r}"
        if self.escalation_policy_id is not None:
            target = f"escalation_policy_id={self.escalation_policy_id!r}"
        return f"PagerDutySource({target}, base_url={self.base_url!r})"

    @property
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Token token={self._token}", "Accept": PAGERDUTY_ACCEPT}

    async def on_call(self, *, now: float) -> frozenset[str]:
        return await self._users.slack_ids(await self.on_call_emails(now=now))

    async def on_call_emails(self, *, now: float) -> frozenset[str]:
        """Emails of the users on call at ``now``. Raises OnCallUnavailable."""
        entries = [e for e in await self._entries(now) if self._counts(e) and e.covers(now)]
        emails = {e.user.email for e in entries if e.user.email}
        missing = sorted({e.user.id for e in entries if not e.user.email})
        fetched = await gather_all(self._user_email(uid) for uid in missing)
        return frozenset(emails | {e for e in fetched if e})

    def _counts(self, entry: _OnCall) -> bool:
        if self.schedule_id is not None:
            return entry.schedule is not None and entry.schedule.id == self.schedule_id
        policy = entry.escalation_policy
        return (
            policy is not None
            and policy.id == self.escalation_policy_id
            and entry.escalation_level == 1
        )

    def _params(self, now: float, offset: int) -> Iterable[tuple[str, str]]:
        if self.schedule_id is not None:
            yield ("schedule_ids[]", self.schedule_id)
        else:
            yield ("escalation_policy_ids[]", str(self.escalation_policy_id))
        at = utc_iso(now)
        yield from [("include[]", "users"), ("since", at), ("until", at)]
        yield from [("limit", str(PAGE_LIMIT)), ("offset", str(offset))]

    async def _entries(self, now: float) -> list[_OnCall]:
        entries: list[_OnCall] = []
        for _ in range(MAX_PAGES):
            body = await get_json(
                self._http,
                f"{self.base_url}/oncalls",
                service=SERVICE,
                params=self._params(now, len(entries)),
                headers=self._headers,
            )
            try:
                page = _Page.model_validate(body)
            except ValidationError as e:
                raise OnCallUnavailable(f"{SERVICE} sent an unexpected /oncalls answer") from e
            entries += page.oncalls
            if not page.more:
                return entries
            if not page.oncalls:  # "more" with an empty page would loop forever
                break
        raise OnCallUnavailable(f"{SERVICE} kept paginating past {MAX_PAGES} pages")

    async def _user_email(self, user_id: str) -> str | None:
        """GET /users/{id}: the email when the on-call entry did not embed it."""
        body = await get_json(
            self._http,
            f"{self.base_url}/users/{quote(user_id, safe='')}",
            service=SERVICE,
            headers=self._headers,
        )
        try:
            return _UserBody.model_validate(body).user.email
        except ValidationError as e:
            raise OnCallUnavailable(f"{SERVICE} sent an unexpected /users answer") from e
