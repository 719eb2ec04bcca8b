"""When a grant is reminded and what its Extend button offers (bot.domain.reminders)."""

from __future__ import annotations

from bot.domain.reminders import extension_offer, needs_no_approval, remind_at


def test_the_reminder_comes_remind_before_the_end() -> None:
    assert remind_at(expires_at=3600.0, activated_at=0.0, remind_before_s=600) == 3000.0


def test_no_reminder_when_off_or_it_would_come_before_the_start() -> None:
    assert remind_at(expires_at=3600.0, activated_at=0.0, remind_before_s=None) is None
    assert remind_at(expires_at=600.0, activated_at=0.0, remind_before_s=600) is None


def test_extend_offers_the_default_capped_by_what_max_duration_still_allows() -> None:
    offer = dict(default_duration_s=1800, max_duration_s=7200, activated_at=0.0)
    assert extension_offer(expires_at=3600.0, **offer) == 1800
    assert extension_offer(expires_at=6600.0, **offer) == 600
    assert extension_offer(expires_at=7200.0, **offer) is None  # nothing left: no button
    assert extension_offer(expires_at=7170.0, **offer) is None  # under a minute: no button


def test_extensions_need_no_approval_only_within_the_key() -> None:
    grant = dict(activated_at=0.0, expires_at=3600.0)
    assert not needs_no_approval(**grant, extend_by_s=1800, extend_without_approval_s=None)
    assert needs_no_approval(**grant, extend_by_s=1800, extend_without_approval_s=5400)
    assert not needs_no_approval(**grant, extend_by_s=1801, extend_without_approval_s=5400)
