"""Buttons: Approve, Deny, Revoke now, Cancel, Request access.

Each button's value is a grant id and nothing more. Who clicked comes from Slack's signed
payload (``user.id``); whether they may do it comes from the service, which reads the policy
and the store. So a forged payload naming another request or another action is judged
exactly like a real click by that user: refused unless the policy makes them an approver
(or the requester, where that is enough).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.ids import is_grant_id
from bot.errors import NotFound, TransitionError
from bot.slack import delivery, ids
from bot.slack.asking import open_request_form
from bot.slack.blocks import messages
from bot.slack.blocks.kit import Message
from bot.slack.context import SlackDeps
from bot.slack.home import publish_home
from bot.slack.modals.deny import deny_form, require_pending
from bot.slack.reply import Reply

REVOKED_FROM_SLACK = "ended early from Slack"


def user_of(body: dict[str, Any]) -> str:
    """The id of the person whose click, shortcut or submission ``body`` carries."""
    return str((body.get("user") or {}).get("id", ""))


@dataclass(frozen=True, slots=True, kw_only=True)
class Click:
    """One button press, read from a block_actions payload."""

    user: str
    action_id: str
    value: str
    trigger_id: str | None
    response_url: str | None
    channel: str | None
    from_home: bool

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Click:
        action = (body.get("actions") or [{}])[0]
        container = body.get("container") or {}
        channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
        view = body.get("view") or {}
        return cls(
            user=user_of(body),
            action_id=str(action.get("action_id", "")),
            value=str(action.get("value", "")),
            trigger_id=body.get("trigger_id"),
            response_url=body.get("response_url"),
            channel=channel if isinstance(channel, str) else None,
            from_home=view.get("type") == "home",
        )

    def reply(self, client: AsyncWebClient) -> Reply:
        return Reply(
            client=client, user=self.user, response_url=self.response_url, channel=self.channel
        )

    def grant_id(self) -> str:
        """The clicked grant id; NotFound (changing nothing) when the value is not one."""
        value = self.value.strip().lower()
        if not is_grant_id(value):
            raise NotFound("that button does not name a request grantbot knows")
        return value


def register(app: AsyncApp, deps: SlackDeps) -> None:
    # Deny and Request access open a modal: its trigger_id lapses 3 s after Slack sent it.
    app.action(ids.APPROVE)(_listener(deps, on_approve, name="approve"))
    app.action(ids.DENY)(_listener(deps, on_deny, name="deny", urgent=True))
    app.action(ids.REVOKE)(_listener(deps, on_revoke, name="revoke"))
    app.action(ids.CANCEL)(_listener(deps, on_cancel, name="cancel"))
    app.action(ids.OPEN_FORM)(_listener(deps, on_open_form, name="open-form", urgent=True))


OnClick = Callable[[SlackDeps, AsyncWebClient, Click], Coroutine[Any, Any, None]]


def _listener(
    deps: SlackDeps, on_click: OnClick, *, name: str, urgent: bool = False
) -> Callable[..., Awaitable[None]]:
    """A button's listener: ack, then ``on_click`` after the ack (Bolt passes the
    arguments by these parameter names)."""

    async def listener(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, request: AsyncBoltRequest
    ) -> None:
        await ack()
        deps.later(request, on_click(deps, client, Click.from_body(body)), name=name, urgent=urgent)

    return listener


async def on_approve(deps: SlackDeps, client: AsyncWebClient, click: Click) -> None:
    """Approve as the clicking user; the service refuses non-approvers, self-approval,
    second votes and decided requests, each with a message saying so. The copies show an
    approval; if Slack would not deliver some of what followed (the credential DM, the
    copies' updates), the approver is told privately what stands and what did not arrive."""

    async def approve(grant_id: str) -> Message | None:
        with delivery.watching() as failures:
            grant = await deps.service.approve(grant_id, user=click.user)
        told = delivery.note(failures, grant, for_requester=False)
        return None if told is None else messages.grant_status(grant, now=deps.clock(), note=told)

    await _act(deps, client, click, approve)


async def on_deny(deps: SlackDeps, client: AsyncWebClient, click: Click) -> None:
    """Open the deny-reason modal, but only for an approver of a still-pending request."""
    try:
        grant = await deps.service.grant_for_approver(click.grant_id(), user=click.user)
        require_pending(grant, now=deps.clock())
        if not click.trigger_id:
            raise TransitionError("Slack sent no trigger to open the deny form; try again")
        await client.views_open(trigger_id=click.trigger_id, view=deny_form(grant))
    except Exception as e:
        await click.reply(client).error(e)


async def on_revoke(deps: SlackDeps, client: AsyncWebClient, click: Click) -> None:
    """End a grant now: its requester or one of its approvers may."""

    async def revoke(grant_id: str) -> Message:
        grant = await deps.service.revoke(grant_id, user=click.user, reason=REVOKED_FROM_SLACK)
        return messages.grant_status(grant, now=deps.clock())

    await _act(deps, client, click, revoke)


async def on_cancel(deps: SlackDeps, client: AsyncWebClient, click: Click) -> None:
    """Withdraw a pending request: only its requester may."""

    async def cancel(grant_id: str) -> Message:
        grant = await deps.service.cancel(grant_id, user=click.user, reason="withdrawn")
        return messages.grant_status(grant, now=deps.clock())

    await _act(deps, client, click, cancel)


async def _act(
    deps: SlackDeps,
    client: AsyncWebClient,
    click: Click,
    act: Callable[[str], Awaitable[Message | None]],
) -> None:
    """``act`` on the clicked grant and send its answer (if any) to the clicker privately,
    or tell them why not; a click in App Home re-publishes it."""
    try:
        answer = await act(click.grant_id())
        if answer is not None:
            await click.reply(client).send(answer)
    except Exception as e:
        await click.reply(client).error(e)
    if click.from_home:
        await publish_home(deps, client, click.user)


async def on_open_form(deps: SlackDeps, client: AsyncWebClient, click: Click) -> None:
    try:
        if not click.trigger_id:
            raise TransitionError("Slack sent no trigger to open the form; try again")
        await open_request_form(
            deps,
            client,
            user=click.user,
            trigger_id=click.trigger_id,
            channel=None,
            channel_name=None,
        )
    except Exception as e:
        await click.reply(client).error(e)
