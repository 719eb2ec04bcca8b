"""The pipelines API served by the bot as ``grantbot serve`` assembles it: a machine client
asks over HTTP, approvers decide in the Slack emulator with signed clicks, and the credential
comes back sealed to the request's public key; every refusal is a 4xx naming what is wrong.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import logging
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from nacl.public import PrivateKey

from bot.api.delivery import SEAL_FAILED
from bot.api.install import API_KEY
from bot.api.routes import OPENAPI_PATH, ROUTES
from bot.api.sealing import new_key_pair, unseal
from bot.devtools.redis_server import RedisServer
from bot.devtools.slack_driver import plain_text_value
from bot.domain.clients import client_requester
from bot.domain.model import Origin, Status
from bot.domain.pipeline import PipelineAsk
from bot.slack import ids
from bot.store.keys import Keys
from tests.integration.slack_harness import (
    ACCESS_CHANNEL,
    ALICE,
    BOB,
    CAROL,
    SlackHarness,
    running_bot,
)
from tests.integration.support import FakeClock

POLICY = Path(__file__).parent.parent / "fixtures" / "pipeline_policy.yaml"
TOKEN = "tok-" + secrets.token_urlsafe(24)
NIGHTLY_TOKEN = "tok-" + secrets.token_urlsafe(24)


#: 32 zero bytes: the right length, but a low-order point libsodium will not seal to.
ZERO_KEY = base64.b64encode(bytes(32)).decode()


class Client:
    """HTTP calls to the bot's API as a pipeline makes them."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http = http
        self.base = base

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = TOKEN,
        body: Any = None,
        raw: bytes | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, dict[str, Any]]:
        headers = {"Content-Type": content_type}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        async with self.http.request(method, f"{self.base}{path}", data=data, headers=headers) as r:
            return r.status, await r.json()

    async def ask(self, **fields: Any) -> tuple[int, dict[str, Any], PrivateKey]:
        key, public = new_key_pair()
        body = {"resource": "orders-db", "role": "migrate", "duration": "20m"}
        body |= {"reason": "migration for D-123", "public_key": public, **fields}
        status, answer = await self.call("POST", "/api/v1/requests", body=body)
        return status, answer, key


@pytest.fixture
async def bot(
    redis_url: str, keys: Keys, redis_client: aioredis.Redis, cache_server: RedisServer
) -> AsyncIterator[SlackHarness]:
    env = {
        "TEST_DEPLOY_ORDERS_TOKEN": TOKEN,
        "TEST_NIGHTLY_TOKEN": NIGHTLY_TOKEN,
        "GRANTBOT_TEST_CACHE_URL": cache_server.url,
    }
    async with running_bot(
        redis_url=redis_url, prefix=keys.prefix, policy=POLICY, environ=env
    ) as harness:
        yield harness


@pytest.fixture
async def api(bot: SlackHarness) -> AsyncIterator[Client]:
    base = bot.driver.events_url.rsplit("/slack/events", 1)[0]
    async with aiohttp.ClientSession() as http:
        yield Client(http, base)


async def _approve(bot: SlackHarness, grant_id: str, *, user: str = BOB) -> None:
    await bot.settle()
    copy = next(m for m in bot.copies(grant_id) if m.channel == ACCESS_CHANNEL)
    await bot.click(user, copy, ids.APPROVE)


async def _audit(redis_client: aioredis.Redis, keys: Keys) -> list[dict[str, Any]]:
    entries = await redis_client.xrange(keys.audit)
    return [json.loads(fields["body"]) for _, fields in entries]


async def test_ask_approve_receive_sealed_and_give_back(
    bot: SlackHarness,
    api: Client,
    redis_client: aioredis.Redis,
    keys: Keys,
    cache_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A pipeline asks for a real Redis credential; the approvers' copy in the policy's
    channel says a pipeline asks, which client and deployment; Bob's click approves; the
    sealed credential opens with the pipeline's key (twice: a retry gets it again) and logs
    in; done ends the grant and the login with it. The password is in no log line, no Redis
    value, no audit entry and no Slack call."""
    caplog.set_level(logging.DEBUG)
    key, public = new_key_pair()
    body = {
        "resource": "cache",
        "role": "read",
        "duration": "20m",
        "reason": "warm the cache after deploy",
        "public_key": public,
        "deployment": {"id": "D-123", "url": "https://ci.example/d/123", "commit": "abc1234"},
    }
    status, state = await api.call("POST", "/api/v1/requests", body=body)
    assert status == 201, state
    assert state["state"] == "PENDING" and state["client"] == "deploy-orders"
    assert state["deployment"] == body["deployment"]
    grant_id = state["id"]

    await bot.settle()
    [copy] = [m for m in bot.copies(grant_id) if m.channel == ACCESS_CHANNEL]
    shown = json.dumps(copy.blocks)
    assert "A pipeline asks" in shown and "deploy-orders" in shown
    assert "<https://ci.example/d/123|D-123>" in shown and "abc1234" in shown

    status, waited = await api.call("GET", f"/api/v1/requests/{grant_id}?wait=0s")
    assert status == 200 and waited["decided"] is False
    status, early = await api.call("GET", f"/api/v1/requests/{grant_id}/credential")
    assert status == 409 and early["error"] == "not_ready"

    await _approve(bot, grant_id)
    status, waited = await api.call("GET", f"/api/v1/requests/{grant_id}?wait=10s")
    assert status == 200 and waited["state"] == "ACTIVE" and waited["credential_ready"]
    assert waited["decided_by"] == BOB

    status, sealed = await api.call("GET", f"/api/v1/requests/{grant_id}/credential")
    assert status == 200 and sealed["algorithm"] == "libsodium-sealed-box-x25519"
    document = unseal(base64.b64decode(sealed["sealed"]), private_key=key)
    fields = {f["label"]: f["value"] for f in document["fields"]}
    password = fields["password"]
    assert len(password) >= 16
    status, again = await api.call("GET", f"/api/v1/requests/{grant_id}/credential")
    assert status == 200 and again["sealed"] == sealed["sealed"]
    with pytest.raises(Exception, match="cannot be opened"):
        unseal(base64.b64decode(sealed["sealed"]), private_key=PrivateKey.generate())

    login = (await bot.bot.store.get(grant_id)).credential_ref or ""
    target = aioredis.Redis.from_url(cache_server.url, username=login, password=password)
    assert await target.ping()
    await target.aclose()

    status, done = await api.call("POST", f"/api/v1/requests/{grant_id}/done")
    assert status == 200 and done["state"] == "REVOKED"
    await bot.settle()
    target = aioredis.Redis.from_url(cache_server.url, username=login, password=password)
    with pytest.raises(aioredis.AuthenticationError):
        await target.ping()
    await target.aclose()
    status, gone = await api.call("GET", f"/api/v1/requests/{grant_id}/credential")
    assert status == 410 and gone["error"] == "gone"

    # Nowhere but the sealed answer: not Slack, not a log line, not grantbot's Redis.
    assert not [c for c in bot.emulator.calls() if password in json.dumps(c.args)]
    assert not [m for m in bot.dms(BOB) if password in json.dumps(m.blocks)]
    assert password not in caplog.text and TOKEN not in caplog.text
    async for k in redis_client.scan_iter(match="{" + keys.prefix + "}*"):
        kind = await redis_client.type(k)
        value = {
            "string": redis_client.get,
            "hash": redis_client.hgetall,
            "stream": redis_client.xrange,
        }.get(kind)
        if value is not None:
            text = str(await value(k))
            assert password not in text and TOKEN not in text

    # Audited with the client's name: the request (with its deployment) and every call.
    audit = await _audit(redis_client, keys)
    [created] = [e for e in audit if e["event"] == "REQUEST" and e["grant_id"] == grant_id]
    assert created["actor"] == "client:deploy-orders"
    assert created["details"]["deployment"]["id"] == "D-123"
    calls = [e for e in audit if e["event"] == "API_CALL"]
    assert [(c["details"]["route"], c["details"]["status"]) for c in calls] == [
        ("create_request", 201),
        ("get_request", 200),
        ("get_credential", 409),
        ("get_request", 200),
        ("get_credential", 200),
        ("get_credential", 200),
        ("done", 200),
        ("get_credential", 410),
    ]
    assert {c["actor"] for c in calls} == {"client:deploy-orders"}
    assert all(c["details"]["deployment"] == "D-123" for c in calls)
    [ended] = [e for e in audit if e["event"] == "REVOKE" and e["grant_id"] == grant_id]
    assert ended["actor"] == "client:deploy-orders"


async def test_denial_reaches_the_pipeline(bot: SlackHarness, api: Client) -> None:
    """Carol denies in Slack; the waiting read answers DENIED with who, and no credential."""
    status, state, _ = await api.ask()
    assert status == 201
    await bot.settle()
    copy = next(m for m in bot.copies(state["id"]) if m.channel == ACCESS_CHANNEL)
    await bot.click(CAROL, copy, ids.DENY)
    [modal] = bot.emulator.views(CAROL)
    await bot.driver.view_submission(
        CAROL,
        modal.as_slack(),
        values={ids.DENY_REASON_BLOCK: {ids.DENY_REASON_ACTION: plain_text_value("not today")}},
    )
    status, waited = await api.call("GET", f"/api/v1/requests/{state['id']}?wait=5s")
    assert status == 200 and waited["state"] == "DENIED" and waited["decided_by"] == CAROL
    assert waited["end_reason"] == "not today"
    status, _answer = await api.call("GET", f"/api/v1/requests/{state['id']}/credential")
    assert status == 410
    # The client is no Slack user: nobody was DMed about it, nothing failed to be told.
    assert not [c for c in bot.emulator.calls() if "client:" in str(c.args.get("channel"))]


async def test_time_out_reaches_the_pipeline(bot: SlackHarness, api: Client) -> None:
    """Nobody decides within request_timeout: the request lapses and the read says so."""
    status, state, _ = await api.ask()
    assert status == 201
    clock = bot.bot.service.clock
    assert isinstance(clock, FakeClock)
    clock.advance(31 * 60)
    lapsed = await bot.bot.service.time_out_due()
    assert [g.id for g in lapsed] == [state["id"]]
    status, waited = await api.call("GET", f"/api/v1/requests/{state['id']}?wait=1s")
    assert status == 200 and waited["state"] == "TIMED_OUT" and waited["decided"]


async def test_auto_approved_inside_the_change_window(bot: SlackHarness, api: Client) -> None:
    """lab deploy is auto-approved inside the policy's change window: the answer is already
    ACTIVE with the credential sealed, and the approvers get a review copy."""
    status, state, key = await api.ask(resource="lab", role="deploy", duration="10m")
    assert status == 201 and state["state"] == "ACTIVE" and state["credential_ready"], state
    status, sealed = await api.call("GET", f"/api/v1/requests/{state['id']}/credential")
    assert status == 200
    assert unseal(base64.b64decode(sealed["sealed"]), private_key=key)["ref"] == state["id"]
    grant = await bot.bot.store.get(state["id"])
    assert "inside change window all-day" in (grant.auto_approved or "")
    await bot.settle()
    assert bot.copies(state["id"])


async def test_a_credential_that_cannot_be_sealed_is_taken_back(
    bot: SlackHarness, api: Client
) -> None:
    """Should sealing fail once access is issued (a key the API would now refuse, filed from
    before the check), the grant does not stay live with nobody able to use it: it is revoked
    saying why, and the credential call answers 410 saying so, not 409 forever."""
    result = await bot.bot.service.request_access(
        user=client_requester("deploy-orders"),
        resource="lab",
        role="deploy",
        duration_s=600,
        reason="deploy",
        origin=Origin(surface="api"),
        pipeline=PipelineAsk(public_key=ZERO_KEY, deployment=None),
    )
    assert result.credential is not None  # issued (auto-approved), then sealing failed
    grant = await bot.bot.store.get(result.grant.id)
    assert grant.status is Status.REVOKED and grant.end_reason == SEAL_FAILED
    assert grant.ended_by == "sealer"  # grantbot's own doing, audited as such
    status, answer = await api.call("GET", f"/api/v1/requests/{grant.id}/credential")
    assert (status, answer["error"]) == (410, "gone") and SEAL_FAILED in answer["message"]
    status, state = await api.call("GET", f"/api/v1/requests/{grant.id}")
    assert state["state"] == "REVOKED" and state["end_reason"] == SEAL_FAILED


async def test_a_pipelines_grant_gets_no_reminder(bot: SlackHarness, api: Client) -> None:
    """A reminder is for people: a machine client's grant (15m, remind_before 10m by default)
    has no reminder job, and a reminder fired anyway posts nothing to "client:..."."""
    status, state, _ = await api.ask(resource="lab", role="deploy", duration="15m")
    assert status == 201 and state["state"] == "ACTIVE", state
    lifecycle = bot.bot.lifecycle
    assert await lifecycle.jobs.run_time("remind", state["id"]) is None
    clock = bot.bot.service.clock
    assert isinstance(clock, FakeClock)
    clock.advance(6 * 60)  # past when a person's grant would be reminded
    assert await lifecycle.reminders.fire(state["id"]) is False
    notices = lifecycle.reminders.notices
    assert notices is not None
    await notices.remind(await bot.bot.store.get(state["id"]), offer_s=None)  # Slack's side
    await bot.settle()
    channels = [str(c.args.get("channel")) for c in bot.emulator.calls("chat.postMessage")]
    assert channels and not [c for c in channels if c.startswith("client:")], channels


async def test_a_role_not_open_to_the_client_is_refused(bot: SlackHarness, api: Client) -> None:
    status, state, _ = await api.ask(role="dba")
    assert status == 403 and "may not request orders-db dba" in state["message"]


async def test_n_of_m_and_escalation_apply_to_pipelines(bot: SlackHarness, api: Client) -> None:
    """Two approvals are needed where the policy says so; after escalate_after the tier's
    approver (Alice) is asked and her click is the second approval."""
    status, state, _ = await api.ask(role="schema")
    assert status == 201
    await _approve(bot, state["id"], user=BOB)
    status, one = await api.call("GET", f"/api/v1/requests/{state['id']}")
    assert one["state"] == "PENDING" and (one["approvals"], one["approvals_required"]) == (1, 2)
    clock = bot.bot.service.clock
    assert isinstance(clock, FakeClock)
    clock.advance(11 * 60)
    asked = await bot.bot.service.escalate_due()
    assert [(g.id, tier) for g, tier in asked] == [(state["id"], 1)]
    await bot.settle()
    [alices] = [m for m in bot.dms(ALICE) if f"Request `{state['id']}`" in json.dumps(m.blocks)]
    await bot.click(ALICE, alices, ids.APPROVE)
    status, two = await api.call("GET", f"/api/v1/requests/{state['id']}?wait=5s")
    assert two["state"] == "ACTIVE" and two["approvals"] == 2 and two["credential_ready"]


@pytest.mark.parametrize(
    ("change", "status", "error", "says"),
    [
        ({"duration": "20x"}, 400, "bad_duration", '"20x" is not a duration'),
        ({"duration": "2h"}, 403, "refused", "limited to 30m; you asked for 2h"),
        ({"resource": "nope"}, 403, "refused", 'unknown resource "nope"'),
        ({"reason": ""}, 403, "refused", "needs a reason"),
        ({"public_key": "not base64!"}, 400, "bad_public_key", "not base64"),
        ({"public_key": base64.b64encode(b"short").decode()}, 400, "bad_public_key", "32 bytes"),
        ({"public_key": None}, 400, "malformed_body", "public_key"),
        ({"public_key": ZERO_KEY}, 400, "bad_public_key", "not a usable X25519 public key"),
        ({"duration": ""}, 400, "bad_duration", "is not a duration"),
        ({"surprise": 1}, 400, "malformed_body", "surprise: is not a known key"),
        ({"duration": 20}, 400, "malformed_body", "duration"),
        ({"deployment": {"id": "D 1"}}, 400, "malformed_body", "deployment.id"),
        ({"deployment": {"id": "D-1", "commit": "zz"}}, 400, "malformed_body", "commit"),
    ],
)
async def test_bad_requests_are_refused_saying_what_is_wrong(
    bot: SlackHarness, api: Client, change: dict[str, Any], status: int, error: str, says: str
) -> None:
    """Each bad body gets its 4xx and a message naming the fault; nothing is filed."""
    got, answer, _ = await api.ask(**change)
    assert (got, answer["error"]) == (status, error), answer
    assert says in answer["message"]
    assert await bot.bot.store.list_grants(limit=5) == []


@pytest.mark.parametrize(
    ("raw", "content_type", "says"),
    [
        (b"{not json", "application/json", "the body is not JSON"),
        (b"[1, 2]", "application/json", "must be a JSON object"),
        (b"resource=x", "application/x-www-form-urlencoded", "Content-Type: application/json"),
        (b"", "application/json", "the body is not JSON"),
    ],
)
async def test_malformed_bodies(
    bot: SlackHarness, api: Client, raw: bytes, content_type: str, says: str
) -> None:
    status, answer = await api.call("POST", "/api/v1/requests", raw=raw, content_type=content_type)
    assert status == 400 and answer["error"] == "malformed_body" and says in answer["message"]


async def test_a_deeply_nested_body_is_malformed_not_a_failure(
    bot: SlackHarness, api: Client
) -> None:
    raw = b"[" * 100_000 + b"]" * 100_000
    status, answer = await api.call("POST", "/api/v1/requests", raw=raw)
    assert (status, answer["error"]) == (400, "malformed_body"), answer
    assert "nested too deeply" in answer["message"]
    assert await bot.bot.store.list_grants(limit=5) == []


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip-expanding"])
async def test_a_body_over_the_limit_is_413(bot: SlackHarness, api: Client, gzipped: bool) -> None:
    """Over aiohttp's body limit (1 MiB), sent as is or as a small gzip that expands past it:
    413 with a JSON error, nothing filed."""
    _key, public = new_key_pair()
    body = {"resource": "orders-db", "reason": " " * (3 << 20), "public_key": public}
    raw = json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    if gzipped:
        raw = gzip.compress(raw)
        headers["Content-Encoding"] = "gzip"
        assert len(raw) < 64 << 10  # small on the wire
    sent = io.BytesIO(raw)
    async with api.http.post(f"{api.base}/api/v1/requests", data=sent, headers=headers) as r:
        assert r.status == 413 and r.content_type == "application/json"
        answer = await r.json()
    assert answer["error"] == "body_too_large" and "larger than" in answer["message"]
    assert await bot.bot.store.list_grants(limit=5) == []


@pytest.mark.parametrize(
    ("token", "says"),
    [
        (None, "missing Authorization header"),
        ("wrong-" + secrets.token_hex(8), "not one of a client"),
        ("", "the bearer token is empty"),
    ],
)
async def test_wrong_tokens_get_401(
    bot: SlackHarness, api: Client, redis_client: aioredis.Redis, keys: Keys, token: Any, says: str
) -> None:
    """No token, or one no client has: 401 and nothing filed; audited as API_REFUSED."""
    _key, public = new_key_pair()
    status, answer = await api.call(
        "POST",
        "/api/v1/requests",
        token=token,
        body={"resource": "orders-db", "public_key": public, "reason": "x"},
    )
    assert status == 401 and answer["error"] == "unauthorized" and says in answer["message"]
    assert await bot.bot.store.list_grants(limit=5) == []
    assert [e["event"] for e in await _audit(redis_client, keys)][-1] == "API_REFUSED"


async def test_scheme_must_be_bearer(bot: SlackHarness, api: Client) -> None:
    async with api.http.get(
        f"{api.base}/api/v1/requests/g-x", headers={"Authorization": f"Basic {TOKEN}"}
    ) as r:
        assert r.status == 401 and "Bearer TOKEN" in (await r.json())["message"]


async def test_a_client_sees_only_its_own_requests(bot: SlackHarness, api: Client) -> None:
    """nightly cannot read, fetch or end deploy-orders' request (404 as for an unknown id);
    and it may ask for nothing the policy does not list it for."""
    status, state, _ = await api.ask()
    assert status == 201
    for method, path in [
        ("GET", f"/api/v1/requests/{state['id']}"),
        ("GET", f"/api/v1/requests/{state['id']}/credential"),
        ("POST", f"/api/v1/requests/{state['id']}/done"),
        ("GET", "/api/v1/requests/g-unknown"),
    ]:
        status, answer = await api.call(method, path, token=NIGHTLY_TOKEN)
        assert status == 404 and answer["error"] == "not_found", (path, answer)
    assert (await bot.bot.store.get(state["id"])).status is Status.PENDING
    _key, public = new_key_pair()
    status, refused = await api.call(
        "POST",
        "/api/v1/requests",
        token=NIGHTLY_TOKEN,
        body={"resource": "orders-db", "role": "migrate", "reason": "x", "public_key": public},
    )
    assert status == 403 and "open to: client deploy-orders" in refused["message"]


async def test_bad_wait_values(bot: SlackHarness, api: Client) -> None:
    status, state, _ = await api.ask()
    for wait, says in [("soon", "is not a duration"), ("1h", "at most 300s")]:
        status, answer = await api.call("GET", f"/api/v1/requests/{state['id']}?wait={wait}")
        assert status == 400 and answer["error"] == "bad_wait" and says in answer["message"]


async def test_done_on_a_pending_request_cancels_it(bot: SlackHarness, api: Client) -> None:
    status, state, _ = await api.ask()
    status, done = await api.call("POST", f"/api/v1/requests/{state['id']}/done")
    assert status == 200 and done["state"] == "CANCELLED"
    status, again = await api.call("POST", f"/api/v1/requests/{state['id']}/done")
    assert status == 200 and again["state"] == "CANCELLED"


async def test_rate_limited_per_client(bot: SlackHarness, api: Client) -> None:
    """Past its limit a client gets 429 with Retry-After; another client is not affected."""
    bot.bot.web_app[API_KEY].limits.limit = 3
    answers = [await api.call("GET", "/api/v1/requests/g-none") for _ in range(4)]
    assert [s for s, _ in answers] == [404, 404, 404, 429]
    assert answers[-1][1]["error"] == "rate_limited"
    async with api.http.get(
        f"{api.base}/api/v1/requests/g-none", headers={"Authorization": f"Bearer {TOKEN}"}
    ) as r:
        assert r.status == 429 and int(r.headers["Retry-After"]) >= 1
    status, _ = await api.call("GET", "/api/v1/requests/g-none", token=NIGHTLY_TOKEN)
    assert status == 404


async def test_openapi_document_validates_and_matches_the_handlers(
    bot: SlackHarness, api: Client
) -> None:
    """The served document is valid OpenAPI, and its operations are exactly the routes the
    app serves under /api/v1 (besides the document itself), with the same models."""
    from openapi_spec_validator import validate

    async with api.http.get(f"{api.base}{OPENAPI_PATH}") as r:
        assert r.status == 200
        document = await r.json()
    validate(document)
    served = {
        (route.method, route.resource.canonical)
        for route in bot.bot.web_app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith("/api/v1")
        and route.method != "HEAD"
    }
    described = {
        (method.upper(), path) for path, ops in document["paths"].items() for method in ops
    }
    assert served - {("GET", OPENAPI_PATH)} == described
    schemas = document["components"]["schemas"]
    for route in ROUTES:
        op = document["paths"][route.path][route.method.lower()]
        answer = op["responses"][str(route.ok)]["content"]["application/json"]["schema"]
        assert answer["$ref"] == f"#/components/schemas/{route.answer.__name__}"
        assert set(schemas[route.answer.__name__]["properties"]) == set(route.answer.model_fields)
        if route.body is not None:
            body = op["requestBody"]["content"]["application/json"]["schema"]
            assert body["$ref"] == f"#/components/schemas/{route.body.__name__}"
            assert set(schemas[route.body.__name__]["properties"]) == set(route.body.model_fields)
    # What the handlers answer is what the document says: a real answer of each kind.
    status, created, _ = await api.ask()
    assert status == 201 and set(created) == set(schemas["RequestState"]["properties"])
    status, error, _ = await api.ask(duration="nope")
    assert status == 400 and set(error) <= set(schemas["ErrorBody"]["properties"])


async def test_serve_says_at_start_which_client_is_disabled_and_refuses_shared_tokens(
    redis_url: str,
    keys: Keys,
    cache_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """At start: one WARNING naming a client whose ${VAR} is unset (disabled); two clients
    whose variables hold the same token authenticate as neither, said as an ERROR that shows
    no token."""
    caplog.set_level(logging.WARNING)
    env = {"TEST_DEPLOY_ORDERS_TOKEN": TOKEN, "GRANTBOT_TEST_CACHE_URL": cache_server.url}
    async with running_bot(redis_url=redis_url, prefix=keys.prefix, policy=POLICY, environ=env):
        disabled = [r.getMessage() for r in caplog.records if "is disabled" in r.getMessage()]
        assert len(disabled) == 1 and disabled[0].startswith("client nightly is disabled")
    caplog.clear()
    shared = env | {"TEST_NIGHTLY_TOKEN": TOKEN}
    async with running_bot(
        redis_url=redis_url, prefix=keys.prefix, policy=POLICY, environ=shared
    ) as bot:
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert "clients deploy-orders, nightly have the same token" in " ".join(errors)
        assert TOKEN not in caplog.text
        base = bot.driver.events_url.rsplit("/slack/events", 1)[0]
        async with aiohttp.ClientSession() as http:
            status, answer = await Client(http, base).call("GET", "/api/v1/requests/g-none")
        assert status == 401 and "not one of a client" in answer["message"]


@pytest.mark.parametrize(
    ("method", "path", "status", "error"),
    [
        ("GET", "/api/v1/nope", 404, "not_found"),
        ("GET", "/api/v1/requests/g-none/nope", 404, "not_found"),
        ("DELETE", "/api/v1/requests", 405, "method_not_allowed"),
        ("PUT", "/api/v1/requests/g-none/done", 405, "method_not_allowed"),
    ],
)
async def test_unknown_paths_and_methods_under_the_api_answer_json(
    bot: SlackHarness, api: Client, method: str, path: str, status: int, error: str
) -> None:
    async with api.http.request(method, f"{api.base}{path}") as r:
        assert r.status == status and r.content_type == "application/json"
        answer = await r.json()
        allow = r.headers.get("Allow")
    assert answer["error"] == error and path in answer["message"]
    if status == 405:
        assert allow is not None and method not in allow and allow in answer["message"]


async def test_outside_the_api_paths_are_left_to_aiohttp(bot: SlackHarness, api: Client) -> None:
    async with api.http.get(f"{api.base}/nope") as r:
        assert r.status == 404 and r.content_type == "text/plain"


async def test_a_long_id_is_echoed_capped(bot: SlackHarness, api: Client) -> None:
    long_id = "g-" + "x" * 5000
    status, answer = await api.call("GET", f"/api/v1/requests/{long_id}")
    assert (status, answer["error"]) == (404, "not_found")
    assert f"no request {long_id[:64]}… of client deploy-orders" == answer["message"]
