"""Buttons: Approve, Deny, Revoke now, Cancel, Request access.

Each button's value is a grant id and nothing more. Who clicked comes from Slack's signed
payload (``user.id``); whether they may do it comes from the service, which reads the policy
and the store. So a forged payload naming another request or another action is judged
exactly like a real click by that user: refused unless the policy makes them an approver
(or the requester, where that is enough).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.ids import is_grant_id
from bot.domain.model import Status
from bot.errors import NotFound, TransitionError
from bot.slack import delivery, ids
from bot.slack.asking import open_request_form
from bot.slack.blocks import describe, messages
from bot.slack.context import SlackDeps
from bot.slack.home import publish_home
from bot.slack.modals.deny import deny_form
from bot.slack.reply import Reply

REVOKED_FROM_SLACK = "ended early from Slack"


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
            user=str((body.get("user") or {}).get("id", "")),
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
    @app.action(ids.APPROVE)
    async def approve(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, request: AsyncBoltRequest
    ) -> None:
        await ack()
        deps.later(request, on_approve(deps, client, Click.from_body(body)), name="approve")

    @app.action(ids.DENY)
    async def deny(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, request: AsyncBoltRequest
    ) -> None:
        await ack()
        deps.later(request, on_deny(deps, client, Click.from_body(body)), name="deny", urgent=True)

    @app.action(ids.REVOKE)
    async def revoke(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, request: AsyncBoltRequest
    ) -> None:
        await ack()
        deps.later(request, on_revoke(deps, client, Click.from_body(body)), name="revoke")

    @app.action(ids.CANCEL)
    async def cancel(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, request: AsyncBoltRequest
    ) -> None:
        await ack()
        deps.later(request, on_cancel(deps, client, Click.from_body(body)), name="cancel")

    @app.action(ids.OPEN_FORM)
    async def open_form(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, request: AsyncBoltRequest
    ) -> None:
        await ack()
        deps.later(
            request,
            on_open_form(deps, client, Click.from_body(body)),
            name="open-form",
            urgent=True,
        )


async def on_approve(deps: SlackDeps, client: AsyncWebClient, click: Click) -> None:
    """Approve as the clicking user; the service refuses non-approvers, self-approval,
    second votes and decided requests, each with a message saying so. The copies show an
    approval; if Slack would not deliver some of what followed (the credential DM, the
    copies' updates), the approver is told privately what stands and what did not arrive."""
    try:
        with delivery.watching() as failures:
            grant = await deps.service.approve(click.grant_id(), user=click.user)
        told = delivery.note(failures, grant, for_requester=False)
        if told is not None:
            await click.reply(client).send(
                messages.grant_status(grant, now=deps.clock(), note=told)
            )
    except Exception as e:
        await click.reply(client).error(e)
    if click.from_home:
        await publish_home(deps, client, click.user)


async def on_deny(deps: SlackDeps, client: AsyncWebClient, click: Click) -> None:
    """Open the deny-reason modal, but only for an approver of a still-pending request."""
    try:
        grant = await deps.service.store.get(click.grant_id())
        await deps.service.require_approver(grant, click.user)
        if grant.status is not Status.PENDING:
            now = deps.clock()
            raise TransitionError(
                f"{grant.id} is no longer pending ({describe.outcome_text(grant, now=now)}); "
                "nothing changed"
            )
        if not click.trigger_id:
            raise TransitionError("Slack sent no trigger to open the deny form; try again")
        await client.views_open(trigger_id=click.trigger_id, view=deny_form(grant))
    except Exception as e:
        await click.reply(client).error(e)


async def on_revoke(deps: SlackDeps, client: AsyncWebClient, click: Click) -> None:
    """End a grant now: its requester or one of its approvers may."""
    try:
        grant = await deps.service.revoke(
            click.grant_id(), user=click.user, reason=REVOKED_FROM_SLACK
        )
        await click.reply(client).send(messages.grant_status(grant, now=deps.clock()))
    except Exception as e:
        await click.reply(client).error(e)
    if click.from_home:
        await publish_home(deps, client, click.user)


async def on_cancel(deps: SlackDeps, client: AsyncWebClient, click: Click) -> None:
    """Withdraw a pending request: only its requester may."""
    try:
        grant = await deps.service.cancel(click.grant_id(), user=click.user, reason="withdrawn")
        await click.reply(client).send(messages.grant_status(grant, now=deps.clock()))
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
