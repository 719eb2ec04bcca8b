"""`grantbot demo` (what `make run` does without Slack credentials) tells the whole story and
exits 0 by itself."""

from __future__ import annotations

import io

from bot.config import Settings
from bot.demo import run_demo


async def test_the_demo_runs_to_the_end_and_narrates_each_step() -> None:
    """With a 6-second grant: request, approval, DM-only credential, a real login, the
    reminder with Extend clicked (applied without approval), revocation on time after the
    extension, the failed login after it, and how to connect a real workspace."""
    out = io.StringIO()
    assert await run_demo(Settings.model_validate({}), out=out, grant_s=6) == 0
    text = out.getvalue()
    for needle in (
        "/access request cache read 6s",
        "3 copies",
        "Bob clicks Approve",
        "-character password (shown only in Alice's DM)",
        "The password is in 1 of",
        "chat.postMessage to U0ALICE",
        "AUTH ok",
        "NOPERM",
        "the grant is EXPIRED",
        "WRONGPASS",
        "4s before the end, Alice is reminded by DM",
        "[Extend +6s] [I'm done]",
        "Alice clicks [Extend +6s]",
        "extended +6s by @U0ALICE",
        "Waiting for the grant to run out (12s from approval)",
        "REQUEST -> APPROVE -> ISSUE -> REQUEST -> AUTO_APPROVE -> EXTEND -> EXTEND -> EXPIRE",
        "manifests/slack-app.yaml",
    ):
        assert needle in text, needle
