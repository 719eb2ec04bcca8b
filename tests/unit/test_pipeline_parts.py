"""The pipelines API's pure parts: sealing (a kept library's sealed box, opened only by the
request's key), bearer tokens (hashed, every client compared), the export lines the CLI
prints, and what approvers see of a pipeline's request."""

from __future__ import annotations

import base64
import json
import shlex
import subprocess
from pathlib import Path

import pytest
from nacl.public import PrivateKey

from bot.api.auth import MIN_TOKEN_CHARS, ClientTokens, check_client_tokens
from bot.api.sealing import new_key_pair, public_key_problem, seal, unseal
from bot.cli.request import env_name, export_lines, split_words
from bot.domain.credentials import Credential, CredentialField
from bot.domain.model import Deployment
from bot.errors import UsageError
from bot.logs import redact
from bot.policy_holder import PolicyHolder
from bot.policy_loader import parse_policy
from bot.slack.blocks.messages import approval_request
from tests.factories import make_grant

CREDENTIAL = Credential(
    ref="g_abc",
    expires_at=2_000.0,
    fields=(
        CredentialField("user", "g_abc"),
        CredentialField("password", "s3cret-'quoted' $(rm -rf /)", secret=True),
        CredentialField("connection string", "postgres://g_abc@db/x", secret=True),
    ),
)


def test_a_sealed_credential_opens_only_with_the_requests_key() -> None:
    key, public = new_key_pair()
    sealed = seal(CREDENTIAL, public_key=public)
    assert b"s3cret" not in sealed
    assert seal(CREDENTIAL, public_key=public) != sealed  # a fresh ephemeral key each time
    opened = unseal(sealed, private_key=key)
    assert opened["fields"][1] == {
        "label": "password",
        "value": "s3cret-'quoted' $(rm -rf /)",
        "secret": True,
    }
    with pytest.raises(UsageError, match="cannot be opened"):
        unseal(sealed, private_key=PrivateKey.generate())
    with pytest.raises(UsageError, match="cannot be opened"):
        unseal(sealed[:-1] + bytes([sealed[-1] ^ 1]), private_key=key)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("!!", "not base64"),
        (base64.b64encode(b"x" * 31).decode(), "32 bytes (an X25519 key), not 31"),
        (base64.b64encode(b"x" * 32).decode(), None),
    ],
)
def test_public_key_problems(text: str, problem: str | None) -> None:
    found = public_key_problem(text)
    assert (found is None) if problem is None else (problem in (found or ""))


ALPHA = "alpha-" + "a" * 40
BETA = "beta-" + "b" * 40
POLICY = b"""
groups: {sre: {members: [U0SRE1]}}
clients:
  a: {token: "${A_TOKEN}"}
  b: {token: "${B_TOKEN}"}
  c: {token: "${C_TOKEN}"}
defaults: {approvers: {groups: [sre]}}
resources:
  db: {provider: {type: noop}, roles: {r: {requesters: {clients: [a]}}}}
"""


def test_tokens_name_their_client_and_nothing_else(tmp_path: Path) -> None:
    """Each client's token authenticates it; a wrong, empty or non-bearer one names none; a
    client whose variable is unset cannot authenticate at all."""
    loaded = parse_policy(POLICY, filename="p.yaml", environ={})
    holder = PolicyHolder(loaded, path=tmp_path / "p.yaml")
    tokens = ClientTokens(holder, environ={"A_TOKEN": ALPHA, "B_TOKEN": BETA})
    assert tokens.authenticate(f"Bearer {ALPHA}").client == "a"
    assert tokens.authenticate(f"bearer {BETA}").client == "b"
    assert tokens.authenticate(f"Bearer {ALPHA} ").client == "a"
    for header, says in [
        (None, "missing Authorization header"),
        ("Bearer ", "the bearer token is empty"),
        (f"Basic {ALPHA}", "must be: Bearer TOKEN"),
        (f"Bearer {ALPHA[:-1]}X", "not one of a client"),
        ("Bearer ", "empty"),
    ]:
        verdict = tokens.authenticate(header)
        assert verdict.client is None and says in (verdict.problem or "")
    # Only hashes are kept.
    assert ALPHA not in repr(tokens.__dict__["_digests"])


def test_tokens_too_short_or_shared_are_refused_and_never_shown() -> None:
    """A token under 32 characters, or one two clients share, authenticates nobody and is
    an error that names the clients, never the token; an unset variable disables its
    client with a warning."""
    loaded = parse_policy(POLICY, filename="p.yaml", environ={})
    short = "s" * (MIN_TOKEN_CHARS - 1)
    checked = check_client_tokens(
        loaded.policy.clients, environ={"A_TOKEN": ALPHA, "B_TOKEN": ALPHA, "C_TOKEN": short}
    )
    assert checked.digests == {}
    assert checked.errors == [
        "client c: its token (${C_TOKEN}) is shorter than 32 characters; make a long random"
        " one (openssl rand -base64 32)",
        "clients a, b have the same token: each client needs its own, or a call could not"
        " say which one it is",
    ]
    assert not any(ALPHA in e or short in e for e in checked.errors)
    unset = check_client_tokens(loaded.policy.clients, environ={"A_TOKEN": ALPHA})
    assert set(unset.digests) == {"a"} and unset.errors == []
    assert [w.split(" (")[0] for w in unset.warnings] == [
        "client b is disabled",
        "client c is disabled",
    ]


def test_export_lines_quote_every_value_for_the_shell() -> None:
    """What `eval` runs sets exactly the values: no quoting trick runs anything."""
    from bot.api.sealing import credential_document

    text = export_lines("g-abc", credential_document(CREDENTIAL), prefix="GRANTBOT_")
    assert env_name("connection string", prefix="DB_") == "DB_CONNECTION_STRING"
    shown = subprocess.run(
        ["bash", "-c", text + 'printf "%s\\n" "$GRANTBOT_PASSWORD" "$GRANTBOT_REQUEST_ID"'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert shown == "s3cret-'quoted' $(rm -rf /)\ng-abc\n"
    assert shlex.quote("postgres://g_abc@db/x") in text


@pytest.mark.parametrize(
    ("words", "parsed"),
    [
        (["orders-db"], ("orders-db", None, None)),
        (["orders-db", "20m"], ("orders-db", None, "20m")),
        (["orders-db", "migrate"], ("orders-db", "migrate", None)),
        (["orders-db", "migrate", "20m"], ("orders-db", "migrate", "20m")),
    ],
)
def test_request_words(words: list[str], parsed: tuple[str, str | None, str | None]) -> None:
    assert split_words(words) == parsed


def test_approvers_see_a_pipeline_asks_with_its_deployment() -> None:
    grant = make_grant(
        requester="client:deploy-orders",
        deployment=Deployment(id="D-123", url="https://ci.example/d/123", commit="abc1234"),
        public_key=base64.b64encode(b"k" * 32).decode(),
    )
    message = approval_request(grant, now=grant.created_at)
    shown = json.dumps(message.blocks, ensure_ascii=False)
    assert "A pipeline asks: orders-db" in shown
    assert "pipeline client `deploy-orders`" in shown
    assert "<https://ci.example/d/123|D-123> · commit `abc1234`" in shown
    assert message.text.startswith("A pipeline (client deploy-orders) asks for orders-db")
    # A link that could break out of Slack's <url|text> is shown as text.
    odd = grant.model_copy(
        update={"deployment": Deployment(id="D-1", url="https://x.example/a|<!channel>")}
    )
    assert "<!channel>" not in json.dumps(approval_request(odd, now=0).blocks)


def test_the_missing_header_answer_survives_log_redaction(tmp_path: Path) -> None:
    """The refusal is logged: the redactor must leave it readable (it masks whatever
    follows "Authorization:")."""
    loaded = parse_policy(POLICY, filename="p.yaml", environ={})
    tokens = ClientTokens(PolicyHolder(loaded, path=tmp_path / "p.yaml"), environ={})
    line = f"API call refused: {tokens.authenticate(None).problem} (get_request)"
    assert redact(line) == line and "bearer token in the Authorization header" in line
