"""The lifecycle's messages (issue 13) are valid Block Kit and say what happened: the
reminder's buttons carry only the grant id; a scheduled grant shows its start in the zone
it was written in; a start that could not happen says so."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.domain.model import Status
from bot.slack import ids
from bot.slack.blocks import reminders
from bot.slack.blocks.describe import grant_line, outcome_text, summary_fields
from bot.slack.blocks.home import app_home
from tests.factories import NOW
from tests.unit.blockkit import (
    active_grant,
    all_text,
    buttons_of,
    message_ok,
    pending_grant,
    view_ok,
)

BERLIN = datetime(2026, 12, 1, 9, 0, tzinfo=ZoneInfo("Europe/Berlin")).timestamp()


def test_the_reminder_offers_extend_and_done_with_only_the_grant_id() -> None:
    grant = active_grant()
    message = reminders.reminder(grant, offer_s=1800, now=NOW)
    message_ok(message)
    assert [
        (b["action_id"], b["text"]["text"], b["value"]) for b in buttons_of(message.blocks)
    ] == [
        (ids.REMIND_EXTEND, "Extend +30m", grant.id),
        (ids.REMIND_DONE, "I'm done", grant.id),
    ]


def test_no_extend_button_without_an_offer() -> None:
    message = reminders.reminder(active_grant(), offer_s=None, now=NOW)
    message_ok(message)
    assert [b["action_id"] for b in buttons_of(message.blocks)] == [ids.REMIND_DONE]


def test_the_acted_on_reminder_has_no_buttons() -> None:
    message = reminders.reminder_done("g-abcdefgh", "extended +30m")
    message_ok(message)
    assert buttons_of(message.blocks) == [] and "extended +30m" in message.text


def test_a_scheduled_grant_shows_its_start_in_its_zone() -> None:
    grant = pending_grant(starts_at=BERLIN, start_tz="Europe/Berlin").model_copy(
        update={"status": Status.SCHEDULED, "decided_by": "U0BOB", "approved_at": NOW}
    )
    shown = "2026-12-01 09:00 CET (Europe/Berlin)"
    assert shown in outcome_text(grant, now=NOW)
    assert shown in all_text(summary_fields(grant, now=NOW))
    assert grant_line(grant, now=NOW).startswith(":calendar:")
    notice = reminders.scheduled_notice(grant)
    message_ok(notice)
    assert shown in notice.text
    view_ok(app_home(mine=[grant], waiting=[], now=NOW), "home")
    assert grant.id in all_text(app_home(mine=[grant], waiting=[], now=NOW))


def test_a_start_that_could_not_happen_says_why_not_that_nobody_decided() -> None:
    grant = pending_grant(starts_at=BERLIN).model_copy(
        update={
            "status": Status.TIMED_OUT,
            "approved_at": NOW,
            "decided_by": "U0BOB",
            "end_reason": "its start window closed before it could be issued",
        }
    )
    text = outcome_text(grant, now=NOW)
    assert "start window closed" in text and "nobody decided" not in text


def test_a_persons_decision_on_an_extension_is_said_on_the_reminder() -> None:
    base = pending_grant(kind="extension", parent_id="g-parent00", duration_s=1800)
    denied = base.model_copy(
        update={"status": Status.DENIED, "decided_by": "U0BOB", "end_reason": "not <now>"}
    )
    assert reminders.extension_decided(denied) == (
        f"extension `{base.id}` (+30m) was denied by <@U0BOB>: not &lt;now&gt;."
    )
    approved = base.model_copy(update={"status": Status.APPROVED, "decided_by": "U0CAROL"})
    assert "was approved by <@U0CAROL>" in reminders.extension_decided(approved)
