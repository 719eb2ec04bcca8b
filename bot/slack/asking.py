"""Asking for access from Slack: where a request comes from, the request form, and a filed
request announced where it was asked.

Shared by the slash command, mentions, buttons and the form (one set of answers). Authority
lives in the service; this module only translates between Slack and it, and renders with
:mod:`bot.slack.blocks`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Final, Protocol, TypedDict

from slack_sdk.web.async_client import AsyncWebClient

from bot import metrics
from bot.domain.model import Origin, Status
from bot.errors import GrantbotError, PolicyDenied, SlackError
from bot.service import RequestResult
from bot.slack import delivery
from bot.slack.blocks import kit, messages
from bot.slack.context import SlackDeps
from bot.slack.delivery import Undelivered
from bot.slack.modals.fields import FieldErrors
from bot.slack.modals.request import form_metadata, request_form
from bot.slack.modals.request_extras import with_extras
from bot.slack.modals.start_field import scheduled_start
from bot.slack.reply import Reply

log = logging.getLogger(__name__)

#: Slack sends these as channel_name for conversations that have no name.
_UNNAMED: Final = frozenset({"directmessage", "privategroup", "mpdm"})


async def origin_for(
    deps: SlackDeps,
    *,
    surface: str,
    channel: str | None,
    channel_name: str | None,
    thread_ts: str | None = None,
) -> Origin:
    """Where a request comes from. It is from an incident when the policy's
    incident_channels matches the channel's name; the incident id is then read from the
    channel's topic or name (policy ``incident_id``), the topic through conversations.info
    (cached). Slack failing to answer leaves the topic empty, never the incident unnoticed."""
    name = channel_name if channel_name and channel_name not in _UNNAMED else None
    incident = None
    if name is not None and deps.service.is_incident_channel(name):
        info = await deps.directory.channel_info(channel) if channel else None
        incident = deps.service.incident_of(name, topic=info.topic if info is not None else "")
    return Origin(
        channel=channel,
        channel_name=name,
        thread_ts=thread_ts,
        incident=incident,
        surface=surface,
    )


async def open_request_form(
    deps: SlackDeps,
    client: AsyncWebClient,
    *,
    user: str,
    trigger_id: str,
    channel: str | None,
    channel_name: str | None,
) -> None:
    """views.open with the request form, offering only what ``user`` may request.

    Raises what the service raises (StoreUnavailable is not among them: it reads only the
    policy) and SlackError when Slack refuses the view (e.g. the trigger expired).
    """
    rules = await deps.service.requestable(user)
    metadata = form_metadata(channel_id=channel, channel_name=channel_name)
    view = request_form(rules, private_metadata=metadata)
    # Issue 13: bundles among the targets, and "Request for" (bot/slack/modals/request_extras).
    bundles, for_others = await deps.service.asking_options(user)
    view = with_extras(view, bundles=bundles, may_ask_for_others=for_others, targets=len(rules))
    await client.views_open(trigger_id=trigger_id, view=view)


class AccessAsked(Protocol):
    """What every way of asking supplies (the command's and mention's grammar, the form)."""

    @property
    def resource(self) -> str: ...
    @property
    def role(self) -> str | None: ...
    @property
    def duration_s(self) -> int | None: ...
    @property
    def reason(self) -> str: ...
    @property
    def tickets(self) -> tuple[str, ...]: ...


class AskedFields(TypedDict):
    """What was asked, as the service's ``request_access`` and ``check_request`` take it."""

    resource: str
    role: str | None
    duration_s: int | None
    reason: str
    tickets: tuple[str, ...]


#: The most time the policy check before a form's ack may take; past it, the modal closes
#: and the service's own check (after the ack) answers by message instead.
CHECK_BUDGET_S: Final = 1.5


async def form_refusal(
    check: Awaitable[object], errors: Callable[[PolicyDenied], FieldErrors]
) -> FieldErrors | None:
    """The field ``errors`` of the refusal ``check`` raises within :data:`CHECK_BUDGET_S`;
    None when it passes, runs out of time or fails otherwise (the service checks again when
    the request is filed)."""
    try:
        await asyncio.wait_for(check, timeout=CHECK_BUDGET_S)
    except PolicyDenied as e:
        return errors(e)
    except (TimeoutError, GrantbotError) as e:
        log.info("form pre-check skipped (%s); the service will check", type(e).__name__)
    return None


class FormOrigin(Protocol):
    """Where a submitted form was opened (its private metadata)."""

    @property
    def channel(self) -> str | None: ...
    @property
    def channel_name(self) -> str | None: ...


async def answer_form(
    deps: SlackDeps,
    client: AsyncWebClient,
    user: str,
    form: FormOrigin,
    file: Callable[[Origin], Awaitable[kit.Message]],
) -> None:
    """After a form's ack: ``file`` what it asks from where it was opened, and answer
    ``user`` privately there (else by DM) with its message, or with the error it raised."""
    reply = Reply(client=client, user=user, channel=form.channel)
    origin = await origin_for(
        deps, surface="modal", channel=form.channel, channel_name=form.channel_name
    )
    try:
        message = await file(origin)
    except Exception as e:
        await reply.error(e)
        return
    await reply.send(message)


def asked_fields(asked: AccessAsked) -> AskedFields:
    """``asked`` as keyword arguments for the service."""
    return AskedFields(
        resource=asked.resource,
        role=asked.role,
        duration_s=asked.duration_s,
        reason=asked.reason,
        tickets=asked.tickets,
    )


async def file_and_announce(
    deps: SlackDeps, client: AsyncWebClient, user: str, asked: AccessAsked, origin: Origin
) -> tuple[RequestResult, bool]:
    """File ``user``'s request and announce it where it was asked (:func:`announce_request`):
    the result, and whether it was posted there. Raises what the service raises.

    What Slack would not deliver meanwhile (the approvers' copies, the credential DM, the
    post in the channel) is added to the result's ``note``, for the requester's
    confirmation; ``credential`` is None when its DM did not go out."""
    start = await scheduled_start(deps, user, getattr(asked, "start", None))
    with delivery.watching() as failures:
        result = await deps.service.request_access(
            user=user, origin=origin, **asked_fields(asked), **start
        )
        announced = await announce_request(deps, client, result, origin)
    told = delivery.note(failures, result.grant, for_requester=True)
    if told is not None:
        result = replace(
            result,
            note=f"{result.note}\n{told}" if result.note else told,
            credential=(
                None
                if delivery.credential_undelivered(failures, result.grant)
                else result.credential
            ),
        )
    return result, announced


async def announce_request(
    deps: SlackDeps, client: AsyncWebClient, result: RequestResult, origin: Origin
) -> bool:
    """Post a new PENDING request where it was asked, so the people there see it: in the
    mention's thread, or in an incident channel (its later news is threaded under that
    message). A request already decided (auto-approved) is announced by the notifier with
    its outcome instead. True when posted; a Slack failure is logged and counted."""
    grant = result.grant
    channel = origin.channel
    asked_in_thread = origin.surface == "mention" and origin.thread_ts is not None
    if not channel or channel.startswith("D") or grant.status is not Status.PENDING:
        return False
    if not asked_in_thread and origin.incident is None:
        return False
    message = messages.thread_request(grant, result.rule, now=deps.clock(), note=result.note)
    try:
        resp = await client.chat_postMessage(
            channel=channel, thread_ts=origin.thread_ts, **message.as_kwargs()
        )
    except SlackError as e:
        metrics.record_slack_api_error("chat.postMessage", e)
        log.warning("could not announce %s in %s: %s", grant.id, channel, e.code)
        delivery.record(Undelivered(grant.id, "chat.postMessage", channel, e.code))
        return False
    if origin.thread_ts is None and deps.notifier is not None:
        await deps.notifier.remember_origin_root(
            grant.id, str(resp.get("channel") or channel), resp["ts"]
        )
    return True
