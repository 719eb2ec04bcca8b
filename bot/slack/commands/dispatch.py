"""Carrying out one parsed ``/access`` command (from the slash command or a mention) for the
person who typed it, and answering privately.

Authority lives in the service; this module only maps each command to the service call and
the message that answers it (:mod:`bot.slack.blocks`).
"""

from __future__ import annotations

from typing import Final

from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.model import Origin
from bot.slack.asking import file_and_announce, open_request_form
from bot.slack.blocks import kit, lists, messages
from bot.slack.commands import parsed
from bot.slack.commands.lifecycle import run_lifecycle_command
from bot.slack.context import SlackDeps
from bot.slack.reply import Reply

NO_FORM_HERE: Final = "Type `/access` on its own to open the request form."


async def run_command(
    deps: SlackDeps,
    client: AsyncWebClient,
    command: parsed.Command,
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
        message: kit.Message | None
        match command:
            case parsed.OpenForm():
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
                    message = messages.info_message(NO_FORM_HERE)
            case parsed.RequestAccess():
                result, _ = await file_and_announce(deps, client, user, command, origin)
                message = messages.request_confirmation(
                    result.grant,
                    result.rule,
                    now=now(),
                    note=result.note,
                    credential_sent=result.credential is not None,
                )
            case parsed.ExtendGrant():
                result = await service.request_extension(
                    command.grant_id,
                    user=user,
                    duration_s=command.duration_s,
                    reason=command.reason,
                    tickets=command.tickets,
                    origin=origin,
                )
                message = messages.request_confirmation(
                    result.grant, result.rule, now=now(), note=result.note
                )
            case parsed.RevokeGrant():
                grant = await service.revoke(
                    command.grant_id, user=user, reason=command.reason or None
                )
                message = messages.grant_status(grant, now=now())
            case parsed.ListGrants():
                message = lists.grants_list(
                    await service.my_grants(user),
                    now=now(),
                    for_others=await service.asked_for_others(user),
                )
            case parsed.PendingApprovals():
                message = lists.pending_list(await service.waiting_for(user), now=now())
            case parsed.ListResources():
                message = lists.resources_list(await service.requestable(user))
            case parsed.Help():
                message = lists.help_message()
            case parsed.SshKeyAdd():
                await service.set_ssh_key(user, command.public_key)
                message = messages.info_message(
                    "Your SSH public key is registered; certificates will be issued for it."
                )
            case parsed.SshKeyShow():
                message = lists.ssh_key_message(await service.ssh_key(user))
            case parsed.ExplainAccess() | parsed.RequestFor() | parsed.RequestBundle():
                message = await run_lifecycle_command(
                    deps, client, command, user=user, origin=origin
                )
    except Exception as e:
        await reply.error(e)
        return
    if message is not None:
        await reply.send(message)
