"""Carrying out issue 13's ``/access`` commands: ``explain``, ``request for @x`` and
``request bundle``. Called by :func:`bot.slack.commands.dispatch.run_command`, which answers
privately with the message returned (or the error raised)."""

from __future__ import annotations

import logging

from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.model import Origin
from bot.errors import SlackError
from bot.service import RequestResult
from bot.slack import delivery
from bot.slack.asking import announce_request, asked_fields
from bot.slack.blocks import kit, messages
from bot.slack.blocks.explain import explain_message
from bot.slack.commands import parsed
from bot.slack.context import SlackDeps

log = logging.getLogger(__name__)


def _where(origin: Origin) -> str:
    if origin.channel and origin.channel_name:
        return f"from #{origin.channel_name}" + (
            f" (incident {origin.incident})" if origin.incident else ""
        )
    return "outside an incident channel"


async def run_lifecycle_command(
    deps: SlackDeps,
    client: AsyncWebClient,
    command: parsed.ExplainAccess | parsed.RequestFor | parsed.RequestBundle,
    *,
    user: str,
    origin: Origin,
) -> kit.Message:
    """The answer to one of these commands for ``user``; raises what the service raises."""
    match command:
        case parsed.ExplainAccess():
            explanation = await deps.service.explain(
                user=user,
                resource=command.resource,
                role=command.role,
                at=deps.clock(),
                incident=origin.incident,
            )
            return explain_message(explanation, now=deps.clock(), where=_where(origin))
        case parsed.RequestFor():
            result = await file_for(deps, client, user=user, command=command, origin=origin)
            return for_confirmation(result, user=user, now=deps.clock())
        case parsed.RequestBundle():
            from bot.slack.bundles import file_bundle

            return await file_bundle(deps, user=user, command=command, origin=origin)


def for_confirmation(result: RequestResult, *, user: str, now: float) -> kit.Message:
    """The confirmation of a request ``user`` filed, saying whose it is when not theirs."""
    grant = result.grant
    message = messages.request_confirmation(
        grant, result.rule, now=now, note=result.note, credential_sent=False
    )
    if grant.requester != user:
        whom = kit.user(grant.requester)
        message.blocks.append(
            kit.context(f"Asked on behalf of {whom}: the credential goes to their DM only.")
        )
    return message


async def file_for(
    deps: SlackDeps,
    client: AsyncWebClient,
    *,
    user: str,
    command: parsed.RequestFor,
    origin: Origin,
) -> RequestResult:
    """File ``command`` on its beneficiary's behalf, announce it where it was asked and tell
    the beneficiary by DM (their credential will come there)."""
    with delivery.watching() as failures:
        result = await deps.service.request_for(
            user=user,
            beneficiary=command.beneficiary,
            origin=origin,
            **asked_fields(command.request),
        )
        await announce_request(deps, client, result, origin)
    if command.beneficiary != user:
        await _tell_beneficiary(client, result, asker=user)
    told = delivery.note(failures, result.grant, for_requester=False)
    if told is not None:
        from dataclasses import replace

        result = replace(result, note=f"{result.note}\n{told}" if result.note else told)
    return result


async def _tell_beneficiary(client: AsyncWebClient, result: RequestResult, *, asker: str) -> None:
    grant = result.grant
    text = (
        f":inbox_tray: {kit.user(asker)} asked for {kit.escape(grant.resource)} "
        f"{kit.escape(grant.role)} on your behalf (`{grant.id}`). Your credential will come "
        "here, and only here, once it is approved."
    )
    try:
        await client.chat_postMessage(channel=grant.requester, text=text)
    except SlackError as e:
        log.warning("could not tell %s of %s: %s", grant.requester, grant.id, e.code)
