"""Modal submissions: the request form and the deny-reason form.

A view must be answered within 3 seconds, and bad input is answered *in* the ack
(``response_action: "errors"``, one message per field) so the modal stays open. The policy
is consulted before the ack (a pure check plus cached user-group lookups, bounded by
:data:`bot.slack.asking.CHECK_BUDGET_S`); filing the request, which posts to approvers,
happens after it.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.ids import is_grant_id
from bot.domain.model import Origin
from bot.domain.policy.rules import RoleRule
from bot.errors import GrantbotError, PolicyDenied
from bot.slack import asking_form, ids
from bot.slack.asking import answer_form, asked_fields, file_and_announce, form_refusal
from bot.slack.blocks import messages
from bot.slack.blocks.kit import Message
from bot.slack.context import SlackDeps
from bot.slack.listeners.actions import user_of
from bot.slack.modals.deny import parse_deny_form
from bot.slack.modals.fields import FieldErrors
from bot.slack.modals.request import RequestInput, parse_request_form, refusal_errors
from bot.slack.modals.request_extras import read_extras
from bot.slack.modals.start_field import start_refusal
from bot.slack.reply import Reply, error_reply

log = logging.getLogger(__name__)


def _values(body: dict[str, Any]) -> dict[str, Any]:
    state = (body.get("view") or {}).get("state") or {}
    values = state.get("values")
    return values if isinstance(values, dict) else {}


def register(app: AsyncApp, deps: SlackDeps) -> None:
    @app.view(ids.REQUEST_FORM)
    async def request_submitted(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, request: AsyncBoltRequest
    ) -> None:
        user = user_of(body)
        extras = read_extras(_values(body))  # issue 13: a bundle, or for someone else
        if isinstance(extras, dict):
            await ack(response_action="errors", errors=extras)
            return
        parsed = parse_request_form(
            extras.values, private_metadata=str((body.get("view") or {}).get("private_metadata"))
        )
        if isinstance(parsed, dict):
            await ack(response_action="errors", errors=parsed)
            return
        if asking_form.handles(extras, user=user):
            refused = await asking_form.precheck(deps, user, parsed, extras)
            await ack(response_action="errors", errors=refused) if refused else await ack()
            if not refused:
                asking_form.later(deps, request, client, user, parsed, extras)
            return
        refusal = await start_refusal(
            deps, user, parsed.start, resource=parsed.resource, role=parsed.role
        ) or await policy_refusal(deps, user, parsed)
        if refusal is not None:
            await ack(response_action="errors", errors=refusal)
            return
        await ack()
        deps.later(request, file_request(deps, client, user, parsed), name="form-request")

    @app.view(ids.DENY_FORM)
    async def deny_submitted(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, request: AsyncBoltRequest
    ) -> None:
        reason = parse_deny_form(_values(body))
        if isinstance(reason, dict):
            await ack(response_action="errors", errors=reason)
            return
        await ack()
        grant_id = str((body.get("view") or {}).get("private_metadata", ""))
        deps.later(request, deny(deps, client, user_of(body), grant_id, reason), name="form-deny")


async def policy_refusal(deps: SlackDeps, user: str, form: RequestInput) -> dict[str, str] | None:
    """The policy's refusal as a field error, or None (also when the check ran out of time
    or failed otherwise: the service checks again when the request is filed)."""

    def errors(e: PolicyDenied) -> FieldErrors:
        try:
            rule: RoleRule | None = deps.service.rule_for(form.resource, form.role)
        except PolicyDenied:
            rule = None
        return refusal_errors(rule, form, str(e))

    return await form_refusal(deps.service.check_request(user=user, **asked_fields(form)), errors)


async def file_request(
    deps: SlackDeps, client: AsyncWebClient, user: str, form: RequestInput
) -> None:
    """File the request and confirm privately where the form was opened (else by DM)."""

    async def file(origin: Origin) -> Message:
        if form.ssh_public_key is not None:
            await deps.service.set_ssh_key(user, form.ssh_public_key)
        result, _ = await file_and_announce(deps, client, user, form, origin)
        return messages.request_confirmation(
            result.grant,
            result.rule,
            now=deps.clock(),
            note=result.note,
            credential_sent=result.credential is not None,
        )

    await answer_form(deps, client, user, form, file)


async def deny(
    deps: SlackDeps, client: AsyncWebClient, user: str, grant_id: str, reason: str
) -> None:
    """Deny as ``user``; the service decides whether they may (the modal proves nothing)."""
    reply = Reply(client=client, user=user)
    try:
        if not is_grant_id(grant_id):
            raise PolicyDenied("that form does not name a request grantbot knows")
        grant = await deps.service.deny(grant_id, user=user, reason=reason or None)
    except Exception as e:
        if not isinstance(e, GrantbotError):
            log.error("deny failed unexpectedly", exc_info=e)
        await reply.send(error_reply(e))
        return
    await reply.send(messages.grant_status(grant, now=deps.clock()))
