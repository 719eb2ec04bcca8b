"""``grantbot policy explain``: what the policy would do with one person's request, from the
code the service decides with (:meth:`bot.service.GrantService.explain`).

With SLACK_BOT_TOKEN set, Slack is asked as the bot asks it: user groups expand, on-call
emails map to Slack users and people are named (users.info); without it, user groups count
as empty and people are shown by id. On-call sources are the policy's, asked now (or at
``--at``). The day's auto-approval count is read from grantbot's Redis.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from bot.config import Settings
from bot.errors import UsageError

EXPLAIN_HELP = "what the policy would do with a request: may they ask, who approves, auto-approval"


def add_explain_command(policy_commands: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """``policy explain`` under the ``policy`` subcommands."""
    ex = policy_commands.add_parser("explain", help=EXPLAIN_HELP)
    ex.add_argument("--user", required=True, type=_named, help="Slack user id of the person asking")
    ex.add_argument("--resource", required=True, type=_named)
    ex.add_argument("--role", help="default: the resource's default (or only) role")
    ex.add_argument("--duration", help="how long they would ask for (default: the role's)")
    ex.add_argument(
        "--channel", help="the channel name (without #) they would ask from, e.g. inc-42"
    )
    ex.add_argument("--at", help="when: ISO time (UTC if no zone) or epoch seconds; default now")
    ex.set_defaults(handler=cmd_policy_explain)


def _named(text: str) -> str:
    """An argument that names someone or something: not empty (a usage error, exit 2)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text.strip()


def parse_at(text: str | None, *, now: float) -> float:
    """``--at``: an ISO date/time (UTC when no zone is given) or epoch seconds."""
    if text is None:
        return now
    raw = text.strip()
    with contextlib.suppress(ValueError):
        return float(raw)
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise UsageError(
            f'--at "{raw[:40]}" is not a time; use 2026-12-01T09:00Z or epoch seconds'
        ) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


@contextlib.asynccontextmanager
async def _slack(settings: Settings) -> AsyncIterator[tuple[Any, Any]]:
    """The Slack client and directory when a bot token is configured, else (None, None)."""
    if settings.slack_bot_token is None:
        yield None, None
        return
    from bot.slack.api import SlackClient
    from bot.slack.directory import SlackDirectory

    client = SlackClient(
        token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url
    )
    try:
        yield client, SlackDirectory(client)
    finally:
        if client.session is not None:
            await client.session.close()


async def cmd_policy_explain(args: argparse.Namespace, settings: Settings) -> int:
    from bot.domain.duration import parse_duration
    from bot.domain.policy.explain import render
    from bot.oncall.lookup import PolicyOnCallLookup, slack_lookup_by_email
    from bot.policy_holder import PolicyHolder
    from bot.service import GrantService, ServiceContext
    from bot.wiring import open_store

    now = datetime.now(tz=UTC).timestamp()
    at = parse_at(args.at, now=now)
    duration_s = parse_duration(args.duration) if args.duration else None
    policy = PolicyHolder.load(settings.policy_path)
    incident = policy.current.policy.incident_of(args.channel.lstrip("#")) if args.channel else None
    async with open_store(settings) as store, _slack(settings) as (client, directory):

        async def no_slack_user(email: str) -> str | None:
            return None

        oncall = PolicyOnCallLookup(
            policy,
            env=os.environ,
            lookup_slack_user_by_email=(
                slack_lookup_by_email(client) if client is not None else no_slack_user
            ),
        )
        service = GrantService(
            ServiceContext(
                store=store, policy=policy, usergroups=directory, oncall=oncall, clock=lambda: at
            )
        )
        try:
            explanation = await service.explain(
                user=args.user,
                resource=args.resource,
                role=args.role,
                at=at,
                duration_s=duration_s,
                incident=incident,
            )
            names = await _names(directory, {args.user, *explanation.approvers})
        finally:
            await service.aclose()
    when = datetime.fromtimestamp(at, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    where = f"from #{args.channel.lstrip('#')}" if args.channel else "outside any channel"
    incident_text = f" (incident {incident})" if incident else ""
    lines = render(
        explanation,
        person=lambda u: names.get(u, u),
        place=lambda c: c,
        now_text=f"asked {where}{incident_text} at {when}",
    )
    print("\n".join(lines))
    return 0


async def _names(directory: Any, users: set[str]) -> dict[str, str]:
    """``U123`` -> ``Dana Lee (U123)`` for each user Slack knows; ids alone without Slack."""
    if directory is None:
        return {}
    named: dict[str, str] = {}
    for user in sorted(users):
        info = await directory.user_info(user) or {}
        real = str(info.get("real_name") or info.get("name") or "")
        if real:
            named[user] = f"{real} ({user})"
    return named
