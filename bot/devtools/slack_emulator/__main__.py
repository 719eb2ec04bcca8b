"""``python -m bot.devtools.slack_emulator``: the emulator as its own process.

It prints ``SLACK_API_URL``, ``SLACK_EMULATOR_URL`` (the root, for :class:`EmulatorControl`),
``SLACK_BOT_TOKEN`` and ``SLACK_APP_TOKEN`` once it listens, and serves until SIGINT/SIGTERM.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from bot.devtools.loopback import read_json_file, run_standalone, standalone_parser
from bot.devtools.slack_emulator.directory import (
    DEFAULT_BOT_TOKEN,
    DEFAULT_TEAM_ID,
    FakeChannel,
    FakeUser,
)
from bot.devtools.slack_emulator.server import SlackEmulator
from bot.devtools.socket_mode import DEFAULT_APP_TOKEN

JSON = dict[str, Any]


def main(argv: Sequence[str] | None = None) -> int:
    parser = standalone_parser(
        "A fake Slack Web API for tests and demos.", prog="python -m bot.devtools.slack_emulator"
    )
    parser.add_argument("--bot-token", default=DEFAULT_BOT_TOKEN)
    parser.add_argument("--app-token", default=DEFAULT_APP_TOKEN, help="for Socket Mode")
    parser.add_argument("--team-id", default=DEFAULT_TEAM_ID)
    parser.add_argument("--enterprise-id", help="the Enterprise Grid organisation, if any")
    parser.add_argument(
        "--directory", help="JSON file: {users: [...], usergroups: {...}, channels: [...]}"
    )
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="answer every Web API call and response_url post this late (Slack: ~150)",
    )
    opts = parser.parse_args(argv)
    data: JSON = read_json_file(opts.directory)
    emulator = SlackEmulator(
        users=[FakeUser(**u) for u in data["users"]] if "users" in data else None,
        usergroups=data.get("usergroups"),
        channels=[FakeChannel(**c) for c in data["channels"]] if "channels" in data else None,
        bot_token=opts.bot_token,
        app_token=opts.app_token,
        team_id=opts.team_id,
        enterprise_id=opts.enterprise_id,
        host=opts.host,
        port=opts.port,
        latency_s=opts.latency_ms / 1000,
    )

    def lines() -> list[str]:
        return [
            f"SLACK_API_URL={emulator.api_url}",
            f"SLACK_EMULATOR_URL={emulator.base_url}",
            f"SLACK_BOT_TOKEN={emulator.bot_token}",
            f"SLACK_APP_TOKEN={emulator.socket_mode.app_token}",
        ]

    return run_standalone(emulator, lines)


if __name__ == "__main__":
    sys.exit(main())
