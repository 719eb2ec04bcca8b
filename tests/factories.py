"""Builders for domain objects in tests."""

from __future__ import annotations

from typing import Any

from bot.domain.ids import new_grant_id
from bot.domain.model import Grant, Origin

NOW = 1_795_000_000.0  # 2026-11-18T..., a fixed instant for pure tests
POLICY_V = "a" * 64


def make_grant(**overrides: Any) -> Grant:
    """A PENDING request for orders-db read by U_REQ, 30 minutes, one approval needed."""
    fields: dict[str, Any] = {
        "id": new_grant_id(),
        "requester": "U0REQUEST",
        "resource": "orders-db",
        "role": "read",
        "duration_s": 1800,
        "reason": "debugging INC-42",
        "tickets": ["INC-42"],
        "origin": Origin(surface="command", channel="C0GENERAL"),
        "policy_version": POLICY_V,
        "approvals_required": 1,
        "created_at": NOW,
        "updated_at": NOW,
        "request_expires_at": NOW + 3600,
    }
    fields.update(overrides)
    return Grant(**fields)
