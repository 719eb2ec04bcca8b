"""``/access explain``: the policy's explanation (:mod:`bot.domain.policy.explain`) as a
private Slack answer. People and channels are mentions, so Slack shows their names."""

from __future__ import annotations

import re
from typing import Final

from bot.domain.policy.explain import Explanation, render
from bot.slack.blocks import kit

_ESCAPED_CHANNEL_RE: Final = re.compile(r"&lt;#([CG][A-Z0-9]{2,20})&gt;")


def explain_message(explanation: Explanation, *, now: float, where: str) -> kit.Message:
    """The explanation for the person who asked; ``where`` says where they asked from."""
    lines = render(
        explanation,
        person=lambda u: f"<@{u}>",
        place=lambda c: f"<#{c}>",
        now_text=f"asked {where} now",
    )
    safe = kit.escape_keeping_mentions("\n".join(lines))
    safe = _ESCAPED_CHANNEL_RE.sub(r"<#\1>", safe)
    title, _, body = safe.partition("\n")
    text = f"*{title}*\n{body}" if body else f"*{title}*"
    return kit.Message(text=kit.fallback_text(text), blocks=kit.chunked_sections(text))
