"""The App Home tab: what it lists, the buttons on each item, Slack's 100-block limit."""

from __future__ import annotations

from bot.slack import ids
from bot.slack.blocks import home, kit
from tests.factories import NOW
from tests.unit.blockkit import (
    active_grant,
    all_text,
    buttons_of,
    pending_grant,
    view_ok,
)


def test_app_home_lists_mine_and_waiting_with_actions() -> None:
    """Home shows my active grants with time left and Revoke, my pending with Cancel, and
    requests waiting for me with Approve/Deny."""
    active = active_grant()
    pending = pending_grant()
    waiting = pending_grant(requester="U0ALICE")
    view = home.app_home(mine=[active, pending], waiting=[waiting], now=NOW + 60)
    view_ok(view, "home")
    text = all_text(view["blocks"])
    assert "29m left" in text
    actions = [(b["action_id"], b.get("value")) for b in buttons_of(view["blocks"])]
    assert (ids.REVOKE, active.id) in actions
    assert (ids.CANCEL, pending.id) in actions
    assert (ids.APPROVE, waiting.id) in actions and (ids.DENY, waiting.id) in actions
    block_ids = [b["block_id"] for b in view["blocks"] if "block_id" in b]
    assert len(block_ids) == len(set(block_ids)), "block ids must be unique in a view"


def test_app_home_fits_100_blocks_however_many_grants() -> None:
    """Hundreds of grants still give a valid home tab that says it was cut."""
    many = [pending_grant() for _ in range(150)]
    view = home.app_home(mine=many, waiting=many, now=NOW)
    view_ok(view, "home")
    assert len(view["blocks"]) == kit.VIEW_BLOCKS_MAX
    assert "/access list" in all_text(view["blocks"][-1])


def test_empty_home_is_valid() -> None:
    """A user with nothing still gets a valid home tab with the Request access button."""
    view = home.app_home(mine=[], waiting=[], now=NOW)
    view_ok(view, "home")
    assert [b["action_id"] for b in buttons_of(view["blocks"])] == [ids.OPEN_FORM]
