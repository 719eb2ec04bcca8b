"""Logging: one JSON object a line with bound context, and no secret the bot handles ever
reaches a log line, wherever in the record it sits."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import secrets
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.config import load_settings
from bot.logs import (
    REDACTED,
    RedactingFilter,
    bound,
    configure_logging,
    redact,
    register_secret,
)
from bot.providers.passwords import new_password

log = logging.getLogger("bot.test_logging")

_QUIETED = ("aiohttp.access", "apscheduler", "slack_bolt", "slack_sdk")


class Captured:
    """What configure_logging wrote to its stream during a test."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def __call__(self) -> list[dict[str, Any]]:
        """This module's lines, each parsed as one JSON object; any line at all that is not
        exactly one JSON object fails the test."""
        assert self.text.endswith("\n") or not self.text
        parsed = []
        for line in self.text.splitlines():
            obj = json.loads(line)  # raises if a line is not (exactly) one JSON document
            assert isinstance(obj, dict), line
            if obj["logger"].startswith(log.name):  # not asyncio's own debug lines
                parsed.append(obj)
        return parsed


@pytest.fixture
def capture() -> Iterator[Captured]:
    """Route logging through configure_logging into a buffer; restore the root logger after."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    saved_quieted = {name: logging.getLogger(name).level for name in _QUIETED}
    captured = Captured()
    configure_logging(level="DEBUG", stream=captured.stream)
    try:
        yield captured
    finally:
        for handler in list(root.handlers):
            if handler not in saved_handlers:
                root.removeHandler(handler)
        for handler in saved_handlers:  # configure_logging replaced an earlier grantbot one
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(saved_level)
        for name, level in saved_quieted.items():
            logging.getLogger(name).setLevel(level)


# -- shape ----------------------------------------------------------------------------------


def test_each_record_is_one_json_line_carrying_the_bound_request(capture: Captured) -> None:
    """Inside bound(request_id, user, resource) every line carries all three; outside, none;
    a multi-line message is still one line."""
    with bound(request_id="req-1a2b", user="U024BE7LH", resource="orders-db"):
        log.info("request filed for %s", "read")
        log.warning("first line\nsecond line")
    log.info("after the request")

    lines = capture()
    assert len(lines) == 3 == capture.text.count("\n")  # no line was split in two
    inside, multi, outside = lines
    for line in (inside, multi):
        assert line["request_id"] == "req-1a2b"
        assert line["user"] == "U024BE7LH"
        assert line["resource"] == "orders-db"
    assert inside["msg"] == "request filed for read"
    assert inside["level"] == "info" and inside["logger"] == "bot.test_logging"
    assert inside["ts"].endswith("Z")
    assert multi["msg"] == "first line\nsecond line" and multi["level"] == "warning"
    assert not {"request_id", "user", "resource"} & outside.keys()


def test_bound_contexts_nest_and_stay_with_their_own_task(capture: Captured) -> None:
    """Nested bound() adds fields and restores them on exit; two concurrent requests in two
    tasks never see each other's fields, however their awaits interleave."""

    async def handle(request_id: str, user: str) -> None:
        with bound(request_id=request_id, user=user):
            for step in range(3):
                await asyncio.sleep(0)
                log.info("step %d", step)

    async def main() -> None:
        await asyncio.gather(handle("req-a", "UAAAAAAAA"), handle("req-b", "UBBBBBBBB"))

    with bound(replica="r1"):
        with bound(resource="cache"):
            log.info("nested")
        log.info("outer")
        asyncio.run(main())

    lines = capture()
    assert lines[0]["replica"] == "r1" and lines[0]["resource"] == "cache"
    assert lines[1]["replica"] == "r1" and "resource" not in lines[1]
    steps = lines[2:]
    assert len(steps) == 6
    assert {(line["request_id"], line["user"]) for line in steps} == {
        ("req-a", "UAAAAAAAA"),
        ("req-b", "UBBBBBBBB"),
    }
    assert sorted(line["request_id"] for line in steps) == ["req-a"] * 3 + ["req-b"] * 3
    assert all(line["replica"] == "r1" for line in steps)


def test_exception_is_kept_on_the_same_line(capture: Captured) -> None:
    """log.exception writes one line whose ``exc`` holds the whole traceback."""
    with bound(request_id="req-exc"):
        try:
            raise ValueError("the target said no")
        except ValueError:
            log.exception("issuing failed")

    (line,) = capture()
    assert line["msg"] == "issuing failed" and line["request_id"] == "req-exc"
    assert line["exc"].startswith("Traceback (most recent call last):")
    assert "ValueError: the target said no" in line["exc"]


def test_configure_logging_twice_still_writes_each_record_once(capture: Captured) -> None:
    """Calling configure_logging again replaces its handler instead of adding a second."""
    buffer = io.StringIO()
    configure_logging(level="INFO", stream=buffer)
    configure_logging(level="INFO", stream=buffer)
    log.info("once")
    log.debug("below the level")
    assert [json.loads(x)["msg"] for x in buffer.getvalue().splitlines()] == ["once"]


# -- redaction ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Secret:
    """One kind of secret as it shows up in text, and the parts that must never be logged."""

    kind: str
    text: str
    never: tuple[str, ...]
    register: str | None = None  # a value the bot registers (register_secret) when it has it

    def __str__(self) -> str:
        return self.kind


def _pem(label: str, der: bytes) -> str:
    body = base64.b64encode(der).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"])


def _pkcs8_ed25519() -> str:
    """A real PKCS#8 Ed25519 private key (RFC 8410): fixed DER prefix + 32 random bytes."""
    return _pem("PRIVATE KEY", bytes.fromhex("302e020100300506032b657004220420") + _rand(32))


def _openssh_ed25519(tmp: Path) -> str:
    """A real OpenSSH private key from ssh-keygen (the tool the ssh_cert provider uses)."""
    keygen = shutil.which("ssh-keygen")
    if keygen is None:  # CI installs openssh-client (.ci/run); fall back to a same-shape key
        return _pem("OPENSSH PRIVATE KEY", b"openssh-key-v1\x00" + _rand(200))
    tmp.mkdir()
    path = tmp / "id_ed25519"
    subprocess.run(
        [keygen, "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path.read_text().strip()


def _rand(n: int) -> bytes:
    return secrets.token_bytes(n)


def _key_body(pem: str) -> tuple[str, ...]:
    """The base64 lines of a PEM block that no other key shares: none may be logged. (An
    OpenSSH key's first line is the same format header in every unencrypted Ed25519 key.)"""
    body = [line for line in pem.splitlines() if not line.startswith("-----")]
    if pem.startswith("-----BEGIN OPENSSH"):
        body = body[1:]
    return tuple(body)


def _secret_kinds(tmp: Path) -> list[Secret]:
    signing = secrets.token_hex(16)  # Slack signing secrets are 32 hex digits
    db_password = new_password()
    redis_password = new_password()
    webhook_key = secrets.token_urlsafe(32)
    openssh = _openssh_ed25519(tmp / "a")
    cut = _openssh_ed25519(tmp / "b")
    cut = cut[: len(cut) // 2]  # a message truncated mid-key: no END line
    pkcs8 = _pkcs8_ed25519()
    bot = "xoxb-" + "-".join(["1234567890", "0987654321", secrets.token_hex(12)])
    user = "xoxp-" + "-".join(["1234567890", "0987654321", "1122334455", secrets.token_hex(16)])
    app = "xapp-1-A0123ABCD-1234567890123-" + secrets.token_hex(32)
    pd = secrets.token_urlsafe(15)
    genie = "eb243592-faa2-4ba2-a551-" + secrets.token_hex(6)
    bearer = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJncmFudGJvdCJ9." + secrets.token_urlsafe(16)
    pw_pair = "Tr0ub4dor&" + secrets.token_hex(4)
    pg_pw = "pg-" + secrets.token_hex(8)
    my_pw = "my-" + secrets.token_hex(8)
    rd_pw = "rd-" + secrets.token_hex(8)
    quoted = "q-" + secrets.token_hex(8)
    aws_secret = base64.b64encode(_rand(30)).decode()  # 40 characters, as AWS's are
    aws_token = "IQoJb3JpZ2luX2VjE" + base64.b64encode(_rand(300)).decode()
    return [
        Secret("slack-bot-token", f"client token {bot}", (bot, bot[5:])),
        Secret("slack-user-token", f"token={user}", (user, user[5:])),
        Secret("slack-app-token", f"socket mode with {app}", (app, app[5:])),
        Secret("signing-secret", f"verifying with {signing}", (signing,), register=signing),
        Secret(
            "issued-db-password",
            f"CREATE ROLE gb_x LOGIN PASSWORD '{db_password}' VALID UNTIL 'x'",
            (db_password,),
            register=db_password,
        ),
        Secret(
            "issued-redis-password",
            f"ACL SETUSER gb_x reset on >{redis_password} ~cache:* +@read",
            (redis_password,),
            register=redis_password,
        ),
        Secret("openssh-private-key", f"key was:\n{openssh}\n", _key_body(openssh)),
        Secret("pkcs8-private-key", f"key was:\n{pkcs8}\n", _key_body(pkcs8)),
        Secret("truncated-private-key", f"key was:\n{cut}", _key_body(cut)),
        Secret(
            "password-pair",
            f"host=db.internal user=grantbot password={pw_pair} dbname=orders",
            (pw_pair,),
        ),
        Secret("quoted-json-password", f'{{"password": "{quoted}"}}', (quoted,)),
        Secret("postgres-dsn", f"postgres://grantbot:{pg_pw}@db.internal:5432/orders", (pg_pw,)),
        Secret("mysql-dsn", f"mysql://grantbot:{my_pw}@billing-db:3306/billing", (my_pw,)),
        Secret("redis-url-no-user", f"redis://:{rd_pw}@cache.internal:6379/0", (rd_pw,)),
        Secret("webhook-hmac-secret", f"hmac key {webhook_key}", (webhook_key,), webhook_key),
        Secret("pagerduty-token", f"Authorization: Token token={pd}", (pd,)),
        Secret("pagerduty-token-bare", f"sent Token token={pd} to PagerDuty", (pd,)),
        Secret("opsgenie-key", f"Authorization: GenieKey {genie}", (genie,)),
        Secret("opsgenie-key-in-headers", f"{{'Authorization': 'GenieKey {genie}'}}", (genie,)),
        Secret("bearer", f"Authorization: Bearer {bearer}", (bearer, bearer.split(".")[2])),
        Secret("bearer-bare", f"retrying with Bearer {bearer}", (bearer, bearer.split(".")[2])),
        Secret(
            "aws-export-block",
            f"export AWS_SECRET_ACCESS_KEY={aws_secret}\nexport AWS_SESSION_TOKEN={aws_token}",
            (aws_secret, aws_token),
        ),
        Secret(
            "aws-credentials-profile",
            f"[p]\naws_secret_access_key = {aws_secret}\naws_session_token = {aws_token}",
            (aws_secret, aws_token),
        ),
        Secret(
            "aws-sdk-json",
            f'{{"SecretAccessKey": "{aws_secret}", "SessionToken": "{aws_token}"}}',
            (aws_secret, aws_token),
        ),
        Secret(
            "sts-xml",
            f"<SecretAccessKey>{aws_secret}</SecretAccessKey><SessionToken>{aws_token}"
            "</SessionToken>",
            (aws_secret, aws_token),
        ),
        Secret("aws-session-token-bare", f"signed with {aws_token} today", (aws_token,)),
    ]


def _emit_in_message(s: Secret) -> None:
    log.info("call failed: " + s.text.replace("%", "%%"))


def _emit_in_args(s: Secret) -> None:
    log.warning("call failed: %s (attempt %d)", s.text, 2)


def _emit_in_extra(s: Secret) -> None:
    log.info("call failed", extra={"detail": s.text, "request": {"headers": [s.text]}})


def _emit_in_traceback(s: Secret) -> None:
    try:
        try:
            raise ConnectionError(s.text)
        except ConnectionError as e:
            raise RuntimeError(f"while connecting: {s.text!r}") from e
    except RuntimeError:
        log.exception("provider failed")


def _emit_in_bound(s: Secret) -> None:
    with bound(request_id="req-1", note=s.text):
        log.info("bound")


PLACES: dict[str, Callable[[Secret], None]] = {
    "message": _emit_in_message,
    "args": _emit_in_args,
    "extra": _emit_in_extra,
    "traceback": _emit_in_traceback,
    "bound": _emit_in_bound,
}


@pytest.mark.parametrize("place", list(PLACES))
def test_no_secret_kind_survives_in_any_part_of_a_record(
    capture: Captured, tmp_path: Path, place: str
) -> None:
    """Every secret kind the bot handles (Slack tokens, the signing secret, issued passwords,
    private keys, password pairs, DSNs, the webhook key, on-call tokens, bearer headers) is
    masked (AWS secret keys and session tokens too, as exports, profiles, JSON and XML)
    whether it sits in the message, the args, extra fields, a chained traceback or the
    bound context; each line stays valid JSON and says [REDACTED] where the secret was."""
    kinds = _secret_kinds(tmp_path)
    for s in kinds:
        if s.register:
            register_secret(s.register)
        PLACES[place](s)

    lines = capture()
    assert len(lines) == len(kinds)
    text = capture.text
    # JSON escapes newlines and quotes; check the decoded values too, not just the raw bytes.
    decoded = json.dumps(lines, ensure_ascii=False) + "".join(
        str(v) for line in lines for v in line.values()
    )
    for s, line in zip(kinds, lines, strict=True):
        for fragment in s.never:
            assert fragment not in text, f"{s.kind} leaked in {place}"
            assert fragment not in decoded, f"{s.kind} leaked in {place} (decoded)"
        assert REDACTED in json.dumps(line), f"{s.kind} in {place}: nothing was masked"


def test_secret_named_fields_are_masked_whole(capture: Captured) -> None:
    """An extra field called password / token / api_key / Authorization is masked entirely,
    even when its value has no recognisable shape; fields that only name one are kept."""
    log.info(
        "connecting",
        extra={
            "password": "correct horse battery staple",
            "api_key": "plain words",
            "headers": {"Authorization": "custom scheme abc", "Accept": "application/json"},
            "token_id": "tok-42",
            "ca_key_file": "/etc/grantbot/ssh_ca",
            "aws": {"SecretAccessKey": "sak words", "SessionToken": "st words"},
            "AccessKeyId": "ASIAEXAMPLE",
        },
    )
    (line,) = capture()
    assert line["password"] == REDACTED and line["api_key"] == REDACTED
    assert line["aws"] == {"SecretAccessKey": REDACTED, "SessionToken": REDACTED}
    assert line["AccessKeyId"] == "ASIAEXAMPLE"  # an access key id is not a secret
    assert line["headers"] == {"Authorization": REDACTED, "Accept": "application/json"}
    assert line["token_id"] == "tok-42" and line["ca_key_file"] == "/etc/grantbot/ssh_ca"
    assert "horse" not in capture.text and "custom scheme" not in capture.text


def test_plain_handlers_get_the_masked_record_too(tmp_path: Path) -> None:
    """RedactingFilter masks the record itself (message, string extras, exception text), so a
    handler with an ordinary text formatter prints no secret either."""
    pg_pw = "pg-" + secrets.token_hex(8)
    token = "xoxb-1234567890-" + secrets.token_hex(12)
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s %(detail)s"))
    handler.addFilter(RedactingFilter())
    plain = logging.getLogger("bot.test_logging.plain")
    plain.addHandler(handler)
    plain.propagate = False
    try:
        try:
            raise OSError(f"could not reach postgres://gb:{pg_pw}@db/orders")
        except OSError:
            plain.exception("with %s", token, extra={"detail": f"password={pg_pw}"})
    finally:
        plain.removeHandler(handler)
        plain.propagate = True
    out = buffer.getvalue()
    assert "Traceback" in out and "OSError" in out
    assert pg_pw not in out and token not in out
    assert out.count(REDACTED) >= 3


def test_ordinary_log_text_is_left_alone() -> None:
    """The patterns do not mangle what grantbot normally logs."""
    ordinary = [
        "grant g-7f3k2m approved by U024BE7LH: orders-db read for 30m (INC-42)",
        "revocation batch: 12 ended, 0 failed, 1 skipped",
        "policy reloaded: version dbce8590c857 -> 0a1b2c3d4e5f",
        "POST https://hooks.example.com:8443/grantbot?grant=g-1 answered 200",
        "redis://cache.internal:6379/0 is unavailable: ConnectionError",
        "basic checks passed; keys ~cache:* commands +@read",
        "slack auth.test passed",
        "replica host-1:4242 now runs the revocation scheduler",
    ]
    for line in ordinary:
        assert redact(line) == line


def test_registered_secret_is_masked_even_inside_other_text() -> None:
    """A registered value is masked wherever it appears, with no pattern needed; very short
    values are not registered (they would mask ordinary words)."""
    value = secrets.token_urlsafe(12)
    register_secret(value)
    register_secret("abc")
    assert redact(f"prefix{value}suffix") == f"prefix{REDACTED}suffix"
    assert redact("abc def") == "abc def"


def test_slack_credentials_from_the_environment_are_masked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Loading the settings registers the Slack token, signing secret and app token, so none
    of them survives in a log line even where no pattern would recognise it."""
    values = {
        "SLACK_BOT_TOKEN": "xoxb-" + secrets.token_hex(8),
        "SLACK_SIGNING_SECRET": secrets.token_hex(16),
        "SLACK_APP_TOKEN": "xapp-" + secrets.token_hex(8),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    load_settings()
    for value in values.values():
        assert redact(f"debug: sent {value} to slack") == f"debug: sent {REDACTED} to slack"
