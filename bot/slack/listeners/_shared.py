"""What the listeners do after their ack: run one command, open the form, refresh App Home.

Shared by the slash command and mentions (one grammar, one set of answers). Authority lives
in the service; this module only translates between Slack and it, and renders with
:mod:`bot.slack.blocks`.
"""

from __future__ import annotations

import logging
from typing import Final

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

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
from bot.domain.model import Origin
from bot.errors import GrantbotError
from bot.slack import blocks
from bot.slack.context import SlackDeps
from bot.slack.reply import Reply

log = logging.getLogger(__name__)

#: Slack sends these as channel_name for conversations that have no name.
_UNNAMED: Final = frozenset({"directmessage", "privategroup", "mpdm"})
NO_FORM_HERE: Final = "Type `/access` on its own to open the request form."


def origin_for(
    deps: SlackDeps,
    *,
    surface: str,
    channel: str | None,
    channel_name: str | None,
    thread_ts: str | None = None,
) -> Origin:
    """Where a request comes from; an incident when the policy's incident_channels matches
    the channel's name."""
    name = channel_name if channel_name and channel_name not in _UNNAMED else None
    incident = None
    if name is not None and deps.service.policy.current.policy.is_incident_channel(name):
        incident = name
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
                result = await service.request_access(
                    user=user,
                    resource=command.resource,
                    role=command.role,
                    duration_s=command.duration_s,
                    reason=command.reason,
                    tickets=command.tickets,
                    origin=origin,
                )
                message = blocks.request_confirmation(result.grant, result.rule, now=now())
            case ExtendGrant():
                result = await service.request_extension(
                    command.grant_id,
                    user=user,
                    duration_s=command.duration_s,
                    reason=command.reason,
                    tickets=command.tickets,
                    origin=origin,
                )
                message = blocks.request_confirmation(result.grant, result.rule, now=now())
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
    policy) and SlackApiError when Slack refuses the view (e.g. the trigger expired).
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
    except (SlackApiError, SlackClientError, GrantbotError) as e:
        code = e.response.get("error") if isinstance(e, SlackApiError) else str(e)
        log.warning("could not publish App Home for %s: %s", user, code)
