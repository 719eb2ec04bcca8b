"""Reminders before a grant ends, and the one-click extension they offer (pure).

``remind_before`` (policy; 10m unless set, ``null`` for none) before ``expires_at`` the
requester is reminded, when that moment comes after the grant started (a grant shorter than
``remind_before`` is not reminded). The reminder offers ``Extend +<d>``: the role's default
duration, capped by what ``max_duration`` still allows the grant's whole life (from issue to
its new end); no button when nothing is left. An extension is applied without approval when
the grant's whole life stays within ``extend_without_approval`` (policy; off unless set).
"""

from __future__ import annotations

from typing import Final

#: The built-in ``remind_before``.
DEFAULT_REMIND_BEFORE_S: Final = 600
#: An extension offered is at least this long (a button for +3s helps nobody), unless the
#: role's default duration itself is shorter.
MIN_OFFER_S: Final = 60


def remind_at(
    *, expires_at: float, activated_at: float | None, remind_before_s: int | None
) -> float | None:
    """When to remind of a grant ending at ``expires_at``; None for no reminder (turned off,
    or the moment would come before the grant started)."""
    if remind_before_s is None or remind_before_s <= 0:
        return None
    at = expires_at - remind_before_s
    if activated_at is not None and at <= activated_at:
        return None
    return at


def life_s(*, activated_at: float | None, expires_at: float) -> float:
    """How long a grant lives from issue to ``expires_at``."""
    return expires_at - (activated_at if activated_at is not None else expires_at)


def extension_offer(
    *,
    activated_at: float | None,
    expires_at: float,
    default_duration_s: int,
    max_duration_s: int,
) -> int | None:
    """The ``d`` of the reminder's ``Extend +<d>``: the default duration, capped by what
    ``max_duration`` still allows the grant's life; None when less than a minute (or the
    default, if shorter) is left."""
    left = max_duration_s - life_s(activated_at=activated_at, expires_at=expires_at)
    offer = int(min(default_duration_s, left))
    return offer if offer > 0 and offer >= min(MIN_OFFER_S, default_duration_s) else None


def needs_no_approval(
    *,
    activated_at: float | None,
    expires_at: float,
    extend_by_s: int,
    extend_without_approval_s: int | None,
) -> bool:
    """True when extending by ``extend_by_s`` keeps the grant's whole life within
    ``extend_without_approval`` (None: every extension is decided by approvers)."""
    if extend_without_approval_s is None:
        return False
    life = life_s(activated_at=activated_at, expires_at=expires_at) + extend_by_s
    return life <= extend_without_approval_s
