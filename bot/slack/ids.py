"""Every id grantbot puts on a Slack surface, named once.

Listeners register on these constants and builders emit them, so a renamed button cannot
silently stop working. Slack caps ``action_id``, ``block_id`` and ``callback_id`` at 255
characters; all of these are far shorter. None of them carries authority: a click says
*which* button was pressed, and the service decides from the policy and the store whether
the person who pressed it may do that.
"""

from __future__ import annotations

from typing import Final

#: The slash command (manifests/slack-app.yaml declares it).
COMMAND: Final = "/access"

# -- Events API event types grantbot listens to (the manifests subscribe to these) ----------

MENTION_EVENT: Final = "app_mention"
HOME_OPENED_EVENT: Final = "app_home_opened"

# -- buttons (block_actions action_id); every button's value is only a grant id --------------

APPROVE: Final = "grant.approve"
DENY: Final = "grant.deny"
REVOKE: Final = "grant.revoke"  # "Revoke now" on active grants (requester or approvers)
CANCEL: Final = "grant.cancel"  # the requester withdraws a pending request (App Home)
OPEN_FORM: Final = "form.open"  # "Request access" on App Home

#: The reminder before a grant ends (bot.slack.blocks.reminders): one-click extension by
#: the offered time, and ending the grant now.
REMIND_EXTEND: Final = "reminder.extend"
REMIND_DONE: Final = "reminder.done"

#: Every button action_id, for registering listeners and for tests.
BUTTONS: Final = (APPROVE, DENY, REVOKE, CANCEL, OPEN_FORM, REMIND_EXTEND, REMIND_DONE)

# -- modals (view_submission callback_id) ----------------------------------------------------

REQUEST_FORM: Final = "access.request"
DENY_FORM: Final = "access.deny"

# -- request form: input blocks and the element inside each ---------------------------------

FORM_TARGET_BLOCK: Final = "target"  # static_select: "<resource>/<role>"
FORM_TARGET_ACTION: Final = "target.select"
FORM_DURATION_BLOCK: Final = "duration"
FORM_DURATION_ACTION: Final = "duration.input"
FORM_REASON_BLOCK: Final = "reason"
FORM_REASON_ACTION: Final = "reason.input"
FORM_TICKETS_BLOCK: Final = "tickets"
FORM_TICKETS_ACTION: Final = "tickets.input"
FORM_SSH_KEY_BLOCK: Final = "ssh_key"  # shown only when an SSH certificate role is offered
FORM_SSH_KEY_ACTION: Final = "ssh_key.input"
FORM_START_BLOCK: Final = "start"  # optional: "14:00", "in 2h", "2026-12-01 09:00"
FORM_START_ACTION: Final = "start.input"

# Issue 13: asking on someone's behalf and for a bundle in the same form.
FORM_FOR_BLOCK: Final = "for"  # users_select, optional: whom the request is for
FORM_FOR_ACTION: Final = "for.select"
#: The global shortcut "Request access" (manifests/slack-app*.yaml: features.shortcuts).
REQUEST_SHORTCUT: Final = "access.shortcut"
#: A bundle among the form's targets: "bundle:<name>" (":" is in no resource name).
BUNDLE_TARGET_PREFIX: Final = "bundle:"

#: Separates resource and role in a form option value ("orders-db/read"); neither name can
#: contain it (policy names match ``[a-z0-9][a-z0-9_-]*``).
TARGET_SEPARATOR: Final = "/"

# -- deny modal -------------------------------------------------------------------------------

DENY_REASON_BLOCK: Final = "deny_reason"
DENY_REASON_ACTION: Final = "deny_reason.input"

# -- block ids on messages (so updates and tests can find parts) ------------------------------

DECISION_BLOCK: Final = "decision"  # the actions block holding Approve / Deny
GRANT_ACTIONS_BLOCK: Final = "grant_actions"  # the actions block holding Revoke / Cancel
HOME_ACTIONS_BLOCK: Final = "home_actions"  # App Home's "Request access" button
REMINDER_ACTIONS_BLOCK: Final = "reminder_actions"  # Extend +<d> / I'm done
