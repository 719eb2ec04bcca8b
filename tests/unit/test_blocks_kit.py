"""Block Kit's primitives and text helpers."""

from __future__ import annotations

from bot.slack.blocks import kit


def test_truncate_names_the_cut() -> None:
    """truncate keeps short text and ends cut text with an ellipsis within the limit."""
    assert kit.truncate("abc", 5) == "abc"
    assert kit.truncate("abcdef", 5) == "abcd…"
    assert kit.truncate("abc", 0) == ""
