"""The webhook provider against a real local aiohttp receiver that checks every signature,
beyond the provider contract (test_provider_contract.py): the events, retries, backoff."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import AsyncIterator

import pytest

from bot.errors import ProviderError, TargetUnavailable
from bot.providers.webhook import (
    WebhookProvider,
    WebhookSettings,
)
from tests.integration.provider_targets import HOOK_FAST, hook_provider
from tests.integration.providers_fixtures import HOOK_SECRET, HookReceiver, closed_port, make_ctx

SECRET = HOOK_SECRET
FAST = HOOK_FAST


@pytest.fixture
async def receiver() -> AsyncIterator[HookReceiver]:
    """A receiver checking every signature, answering as each test tells it."""
    rec = await HookReceiver().start()
    yield rec
    await rec.stop()


@pytest.fixture
async def hook(receiver: HookReceiver) -> AsyncIterator[WebhookProvider]:
    provider = hook_provider(receiver)
    assert isinstance(provider, WebhookProvider)
    yield provider
    await provider.aclose()


async def test_grant_and_revoke_events_arrive_signed_with_the_grant(
    hook: WebhookProvider, receiver: HookReceiver
) -> None:
    """Issue POSTs a signed ``grant`` event and revoke a signed ``revoke`` event carrying the
    grant's id, user, resource, role, expiry and the role's data."""
    ctx = make_ctx(role_settings={"data": {"team": "payments"}})
    cred = await hook.issue(ctx, now=time.time())
    await hook.revoke(ctx)
    assert receiver.bad_signatures == 0
    grant, revoke = receiver.deliveries
    for event, name in ((grant, "grant"), (revoke, "revoke")):
        assert event["event"] == name
        assert event["grant_id"] == ctx.grant_id
        assert event["user"] == ctx.user
        assert (event["resource"], event["role"]) == (ctx.resource, ctx.role)
        assert event["expires_at"] == ctx.expires_at
        assert event["data"] == {"team": "payments"}
    assert grant["idempotency_key"] == f"grant:{ctx.grant_id}:{int(ctx.expires_at)}"
    assert revoke["idempotency_key"] == f"revoke:{ctx.grant_id}"
    assert cred.ref == ctx.grant_id
    assert not cred.secret_values()


async def test_server_errors_are_retried_until_a_2xx(
    hook: WebhookProvider, receiver: HookReceiver
) -> None:
    """500, 500, then 200: the event is delivered on the third attempt, each attempt freshly
    signed, and issue succeeds."""
    receiver.statuses = [500, 500, 200]
    await hook.issue(make_ctx(role_settings={}), now=time.time())
    assert len(receiver.deliveries) == 3
    assert receiver.bad_signatures == 0


async def test_a_4xx_is_refused_without_retrying(
    hook: WebhookProvider, receiver: HookReceiver
) -> None:
    """A 400 is a ProviderError (not TargetUnavailable) after exactly one attempt."""
    receiver.statuses = [400]
    with pytest.raises(ProviderError, match="HTTP 400") as refused:
        await hook.issue(make_ctx(role_settings={}), now=time.time())
    assert not isinstance(refused.value, TargetUnavailable)
    assert len(receiver.deliveries) == 1


async def test_persistent_server_errors_end_in_target_unavailable(
    hook: WebhookProvider, receiver: HookReceiver
) -> None:
    """A receiver answering 503 to every attempt gives TargetUnavailable after max_attempts."""
    receiver.statuses = [503] * 10
    with pytest.raises(TargetUnavailable, match="HTTP 503"):
        await hook.revoke(make_ctx(role_settings={}))
    assert len(receiver.deliveries) == WebhookSettings.model_fields["max_attempts"].default


async def test_a_closed_port_raises_target_unavailable_after_bounded_retries() -> None:
    """With nothing listening, revoke retries max_attempts times (sleeping with backoff between
    attempts) and raises TargetUnavailable; health says the same."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    settings = WebhookSettings(
        url=f"http://127.0.0.1:{closed_port()}/hook", secret=SECRET, max_attempts=3, **FAST
    )
    provider = WebhookProvider(settings, sleep=sleep)
    try:
        with pytest.raises(TargetUnavailable, match="after 3 attempts"):
            await provider.revoke(make_ctx(role_settings={}))
        assert len(slept) == 2
        assert all(0 <= s <= FAST["backoff_max_s"] for s in slept)
        with pytest.raises(TargetUnavailable):
            await provider.health()
    finally:
        await provider.aclose()


def test_backoff_grows_exponentially_with_full_jitter_and_a_cap() -> None:
    """Attempt n waits uniformly in [0, min(max, base * 2**(n-1))]."""
    provider = WebhookProvider(
        WebhookSettings(
            url="http://x.invalid/", secret=SECRET, backoff_base_s=1.0, backoff_max_s=5.0
        )
    )
    for attempt, cap in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (9, 5.0)]:
        waits = [provider.backoff_s(attempt) for _ in range(200)]
        assert all(0 <= w <= cap for w in waits)
        assert max(waits) > cap / 2


async def test_the_secret_never_reaches_a_log_record(
    hook: WebhookProvider, receiver: HookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    """At DEBUG, delivery with retries logs neither the HMAC secret nor a signature."""
    caplog.set_level(logging.DEBUG)
    receiver.statuses = [500, 200]
    await hook.issue(make_ctx(role_settings={}), now=time.time())
    assert caplog.records
    assert SECRET not in caplog.text
    assert "v1=" not in caplog.text
    assert SECRET not in repr(hook.settings)


async def test_an_extension_is_a_new_grant_event_under_a_new_key(
    hook: WebhookProvider, receiver: HookReceiver
) -> None:
    """Issuing again with a later expiry (an extension) sends a grant event whose key differs
    from the first, so a receiver deduplicating on the key still applies the new expiry."""
    ctx = make_ctx(role_settings={"data": {}})
    await hook.issue(ctx, now=time.time())
    later = dataclasses.replace(ctx, expires_at=ctx.expires_at + 1800)
    await hook.issue(later, now=time.time())
    first, second = receiver.deliveries
    assert (first["event"], second["event"]) == ("grant", "grant")
    assert second["expires_at"] == later.expires_at
    assert first["idempotency_key"] != second["idempotency_key"]
