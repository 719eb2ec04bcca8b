"""The ``grantbot`` command line: serve, demo, policy check, grants, revoke-all, audit, report.

Each subcommand is a small function. A failure prints one line to stderr and exits non-zero
(1 for a failed check or operation, 2 for bad usage); never a traceback. ``audit`` and
``report`` live in ``bot.cli.audit`` and ``bot.cli.report``; what they share with this module
is in ``bot.cli.common``, so no subcommand module imports this one.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import getpass
import json
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn

from bot.config import Settings, load_settings
from bot.domain.duration import format_duration, format_utc
from bot.domain.model import Grant, Status
from bot.errors import GrantbotError

if TYPE_CHECKING:
    from bot.store.audit_feed import AuditFeed

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

Handler = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad usage as one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see --help)\n")


def _operator(args: argparse.Namespace) -> str:
    name = args.operator or getpass.getuser()
    return f"cli:{name}"


def grant_row(g: Grant, *, now: float) -> list[str]:
    left = format_duration(g.remaining_s(now)) if g.status is Status.ACTIVE else "-"
    return [
        g.id,
        g.status.value,
        g.requester,
        g.resource,
        g.role,
        format_duration(g.duration_s),
        format_utc(g.expires_at, missing="-"),
        left,
        g.deployment.id if g.deployment is not None else "-",
    ]


GRANT_HEADERS = [
    *("id", "state", "requester", "resource", "role", "duration", "expires", "left"),
    "deployment",
]


# -- handlers ------------------------------------------------------------------------------


async def cmd_policy_check(args: argparse.Namespace, settings: Settings) -> int:
    from bot.api.auth import client_token_issues
    from bot.domain.policy.summary import format_summary
    from bot.policy_loader import load_policy

    path = args.path or settings.policy_path
    try:
        loaded = load_policy(path)
    except GrantbotError as e:
        issues = getattr(e, "issues", None)
        for issue in issues or [e]:
            print(str(issue), file=sys.stderr)
        return EXIT_FAILED
    # The clients' tokens as this environment holds them: never shown, only compared.
    token_errors, token_warnings = client_token_issues(loaded, environ=os.environ)
    for issue in token_errors:
        print(str(issue), file=sys.stderr)
    if token_errors:
        return EXIT_FAILED
    loaded = dataclasses.replace(loaded, warnings=[*loaded.warnings, *token_warnings])
    for warning in loaded.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(format_summary(loaded), end="")
    return EXIT_OK


async def cmd_grants_list(args: argparse.Namespace, settings: Settings) -> int:
    from bot.tables import format_table
    from bot.wiring import open_store

    status = Status(args.state.upper()) if args.state else None
    async with open_store(settings) as store:
        grants = await store.list_grants(user=args.user, status=status, limit=args.limit)
    now = datetime.now(tz=UTC).timestamp()
    if args.format == "json":
        for g in grants:
            print(g.model_dump_json())
    elif grants:
        print(format_table(GRANT_HEADERS, [grant_row(g, now=now) for g in grants]))
    else:
        print("no grants match")
    return EXIT_OK


async def cmd_grants_show(args: argparse.Namespace, settings: Settings) -> int:
    from bot.wiring import open_store

    async with open_store(settings) as store:
        grant = await store.get(args.grant_id)
    print(json.dumps(grant.model_dump(mode="json"), indent=2, sort_keys=True))
    return EXIT_OK


#: What the CLI says about Slack after ending grants (it has no Slack of its own: a running
#: `grantbot serve` announces every end from the audit stream).
SLACK_BY_RUNNING_BOT = "Slack: the running grantbot serve is updating the messages about {it}."
SLACK_WHEN_A_BOT_STARTS = (
    "Slack: no grantbot serve is running; the messages about {it} will be updated when one starts."
)


async def _slack_news(feed: AuditFeed, *, plural: bool) -> str:
    """Whether a running bot tells Slack of what this command ended, or one will."""
    template = SLACK_BY_RUNNING_BOT if await feed.readers_alive() else SLACK_WHEN_A_BOT_STARTS
    return template.format(it="them" if plural else "it")


async def cmd_grants_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from bot.wiring import open_service

    async with open_service(settings) as service:
        feed = service.store.audit_feed()
        was_over = (await service.store.get(args.grant_id)).terminal
        await feed.ensure_group()  # so even a first `grantbot serve` reads this end
        if args.force:
            grant = await service.force_close(
                args.grant_id, operator=_operator(args), reason=args.reason
            )
        else:
            grant = await service.revoke_as_operator(
                args.grant_id, operator=_operator(args), reason=args.reason
            )
        news = None if was_over else await _slack_news(feed, plural=False)
    print(f"{grant.id}: {grant.status.value}")
    if news:  # an end already made changes nothing in Slack
        print(news)
    return EXIT_OK if grant.status in (Status.REVOKED, Status.EXPIRED) else EXIT_FAILED


async def cmd_revoke_all(args: argparse.Namespace, settings: Settings) -> int:
    from bot.wiring import open_service

    async with open_service(settings) as service:
        feed = service.store.audit_feed()
        await feed.ensure_group()  # so even a first `grantbot serve` reads these ends
        results = await service.revoke_all(
            user=args.user, operator=_operator(args), reason=args.reason
        )
        news = await _slack_news(feed, plural=True) if results else None
    failed = [
        g
        for g in results
        if g.status not in (Status.REVOKED, Status.EXPIRED, Status.CANCELLED, Status.FAILED)
    ]
    for g in results:
        print(f"{g.id}: {g.status.value} ({g.resource} {g.role})")
    print(f"{len(results)} grant(s) of {args.user} ended; {len(failed)} still need attention")
    if news:
        print(news)
    return EXIT_OK if not failed else EXIT_FAILED


async def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from bot.server import serve

    await serve(settings, socket_mode=args.socket_mode, dev=args.dev)
    return EXIT_OK


async def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from bot.demo import run_demo

    return await run_demo(settings)


async def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """`make run`: serve when Slack credentials are set, otherwise the narrated demo."""
    if settings.slack_configured:
        # `make run` is a try-out on a developer's machine: an embedded Redis is fine there.
        return await cmd_serve(
            argparse.Namespace(socket_mode=settings.slack_app_token is not None, dev=True),
            settings,
        )
    return await cmd_demo(args, settings)


# -- parser --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="grantbot", description="Just-in-time access from Slack.")
    p.add_argument("--debug", action="store_true", help="log at DEBUG and show tracebacks")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("serve", help="serve Slack (HTTP at /slack/events, or Socket Mode)")
    s.add_argument("--socket-mode", action="store_true", help="connect out with SLACK_APP_TOKEN")
    s.add_argument(
        "--dev",
        action="store_true",
        help="without REDIS_URL, use localhost:6379 or start an embedded redis-server (its "
        "data lives and dies with this machine: never in production)",
    )
    s.set_defaults(handler=cmd_serve)

    d = sub.add_parser("demo", help="a narrated request -> approval -> credential -> revocation")
    d.set_defaults(handler=cmd_demo)
    r = sub.add_parser("run", help="serve if Slack is configured, else the demo (`make run`)")
    r.set_defaults(handler=cmd_run)

    pol = sub.add_parser("policy", help="policy file commands").add_subparsers(
        dest="policy_command", required=True, parser_class=_Parser
    )
    chk = pol.add_parser("check", help="validate a policy file and print its summary")
    chk.add_argument("path", nargs="?", help="default: $GRANTBOT_POLICY or ./policies.yaml")
    chk.set_defaults(handler=cmd_policy_check)
    from bot.cli.explain import add_explain_command

    add_explain_command(pol, _Parser)

    gr = sub.add_parser("grants", help="inspect and end grants").add_subparsers(
        dest="grants_command", required=True, parser_class=_Parser
    )
    ls = gr.add_parser("list", help="list requests and grants, newest first")
    ls.add_argument("--user", help="Slack user id of the requester")
    ls.add_argument("--state", choices=[s.value.lower() for s in Status], type=str.lower)
    ls.add_argument("--limit", type=int, default=200)
    ls.add_argument("--format", choices=["table", "json"], default="table")
    ls.set_defaults(handler=cmd_grants_list)
    show = gr.add_parser("show", help="one grant as JSON")
    show.add_argument("grant_id")
    show.set_defaults(handler=cmd_grants_show)
    rv = gr.add_parser("revoke", help="end a grant now (audited)")
    rv.add_argument("grant_id")
    rv.add_argument("--reason", default="revoked by an operator")
    rv.add_argument("--force", action="store_true", help="close out a REVOKE_FAILED grant")
    rv.add_argument("--operator", help="who is acting (default: your login name)")
    rv.set_defaults(handler=cmd_grants_revoke)

    ra = sub.add_parser("revoke-all", help="offboarding kill switch: end every grant of a user")
    ra.add_argument("--user", required=True, help="Slack user id")
    ra.add_argument("--reason", required=True)
    ra.add_argument("--operator", help="who is acting (default: your login name)")
    ra.set_defaults(handler=cmd_revoke_all)

    from bot.cli.audit import add_audit_commands
    from bot.cli.report import add_report_command
    from bot.cli.request import add_request_command  # issue 16: the pipelines' client

    add_audit_commands(sub, _Parser)
    add_report_command(sub)
    add_request_command(sub, _Parser)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        from bot.logs import configure_logging

        configure_logging(level="DEBUG" if args.debug else settings.log_level)
        handler: Handler = args.handler
        return asyncio.run(handler(args, settings))
    except GrantbotError as e:
        print(f"grantbot: {e}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # one line, never a traceback, unless asked for
        if args.debug:
            raise
        logging.getLogger("bot.cli").debug("unexpected error", exc_info=True)
        print(f"grantbot: unexpected {type(e).__name__}: {e} (rerun with --debug)", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
