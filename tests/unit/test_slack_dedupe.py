"""Slack deliveries are named so that a retry or replay of one is known as the same."""

from __future__ import annotations

from bot.slack.dedupe import delivery_token


def test_delivery_tokens() -> None:
    """Events are keyed by event_id (so Slack's retries match); anything else by its body."""
    event = {"type": "event_callback", "event_id": "Ev1", "event": {}}
    assert delivery_token(event, "raw one") == delivery_token(event, "raw two") == "event:Ev1"
    assert delivery_token({}, "a=1") == delivery_token({}, "a=1")
    assert delivery_token({}, "a=1") != delivery_token({}, "a=2")
    assert delivery_token({"x": 1}, "").startswith("body:")
