"""What the listeners do after their ack: run one command, open the form, refresh App Home.

Shared by the slash command and mentions (one grammar, one set of answers). Authority lives
in the service; this module only translates between Slack and it, and renders with
:mod:`bot.slack.blocks`.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Final, Protocol

from slack_sdk.web.async_client import AsyncWebClient

from bot import metrics
from bot.domain.grammar import (
    Command,
    ExtendGrant,
    Help,
    ListGrants,
    ListResources,
    OpenForm,
    PendingApprovals,
    RequestAccess,
    RevokeGrant,
    SshKeyAdd,
    SshKeyShow,
)
from bot.domain.model import Origin, Status
from bot.errors import GrantbotError, SlackError
from bot.notify import WithoutEnds
from bot.service import RequestResult
from bot.slack import blocks, delivery
from bot.slack.context import SlackDeps
from bot.slack.delivery import Undelivered
from bot.slack.notifier import SlackNotifier
from bot.slack.reply import Reply

log = logging.getLogger(__name__)

#: Slack sends these as channel_name for conversations that have no name.
_UNNAMED: Final = frozenset({"directmessage", "privategroup", "mpdm"})
NO_FORM_HERE: Final = "Type `/access` on its own to open the request form."


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
    policy = deps.service.policy.current.policy
    name = channel_name if channel_name and channel_name not in _UNNAMED else None
    incident = None
    if name is not None and policy.is_incident_channel(name):
        info = await deps.directory.channel_info(channel) if channel else None
        incident = policy.incident_of(name, topic=info.topic if info is not None else "")
    return Origin(
        channel=channel,
        channel_name=name,
        thread_ts=thread_ts,
        incident=incident,
        surface=surface,
    )


async def run_command(
    deps: SlackDeps,
    client: AsyncWebClient,
    command: Command,
    *,
    user: str,
    origin: Origin,
    reply: Reply,
    trigger_id: str | None,
) -> None:
    """Carry out one parsed ``/access`` command for ``user`` and answer privately."""
    service = deps.service
    now = deps.clock
    try:
        message: blocks.Message | None
        match command:
            case OpenForm():
                message = None
                if trigger_id:
                    await open_request_form(
                        deps,
                        client,
                        user=user,
                        trigger_id=trigger_id,
                        channel=origin.channel,
                        channel_name=origin.channel_name,
                    )
                else:
                    message = blocks.info_message(NO_FORM_HERE)
            case RequestAccess():
                result, _ = await file_and_announce(deps, client, user, command, origin)
                message = blocks.request_confirmation(
                    result.grant,
                    result.rule,
                    now=now(),
                    note=result.note,
                    credential_sent=result.credential is not None,
                )
            case ExtendGrant():
                result = await service.request_extension(
                    command.grant_id,
                    user=user,
                    duration_s=command.duration_s,
                    reason=command.reason,
                    tickets=command.tickets,
                    origin=origin,
                )
                message = blocks.request_confirmation(
                    result.grant, result.rule, now=now(), note=result.note
                )
            case RevokeGrant():
                grant = await service.revoke(
                    command.grant_id, user=user, reason=command.reason or None
                )
                message = blocks.grant_status(grant, now=now())
            case ListGrants():
                message = blocks.grants_list(await service.my_grants(user), now=now())
            case PendingApprovals():
                message = blocks.pending_list(await service.waiting_for(user), now=now())
            case ListResources():
                message = blocks.resources_list(await service.requestable(user))
            case Help():
                message = blocks.help_message()
            case SshKeyAdd():
                await service.set_ssh_key(user, command.public_key)
                message = blocks.info_message(
                    "Your SSH public key is registered; certificates will be issued for it."
                )
            case SshKeyShow():
                message = blocks.ssh_key_message(await service.ssh_key(user))
    except Exception as e:
        await reply.error(e)
        return
    if message is not None:
        await reply.send(message)


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


async def file_and_announce(
    deps: SlackDeps, client: AsyncWebClient, user: str, asked: AccessAsked, origin: Origin
) -> tuple[RequestResult, bool]:
    """File ``user``'s request and announce it where it was asked (:func:`announce_request`):
    the result, and whether it was posted there. Raises what the service raises.

    What Slack would not deliver meanwhile (the approvers' copies, the credential DM, the
    post in the channel) is added to the result's ``note``, for the requester's
    confirmation; ``credential`` is None when its DM did not go out."""
    with delivery.watching() as failures:
        result = await deps.service.request_access(
            user=user,
            resource=asked.resource,
            role=asked.role,
            duration_s=asked.duration_s,
            reason=asked.reason,
            tickets=asked.tickets,
            origin=origin,
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
    message = blocks.thread_request(grant, result.rule, now=deps.clock(), note=result.note)
    try:
        resp = await client.chat_postMessage(
            channel=channel, thread_ts=origin.thread_ts, **message.as_kwargs()
        )
    except SlackError as e:
        metrics.record_slack_api_error("chat.postMessage", e)
        log.warning("could not announce %s in %s: %s", grant.id, channel, e.code)
        delivery.record(Undelivered(grant.id, "chat.postMessage", channel, e.code))
        return False
    notifier = deps.service.notifier
    if isinstance(notifier, WithoutEnds):
        notifier = notifier.inner
    if origin.thread_ts is None and isinstance(notifier, SlackNotifier):
        await notifier.remember_origin_root(
            grant.id, str(resp.get("channel") or channel), resp["ts"]
        )
    return True


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
    metadata = blocks.form_metadata(channel_id=channel, channel_name=channel_name)
    await client.views_open(
        trigger_id=trigger_id, view=blocks.request_form(rules, private_metadata=metadata)
    )


async def publish_home(deps: SlackDeps, client: AsyncWebClient, user: str) -> None:
    """views.publish the user's App Home from the store as it is now."""
    try:
        mine = await deps.service.my_grants(user)
        waiting = await deps.service.waiting_for(user)
        view = blocks.app_home(mine=mine, waiting=waiting, now=deps.clock())
        await client.views_publish(user_id=user, view=view)
    except GrantbotError as e:  # SlackError among them
        code = e.code if isinstance(e, SlackError) else str(e)
        log.warning("could not publish App Home for %s: %s", user, code)
