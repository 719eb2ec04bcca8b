"""The request form's issue-13 paths: a bundle chosen among the targets, or a request for
someone else ("Request for"). The core form (:mod:`bot.slack.listeners.views`) hands these
here after reading the fields; the answers are the same as the commands'."""

from __future__ import annotations

import logging

from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.model import Origin
from bot.slack import ids
from bot.slack.asking import answer_form, asked_fields, form_refusal
from bot.slack.blocks import kit
from bot.slack.bundles import file_bundle
from bot.slack.commands.lifecycle import file_for, for_confirmation
from bot.slack.commands.parsed import RequestAccess, RequestBundle, RequestFor
from bot.slack.context import SlackDeps
from bot.slack.modals.fields import short
from bot.slack.modals.request import RequestInput
from bot.slack.modals.request_extras import Extras

log = logging.getLogger(__name__)


def handles(extras: Extras, *, user: str) -> bool:
    """True when the submission is a bundle or a request for someone else."""
    return extras.bundle is not None or extras.beneficiary not in (None, user)


async def precheck(
    deps: SlackDeps, user: str, form: RequestInput, extras: Extras
) -> dict[str, str] | None:
    """A refusal as field errors before the ack (None: go ahead, or no time to tell)."""
    if extras.bundle is not None:  # an unknown bundle, an item they may not ask: on the field
        return await form_refusal(
            deps.service.check_bundle(
                user=user,
                bundle=extras.bundle,
                duration_s=form.duration_s,
                reason=form.reason,
                tickets=form.tickets,
            ),
            lambda e: {ids.FORM_TARGET_BLOCK: short(str(e))},
        )
    if extras.beneficiary is None:
        return None
    return await form_refusal(
        deps.service.check_request_for(
            user=user, beneficiary=extras.beneficiary, **asked_fields(form)
        ),
        lambda e: {ids.FORM_FOR_BLOCK: short(str(e))},
    )


async def file_from_form(
    deps: SlackDeps, client: AsyncWebClient, user: str, form: RequestInput, extras: Extras
) -> None:
    """File the bundle or the request for someone else; confirm privately (else by DM)."""

    async def file(origin: Origin) -> kit.Message:
        if extras.bundle is not None:
            bundle = RequestBundle(extras.bundle, form.duration_s, form.reason, form.tickets)
            return await file_bundle(deps, user=user, command=bundle, origin=origin)
        assert extras.beneficiary is not None
        asked = RequestAccess(form.resource, form.role, form.duration_s, form.reason, form.tickets)
        command = RequestFor(beneficiary=extras.beneficiary, request=asked)
        result = await file_for(deps, client, user=user, command=command, origin=origin)
        return for_confirmation(result, user=user, now=deps.clock())

    await answer_form(deps, client, user, form, file)


def later(
    deps: SlackDeps,
    request: AsyncBoltRequest,
    client: AsyncWebClient,
    user: str,
    form: RequestInput,
    extras: Extras,
) -> None:
    deps.later(request, file_from_form(deps, client, user, form, extras), name="form-request")
