"""The noop provider: a note instead of a credential, with the contract's bookkeeping."""

from __future__ import annotations

import pytest

from bot.errors import ProviderError
from bot.providers.base import GrantContext, Provider
from bot.providers.registry import build_provider
from tests.factories import NOW


def _ctx(grant_id: str = "g-7k3p9xqm") -> GrantContext:
    return GrantContext(
        grant_id=grant_id, user="U1", resource="demo", role="read", expires_at=NOW + 60
    )


async def test_noop_issues_a_note_and_tracks_what_is_live() -> None:
    """Issue returns a note-only credential; check/live_grant_ids follow issue and revoke, and
    revoke is idempotent."""
    provider = build_provider({"type": "noop", "note": "nothing to do"}, env={})
    assert isinstance(provider, Provider)
    cred = await provider.issue(_ctx(), now=NOW)
    assert cred.get("note") == "nothing to do"
    assert not cred.secret_values()
    assert await provider.check(_ctx())
    assert await provider.live_grant_ids() == {"g-7k3p9xqm"}
    await provider.revoke(_ctx())
    await provider.revoke(_ctx())
    assert not await provider.check(_ctx())
    assert await provider.live_grant_ids() == set()
    await provider.health()
    await provider.aclose()


async def test_noop_refuses_to_issue_an_already_expired_grant() -> None:
    """Issuing after expires_at is refused (every provider shares this rule)."""
    provider = build_provider({"type": "noop"}, env={})
    with pytest.raises(ProviderError, match="already expired"):
        await provider.issue(_ctx(), now=NOW + 61)
