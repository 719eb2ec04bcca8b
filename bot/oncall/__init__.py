"""Who is on call: static rotations, PagerDuty and Opsgenie, behind one fail-closed lookup.

The service asks through :class:`bot.ports.OnCallDirectory`: :meth:`OnCallLookup.check` (which
also carries each failed schedule's reason) and :meth:`OnCallLookup.members`. Build one with
:func:`build_oncall_lookup`, or :class:`PolicyOnCallLookup` to follow policy reloads.
"""

from bot.oncall.base import OnCallResult, OnCallSource, OnCallUnavailable, SlackUserByEmail
from bot.oncall.cached import (
    DEFAULT_FAILURE_TTL_S,
    DEFAULT_TIMEOUT_S,
    DEFAULT_TTL_S,
    CachedSource,
)
from bot.oncall.lookup import (
    OnCallLookup,
    PolicyOnCallLookup,
    build_oncall_lookup,
    slack_lookup_by_email,
)
from bot.oncall.static import Shift, on_call_at, shift_at

__all__ = [
    "DEFAULT_FAILURE_TTL_S",
    "DEFAULT_TIMEOUT_S",
    "DEFAULT_TTL_S",
    "CachedSource",
    "OnCallLookup",
    "OnCallResult",
    "OnCallSource",
    "OnCallUnavailable",
    "PolicyOnCallLookup",
    "Shift",
    "SlackUserByEmail",
    "build_oncall_lookup",
    "on_call_at",
    "shift_at",
    "slack_lookup_by_email",
]
