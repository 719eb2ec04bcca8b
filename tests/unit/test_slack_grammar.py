"""The /access grammar (bot.slack.commands: grammar, escapes, reasons, usage): text after the
slash command -> command objects or a UsageError."""

from __future__ import annotations

import base64
import dataclasses
import re
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.duration import MAX_DURATION_S, format_duration, parse_duration
from bot.domain.ids import ALPHABET
from bot.errors import UsageError
from bot.slack.commands.grammar import ECHO_CHARS, MAX_ERROR_CHARS, parse_command
from bot.slack.commands.parsed import (
    Command,
    ExtendGrant,
    Help,
    ListGrants,
    ListResources,
    OpenForm,
    PendingApprovals,
    RequestAccess,
    RequestBundle,
    RevokeGrant,
    SshKeyAdd,
    SshKeyShow,
)
from bot.slack.commands.reasons import extract_tickets, normalize_reason
from bot.slack.commands.usage import SUBCOMMAND_USAGE, USAGE

REQUEST_USAGE = SUBCOMMAND_USAGE["request"]
GID = "g-7k3p9xqm"

# Real public keys made with ssh-keygen for these tests (the private halves were discarded).
ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJaVFrSN9E/q2jqbzFkoc3JTxhHLgOjMAJo09WklceKv"
ECDSA256 = (
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEfq3DAN3NCUIE5Wr"
    "ZzvpgFJH7quFE3p8Ya5sfCrX8l6+aUo3kShVuW0oTp3m3rCUyXFKH0irGI4DPfo2yum5gw="
)
ECDSA384 = (
    "ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBEDnxfWDJZ//byxqq"
    "5IMJJfIbh9apdUgeO+6PGVMv+AyVaUjoAyM8bRqWvI+oP2FCT4snXre/CG/OS6jG6rqM0B0M9vK0Laus6A/Q+2AQ"
    "t3FnkF+G1KjzAwzBN9WjxBpsQ=="
)
ECDSA521 = (
    "ecdsa-sha2-nistp521 AAAAE2VjZHNhLXNoYTItbmlzdHA1MjEAAAAIbmlzdHA1MjEAAACFBAGEYXDk89xSc0pBe"
    "kXeNtJJHnwXIhnRbP7+hKbMw4tAPdVC3i6+3bv86rCPVBn5DHBkWA2WopYMo7iLZHdM5H0e9gFAeyed83cjpA4+8j"
    "fUQfyXvR9gRCHybQA1JdR8b6EL0aSFdvuZe60zM4RURB/aDk4qSHhP1sokEL0J9f51GBH7xQ=="
)
RSA2048 = (
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDOYhaafdpyPQ/1JH1I4UgUl9LzjkeKErZrYraddt5kS11fzDjFLU"
    "6QJ7cfo4eL7NSwxYCoYvljZqQCp6TzM1D023T7EYT577pII1SC9qM8QF852YAmgknnfSiDvqTtalTtcUwM9wE2amDC"
    "HDQtBQ5ShTL767Ns4Pqz90+wOcqNmQPfeljgxJDdGz30AFVbx6JJJCaO/NsgtbmALxUHKa17EK3t5R5JTzIEdPNPrJ"
    "KJc7AzJXSMtZYQgrBTmM/4vlh5pTJd4a8Y0yYxNjgRuawp7lrWEWTRKpoJvyf/DT5T8k83xr6gnjFGF8ENMsDa/jc9"
    "uQfGY4b/B4GKuHFnqpV7"
)
RSA1024 = (
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDE0GGE0RM0adWxWrKQVIHpc7Zh0K/3NVIcSwnuHCfnXYfwe9GVSs"
    "d6eukQueAeYoNgFo88JgsIF0xrsHAXtHvx4f2t6yfhYseWhqRRWwa+Rct35OEaC3CNLBgXQlectLxfHbrtLTacB7wr"
    "BRjUSAdYWUXER//pRnGh9aSsOteDYQ=="
)


def _ssh_blob(*fields: bytes) -> str:
    return base64.b64encode(b"".join(len(f).to_bytes(4, "big") + f for f in fields)).decode()


# A FIDO key cannot be made without a token; its wire format (PROTOCOL.u2f) is built here.
SK_ED25519 = "sk-ssh-ed25519@openssh.com " + _ssh_blob(
    b"sk-ssh-ed25519@openssh.com", bytes(range(32)), b"ssh:"
)
# Assembled so secret scanners do not flag this file; the body is not a real key.
_PRIVATE_HEADER = "-----BEGIN OPENSSH " + "PRIVATE KEY-----"
FAKE_PRIVATE_BODY = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW"


def usage_error(text: str) -> str:
    """The message of the UsageError that ``text`` must raise."""
    with pytest.raises(UsageError) as info:
        parse_command(text)
    return str(info.value)


# ---------------------------------------------------------------------------------------------
# Valid commands


@pytest.mark.parametrize("text", ["", "   ", "\n\t\xa0 \u3000"])
def test_no_text_opens_the_form(text: str) -> None:
    """Empty or whitespace-only text opens the request form."""
    assert parse_command(text) == OpenForm()


def test_request_with_role() -> None:
    """A full request parses to exact field values, tickets taken from the reason."""
    assert parse_command("request orders-db read 30m INC-42 checkout is failing") == (
        RequestAccess(
            resource="orders-db",
            role="read",
            duration_s=1800,
            reason="INC-42 checkout is failing",
            tickets=("INC-42",),
        )
    )


def test_request_without_role() -> None:
    """When the word after the resource is a duration, the role is None."""
    assert parse_command("request orders-db 30m debugging") == RequestAccess(
        "orders-db", None, 1800, "debugging", ()
    )


@pytest.mark.parametrize(
    ("duration", "seconds"),
    [("90s", 90), ("15m", 900), ("2h", 7200), ("1h30m", 5400), ("1d", 86400), ("2H", 7200)],
)
def test_request_durations(duration: str, seconds: int) -> None:
    """Durations are read by parse_duration, units d/h/m/s, compound and upper case too."""
    command = parse_command(f"request db admin {duration} why")
    assert command == RequestAccess("db", "admin", seconds, "why", ())


def test_names_and_subcommand_are_case_insensitive() -> None:
    """Subcommand, resource and role are matched case-insensitively and stored lowercase."""
    assert parse_command("REQUEST Orders-DB Read_Only 1H Why") == RequestAccess(
        "orders-db", "read_only", 3600, "Why", ()
    )


def test_any_whitespace_separates_tokens() -> None:
    """Tabs, newlines and no-break spaces separate tokens; the reason's runs become one space."""
    text = "\n request\t\torders-db\xa0read\u3000 30m  first\n\nsecond\tthird  \n"
    assert parse_command(text) == RequestAccess("orders-db", "read", 1800, "first second third", ())


def test_tickets_are_deduplicated_in_order_and_reason_keeps_them() -> None:
    """Ticket references are collected once each, first seen first; the reason is unchanged."""
    command = parse_command("request db 1h CHG-7 for INC-42, see INC-42 and (OPS_2-9)")
    assert isinstance(command, RequestAccess)
    assert command.tickets == ("CHG-7", "INC-42", "OPS_2-9")
    assert command.reason == "CHG-7 for INC-42, see INC-42 and (OPS_2-9)"


@pytest.mark.parametrize(
    ("reason", "tickets"),
    [
        ("inc-42 lower case", ()),
        ("A-1 key too short", ()),
        ("ABCDEFGHIJK-1 key too long", ()),
        ("ABCDEFGHIJ-1 key of ten", ("ABCDEFGHIJ-1",)),
        ("xINC-42 and INC-42x glued", ()),
        ("INC- no digits", ()),
        ("<https://jira.example/browse/OPS-12|the ticket>", ("OPS-12",)),
    ],
)
def test_ticket_shapes(reason: str, tickets: tuple[str, ...]) -> None:
    """Only an uppercase 2-10 character key, '-', digits, standing alone, counts as a ticket."""
    command = parse_command(f"request db 1h {reason}")
    assert isinstance(command, RequestAccess)
    assert command.tickets == tickets


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("list", ListGrants()),
        ("pending", PendingApprovals()),
        ("resources", ListResources()),
        ("help", Help()),
        ("Help", Help()),
        ("help request please", Help()),
        ("ssh-key show", SshKeyShow()),
        ("SSH-KEY Show", SshKeyShow()),
    ],
)
def test_simple_subcommands(text: str, command: Command) -> None:
    """Subcommands without arguments parse to their command; help ignores extra words."""
    assert parse_command(text) == command


def test_revoke_with_and_without_reason() -> None:
    """revoke takes a grant id (lowercased) and an optional reason, empty when absent."""
    assert parse_command(f"revoke {GID}") == RevokeGrant(GID, "")
    assert parse_command("revoke G-7K3P9XQM no longer needed") == RevokeGrant(
        GID, "no longer needed"
    )


def test_extend() -> None:
    """extend takes a grant id, a duration and a reason with its tickets."""
    assert parse_command(f"extend {GID} 1h30m still on CHG-7") == ExtendGrant(
        GID, 5400, "still on CHG-7", ("CHG-7",)
    )


def test_commands_are_frozen() -> None:
    """Command objects are immutable values."""
    command = parse_command(f"revoke {GID}")
    assert isinstance(command, RevokeGrant)
    with pytest.raises(dataclasses.FrozenInstanceError):
        command.grant_id = "g-other"  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------
# Usage errors


def test_unknown_subcommand_suggests_the_closest() -> None:
    """A misspelt subcommand is named, the closest known one suggested with its usage."""
    message = usage_error("reqest db 1h x")
    assert message.startswith('unknown subcommand "reqest"; did you mean "request"?')
    assert REQUEST_USAGE in message
    assert 'did you mean "ssh-key"' in usage_error("sshkey show")


def test_unknown_subcommand_without_a_close_match_lists_them() -> None:
    """A subcommand like nothing known gets the list of subcommands."""
    message = usage_error("frobnicate")
    assert message.startswith('unknown subcommand "frobnicate"; use one of request, list,')
    assert "ssh-key" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("request", f"missing resource. Usage: {REQUEST_USAGE}"),
        ("request orders-db", f"missing duration. Usage: {REQUEST_USAGE}"),
        ("request orders-db read", f"missing duration. Usage: {REQUEST_USAGE}"),
        ("request 30m why", 'missing resource before the duration "30m"'),
        ("revoke", "missing grant id. Usage: /access revoke <grant-id> [reason...]"),
        ("extend", "missing grant id. Usage: /access extend <grant-id> <duration> <reason...>"),
        (f"extend {GID}", "missing duration. Usage: /access extend"),
        ("ssh-key", 'missing action: "add" or "show". Usage: /access ssh-key add'),
        ("ssh-key ad", 'unknown ssh-key action "ad"; did you mean "add"? Usage:'),
        ("ssh-key show mine", 'ssh-key show takes no arguments, but got "mine"'),
        ("list all", 'list takes no arguments, but got "all". Usage: /access list'),
        ("pending x", 'pending takes no arguments, but got "x". Usage: /access pending'),
        ("resources x", 'resources takes no arguments, but got "x". Usage: /access resources'),
    ],
)
def test_missing_and_extra_arguments(text: str, expected: str) -> None:
    """A missing or extra argument is named, followed by the subcommand's usage."""
    assert expected in usage_error(text)


@pytest.mark.parametrize(
    ("text", "usage"),
    [
        ("request db 30m", REQUEST_USAGE),
        ("request db read 30m", REQUEST_USAGE),
        ("request db 30m \u200b\u202e", REQUEST_USAGE),
        (f"extend {GID} 1h", SUBCOMMAND_USAGE["extend"]),
    ],
)
def test_reason_is_required(text: str, usage: str) -> None:
    """A request or extend without a (visible) reason says a reason is required."""
    assert usage_error(text) == f"a reason is required: {usage}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("request db read 30x why", '"30x" is not a duration; use a number with d, h, m or s'),
        ("request db 30x why", '"30x" is not a duration'),
        ("request db 100 why", '"100" is not a duration'),
        ("request db 0m why", '"0m" is not a positive duration'),
        ("request db 400d why", '"400d" is longer than a year'),
        ("request db read soon why", '"soon" is not a duration'),
        ("request db 30m1h why", '"30m1h" is not a duration'),
        ("request db \u0663\u0660m why", '"\u0663\u0660m" is not a duration'),
        (f"extend {GID} later why", '"later" is not a duration'),
    ],
)
def test_malformed_duration(text: str, expected: str) -> None:
    """A bad duration gets parse_duration's message (non-ASCII digits refused too) and usage."""
    message = usage_error(text)
    assert expected in message
    assert ". Usage: /access " in message


@pytest.mark.parametrize("text", ["revoke g-123", "extend g-123 1h why"])
def test_malformed_grant_id(text: str) -> None:
    """A token that is not a grant id is named and the id shape shown."""
    assert usage_error(text).startswith('"g-123" is not a grant id; ids look like g-7k3p9xqm.')


@pytest.mark.parametrize(
    "bad_id", ["g-7k3p9xq", "g-7k3p9xqmm", "g-0k3p9xqm", "x-7k3p9xqm", "g-7k3p9xq\u212a"]
)
def test_grant_id_shapes(bad_id: str) -> None:
    """Wrong length, a character outside the id alphabet, or non-ASCII is not a grant id."""
    assert "is not a grant id" in usage_error(f"revoke {bad_id}")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("request orders.db 1h why", "resource must be a plain name like orders-db (a-z, 0-9,"),
        ("request -db 1h why", 'not "-db"'),
        ("request " + "a" * 65 + " 1h why", "at most 64"),
        ("request db read/write 1h why", "role must be a plain name like read (a-z, 0-9, - and _"),
        ("request ordérs 1h why", 'not "ordérs"'),
        ("request \u212aafka 1h why", "resource must be a plain name"),  # Kelvin sign, not K
        ("request ｄｂ 1h why", "resource must be a plain name"),
        ("request db r\u00f4le 1h why", "role must be a plain name"),
    ],
)
def test_names_must_be_plain(text: str, expected: str) -> None:
    """Resources and roles are ASCII names; anything else, unicode included, is refused."""
    message = usage_error(text)
    assert expected in message
    assert message.endswith(REQUEST_USAGE)


def test_command_too_long() -> None:
    """10 kB of text is refused with its length and the limit, quoting none of it."""
    text = "request db 1h " + "x" * (10240 - 14)
    assert usage_error(text) == "that command is 10240 characters; the limit is 2000"


def test_command_at_the_limit_is_accepted() -> None:
    """Exactly 2000 characters is allowed."""
    text = "request db 1h why".ljust(2000)
    assert len(text) == 2000
    assert parse_command(text) == RequestAccess("db", None, 3600, "why", ())


def test_reason_length_limit() -> None:
    """A reason of 500 characters is accepted; 501 is refused with both numbers."""
    command = parse_command("request db 1h " + "r" * 500)
    assert isinstance(command, RequestAccess)
    assert len(command.reason) == 500
    assert usage_error("request db 1h " + "r" * 501).startswith(
        "the reason is 501 characters; the limit is 500. Usage: /access request"
    )


@pytest.mark.parametrize(
    ("char", "code"),
    [("\x00", "U+0000"), ("\x07", "U+0007"), ("\x7f", "U+007F"), ("\x9b", "U+009B")],
)
def test_control_characters_are_refused(char: str, code: str) -> None:
    """NUL and other control characters are refused, named by code point and position."""
    message = usage_error(f"request db 1h why{char}not")
    assert message == (
        f"the command contains a control character ({code}) at position 18; remove it and try again"
    )


def test_unpaired_surrogate_is_refused() -> None:
    """A lone surrogate (from malformed JSON) is refused rather than crashing later."""
    assert "unpaired surrogate (U+D800)" in usage_error("request db 1h why \ud800")


# ---------------------------------------------------------------------------------------------
# Slack escapes


ESCAPES = [
    ("<@U123|bob>", "a user mention"),
    ("<@U123>", "a user mention"),
    ("<#C123|general>", "a channel link"),
    ("<!here>", "an @here mention"),
    ("<!channel>", "an @channel mention"),
    ("<!subteam^S123|@oncall>", "a user-group mention"),
    ("<https://example.com/x|the doc>", "a link"),
    ("<http://orders.example.com|orders.example.com>", "a link"),
    ("<mailto:a@example.com|a@example.com>", "an email link"),
]


@pytest.mark.parametrize(("escape", "kind"), ESCAPES)
@pytest.mark.parametrize(
    ("template", "what"),
    [
        ("request {} 1h why", "resource must be a plain name like orders-db, not "),
        ("request db {} 1h why", "role must be a plain name like read, not "),
        ("request db read {} why", "duration must be written like 30m or 1h30m, not "),
        ("revoke {} why", "grant id must look like g-7k3p9xqm, not "),
        ("extend {} 1h why", "grant id must look like g-7k3p9xqm, not "),
        (f"extend {GID} {{}} why", "duration must be written like 30m or 1h30m, not "),
    ],
)
def test_escapes_refused_where_a_name_is_expected(
    template: str, what: str, escape: str, kind: str
) -> None:
    """Any Slack escape in a name, id or duration position is refused, naming its kind."""
    message = usage_error(template.format(escape))
    assert message.startswith(what + kind + ". Usage: /access ")


@pytest.mark.parametrize(
    ("raw", "rendered"),
    [
        ("<@U123|bob> asked", "@bob asked"),
        ("<@U123> asked", "@U123 asked"),
        ("see <#C123|incidents>", "see #incidents"),
        ("see <#C123>", "see #C123"),
        ("<!here> heads up", "@here heads up"),
        ("<!subteam^S1|@oncall> paged", "@oncall paged"),
        ("<!date^1392734382^{date}|Feb 18, 2014> outage", "Feb 18, 2014 outage"),
        (
            "per <https://wiki.example/run|the runbook>",
            "per the runbook (https://wiki.example/run)",
        ),
        ("per <https://wiki.example/run>", "per https://wiki.example/run"),
        ("host <http://orders.example.com|orders.example.com>", "host orders.example.com"),
        ("ask <mailto:a@example.com|a@example.com>", "ask a@example.com"),
        ("a &lt; b &amp;&amp; c &gt; d", "a < b && c > d"),
        ("literal &amp;lt;", "literal &lt;"),
        ("odd <thing> stays", "odd <thing> stays"),
    ],
)
def test_escapes_in_the_reason_are_rendered(raw: str, rendered: str) -> None:
    """In a reason, Slack escapes become readable text and entities are decoded once."""
    command = parse_command(f"request db 1h {raw}")
    assert isinstance(command, RequestAccess)
    assert command.reason == rendered


def test_link_label_with_spaces_stays_one_token() -> None:
    """A link whose label has spaces is one token, so it is refused whole as a resource."""
    assert usage_error("request <https://x.example|orders db> 1h why").startswith(
        "resource must be a plain name like orders-db, not a link."
    )


def test_normalize_reason_without_slack_escaping() -> None:
    """Text that was never Slack-escaped (a modal value) keeps '<' and '&amp;' as typed."""
    assert normalize_reason("<@U1> &amp;\u200b x", slack_escaped=False) == "<@U1> &amp; x"


# ---------------------------------------------------------------------------------------------
# Unicode


def test_reason_unicode_is_kept_and_nfc_normalised() -> None:
    """Unicode in a reason is kept, composed to NFC."""
    command = parse_command("request db 1h cafe\u0301 r\u00e9paration 修复 🚒")
    assert isinstance(command, RequestAccess)
    assert command.reason == "caf\u00e9 r\u00e9paration 修复 🚒"
    assert unicodedata.is_normalized("NFC", command.reason)


def test_reason_invisible_characters_are_removed() -> None:
    """Zero-width, bidi-control, BOM and tag characters are stripped from a reason."""
    hidden = "\u200bfix\u200c \u202eINC-42\u202c\u2066x\u2069\ufeff\U000e0041"
    command = parse_command(f"request db 1h {hidden}")
    assert isinstance(command, RequestAccess)
    assert command.reason == "fix INC-42x"


def test_quoted_input_shows_invisible_characters() -> None:
    """An error quoting input spells out bidi/zero-width characters instead of embedding them."""
    message = usage_error("request ab\u202ecd 1h why")
    assert 'not "ab\\u202ecd"' in message
    assert "\u202e" not in message


def test_quoted_input_is_truncated() -> None:
    """An error quotes at most ECHO_CHARS characters of a long token."""
    token = "".join(chr(ord("a") + i % 26) for i in range(300))
    message = usage_error(f"request {token} 1h why")
    assert f'not "{token[: ECHO_CHARS - 3]}..."' in message
    assert token[: ECHO_CHARS - 2] not in message


# ---------------------------------------------------------------------------------------------
# SSH keys


@pytest.mark.parametrize("key", [ED25519, ECDSA256, ECDSA384, ECDSA521, RSA2048, SK_ED25519])
def test_ssh_key_add_accepts_each_type(key: str) -> None:
    """Each supported OpenSSH public key type is accepted as given."""
    assert parse_command(f"ssh-key add {key}") == SshKeyAdd(key)


def test_ssh_key_comment_is_kept_and_rendered() -> None:
    """A key's comment is kept, Slack's mailto link turned back into the address typed."""
    text = f"ssh-key ADD  {ED25519}   <mailto:alice@laptop.example|alice@laptop.example> work\n"
    assert parse_command(text) == SshKeyAdd(f"{ED25519} alice@laptop.example work")


PRIVATE_WARNING = "never a private key"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("ssh-key add", "missing key"),
        ("ssh-key add ssh-ed25519", "the key has no body after ssh-ed25519"),
        ("ssh-key add ssh-dss AAAAB3NzaC1kc3M= old", "not an OpenSSH public key of type"),
        ("ssh-key add AAAAC3NzaC1lZDI1NTE5AAAAIJaVFrSN9E", "not an OpenSSH public key of type"),
        ('ssh-key add from="10.0.0.1" ' + ED25519, "not an OpenSSH public key of type"),
        ("ssh-key add ssh-ed25519 AAAA!!!notbase64", "not valid base64"),
        # Lenient base64 would drop the stray "!" and accept the key.
        ("ssh-key add " + ED25519.replace("C3Nz", "C3!Nz"), "not valid base64"),
        ("ssh-key add ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJaVFrSN9E", "not valid base64"),
        ("ssh-key add " + ED25519.replace("ssh-ed25519", "ssh-rsa", 1), "not a ssh-rsa key"),
        ("ssh-key add " + ECDSA256.replace("nistp256", "nistp384", 1), "not a ecdsa-sha2-nistp384"),
        ("ssh-key add ssh-ed25519 " + _ssh_blob(b"ssh-ed25519", b"short"), "malformed"),
        ("ssh-key add ssh-ed25519 " + _ssh_blob(b"ssh-ed25519", bytes(32), b"x"), "malformed"),
        ("ssh-key add " + RSA1024, "that RSA key has 1024 bits; use at least 2048"),
        ("ssh-key add " + ED25519.replace(" ", "\n"), "the key must be on one line"),
    ],
)
def test_ssh_key_add_refusals(text: str, problem: str) -> None:
    """A bad public key gets a specific problem and the never-paste-a-private-key advice."""
    message = usage_error(text)
    assert problem in message
    assert PRIVATE_WARNING in message
    assert message.endswith("Usage: /access ssh-key add <openssh public key>")
    # Nothing of the pasted key body is quoted back.
    assert "AAAA" not in message


@pytest.mark.parametrize(
    "pasted",
    [
        f"{_PRIVATE_HEADER}\n{FAKE_PRIVATE_BODY}\n-----END OPENSSH " + "PRIVATE KEY-----",
        f"{_PRIVATE_HEADER} {FAKE_PRIVATE_BODY}",
        FAKE_PRIVATE_BODY,
        "-----BEGIN RSA " + "PRIVATE KEY-----\nMIIEowIBAAKCAQEAz1\n",
        "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\n",
    ],
)
@pytest.mark.parametrize("prefix", ["ssh-key add ", "request db 1h ", "", "ssh-key add ssh-rsa "])
def test_private_key_is_refused_and_never_echoed(prefix: str, pasted: str) -> None:
    """A pasted private key, anywhere in the command, is refused without quoting any of it."""
    message = usage_error(prefix + pasted)
    assert "PRIVATE key" in message
    assert "Never paste a private key" in message
    for fragment in ("b3Bl", "MIIE", "PuTTY", "BEGIN", "Encryption"):
        assert fragment not in message


# ---------------------------------------------------------------------------------------------
# Help text


def test_usage_lists_every_subcommand_as_escaped_mrkdwn() -> None:
    """USAGE shows every subcommand's usage line, with <> escaped for Slack mrkdwn."""
    for line in SUBCOMMAND_USAGE.values():
        for part in line.split(" | "):
            assert part.replace("<", "&lt;").replace(">", "&gt;") in USAGE
    assert "<" not in USAGE
    assert ">" not in USAGE
    assert "private key" in USAGE


# ---------------------------------------------------------------------------------------------
# Properties

SUBCOMMAND_WORDS = [
    "request", "REQUEST", "reqest", "revoke", "extend", "list", "pending", "resources", "help",
    "ssh-key", "add", "show",
]  # fmt: skip
JUNK_WORDS = [
    "orders-db", "read", "g-123", "G-7K3P9XQM", "30m", "1h30m", "0m", "400d", "90s", "1d", "100",
    "30x", "\u0663\u0660m", "INC-42", "CHG-7", "inc-1", "<@U123|bob>", "<@U123>", "<#C1|gen>",
    "<!here>", "<!subteam^S1|@t>", "<https://x.example|a label>", "<mailto:a@b.c|a@b.c>", "<",
    ">", "|", "&lt;", "&amp;", "\u200b", "\u202e", "\u212a", "é", "e\u0301", "🚒", "\x00",
    "\ud800", "ssh-ed25519", "ssh-rsa", "AAAAC3NzaC1lZDI1NTE5", "AAAA====", _PRIVATE_HEADER,
    FAKE_PRIVATE_BODY, ED25519, RSA1024,
]  # fmt: skip
SEPARATORS = st.sampled_from([" ", "  ", "\t", "\n", "\xa0", "\u3000", " \r\n "])
GRANT_IDS = st.text(alphabet=ALPHABET, min_size=8, max_size=8).map("g-".__add__)
DURATIONS = st.integers(1, MAX_DURATION_S).map(format_duration)
WORDS = st.one_of(
    st.sampled_from(SUBCOMMAND_WORDS + JUNK_WORDS),
    GRANT_IDS,
    DURATIONS,
    st.text(max_size=12),
    st.text(min_size=40, max_size=120),
)
NEAR_VALID = st.tuples(
    st.sampled_from([*SUBCOMMAND_WORDS, ""]),
    st.lists(st.tuples(SEPARATORS, WORDS), max_size=10),
).map(lambda parts: parts[0] + "".join(sep + word for sep, word in parts[1]))


def check_outcome(text: str) -> None:
    """parse_command returns a Command or raises a bounded, one-line, short-quoting UsageError."""
    try:
        command = parse_command(text)
    except UsageError as e:
        message = str(e)
        assert 0 < len(message) <= MAX_ERROR_CHARS
        assert "\n" not in message
        # No stretch of the input longer than the quote limit (plus quote marks) comes back.
        window = ECHO_CHARS + 5
        assert not any(message[i : i + window] in text for i in range(len(message) - window + 1)), (
            message
        )
    else:
        assert isinstance(command, Command)


@settings(max_examples=800, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_arbitrary_text_returns_a_command_or_a_usage_error(text: str) -> None:
    """Any text at all yields a Command or a UsageError, never another exception."""
    check_outcome(text)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(NEAR_VALID)
def test_near_valid_text_returns_a_command_or_a_usage_error(text: str) -> None:
    """Commands built from real and broken pieces yield a Command or a bounded UsageError."""
    check_outcome(text)


LONG = st.text(min_size=0, max_size=400)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(
        [
            "request {} {} {} {}",
            "request db {} {} {}",
            "request db read {} {}",
            "revoke {} {}",
            "extend {} {} {}",
            f"extend {GID} {{}} {{}}",
            "{} {}",
            "ssh-key {} {}",
            "ssh-key add {} {} {}",
            "list {}",
        ]
    ),
    st.lists(LONG, min_size=4, max_size=4),
)
def test_error_messages_stay_bounded(template: str, pieces: list[str]) -> None:
    """Long or odd text in any position never makes a message long or quote more than ~40."""
    check_outcome(template.format(*pieces))


def _not_a_duration(word: str) -> bool:
    try:
        parse_duration(word)
    except UsageError:
        return True
    return False


NAMES = st.from_regex(r"[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}", fullmatch=True).filter(_not_a_duration)
REASON_WORDS = st.text(
    alphabet=st.characters(categories=["L", "N", "P", "S"], exclude_characters="<>&"),
    min_size=1,
    max_size=20,
).filter(lambda w: unicodedata.is_normalized("NFC", w))
TICKETS = st.from_regex(r"[A-Z]{2,10}-[1-9][0-9]{0,4}", fullmatch=True)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    resource=NAMES,
    role=st.none() | NAMES,
    duration_s=st.integers(1, MAX_DURATION_S),
    words=st.lists(st.one_of(REASON_WORDS, TICKETS), min_size=1, max_size=20),
    seps=st.lists(SEPARATORS, min_size=30, max_size=30),
)
def test_round_trip(
    resource: str, role: str | None, duration_s: int, words: list[str], seps: list[str]
) -> None:
    """A command built from valid parts parses back to the same (lowercased) values."""
    parts = ["request", resource, *([role] if role else []), format_duration(duration_s), *words]
    text = seps[0] + "".join(part + sep for part, sep in zip(parts, seps[1:], strict=False))
    command = parse_command(text)
    assert isinstance(command, RequestAccess)
    assert command.resource == resource.lower()
    assert command.role == (role.lower() if role else None)
    assert command.duration_s == duration_s
    assert command.reason == " ".join(words)
    assert command.tickets == extract_tickets(command.reason)
    expected = [w for w in words if re.fullmatch(r"[A-Z]{2,10}-[0-9]+", w)]
    assert set(expected) <= set(command.tickets)


# ---------------------------------------------------------------------------------------------
# On someone's behalf: nobody named, and a bundle (issue 13)


@pytest.mark.parametrize("text", ["request for", "request for   ", "REQUEST For"])
def test_request_for_with_nobody_named_asks_for_a_mention(text: str) -> None:
    """``for`` alone is the keyword with nobody after it, not a resource missing its
    duration."""
    message = usage_error(text)
    assert message.startswith(
        "name the person as a mention, e.g. /access request for @dana orders-db read 1h"
    )
    assert "missing duration" not in message


@pytest.mark.parametrize(
    "text",
    [
        "request bundle incident-responder 1h for <@U0CAROL> INC-1 x",
        "request bundle incident-responder 1h for <@U0CAROL|carol> INC-1 x",
        "request bundle incident-responder 1h <@U0CAROL> INC-1 x",
    ],
)
def test_a_bundle_on_someones_behalf_is_refused_not_filed_for_the_asker(text: str) -> None:
    """It used to file the bundle for the asker with the reason "for <@carol> …"."""
    assert "a bundle cannot be asked for on someone's behalf" in usage_error(text)


def test_a_bundle_reason_may_still_begin_with_for() -> None:
    assert parse_command("request bundle responder 1h for INC-1 outage") == RequestBundle(
        "responder", 3600, "for INC-1 outage", ("INC-1",)
    )
