"""Strict validation and quoting of the policy's MySQL grant strings."""

from __future__ import annotations

import pytest

from bot.providers.mysql_grants import parse_grant


@pytest.mark.parametrize(
    ("text", "statement"),
    [
        ("SELECT ON billing.*", r"GRANT SELECT ON `billing`.* TO %s@%s"),
        (
            "select, insert ON billing.invoices",
            "GRANT SELECT, INSERT ON `billing`.`invoices` TO %s@%s",
        ),
        ("SHOW   VIEW,SELECT on app_db.*", r"GRANT SHOW VIEW, SELECT ON `app\_db`.* TO %s@%s"),
        ("SELECT ON app_db.user_events", "GRANT SELECT ON `app_db`.`user_events` TO %s@%s"),
    ],
)
def test_valid_grants_render_fully_quoted(text: str, statement: str) -> None:
    """Accepted grants render with backquoted names; in db.* grants '_' is escaped because
    MySQL reads it as a wildcard there."""
    assert parse_grant(text).statement() == statement


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("ALL ON billing.*", "not allowed"),
        ("ALL PRIVILEGES ON billing.*", "not allowed"),
        ("GRANT OPTION ON billing.*", "not allowed"),
        ("SUPER ON billing.*", "not allowed"),
        ("FILE ON billing.*", "not allowed"),
        ("SELECT ON *.*", "global grants"),
        ("SELECT ON billing", "not <db>.<table>"),
        ("SELECT ON mysql.user", "system schema"),
        ("SELECT ON billing.*; DROP DATABASE billing", "is not"),
        ("SELECT ON `billing`.*", "not <db>.<table>"),
        ("SELECT ON billing.* TO 'x'@'%'", "not"),
        ("SELECT ON bill%.*", "not <db>.<table>"),
        ("SELECT", "is not '<privileges> ON"),
    ],
)
def test_anything_else_is_refused_with_the_reason(text: str, reason: str) -> None:
    """ALL, GRANT OPTION, server privileges, global or system-schema grants, and anything
    beyond '<privileges> ON <db>.<table>' are refused, saying why."""
    with pytest.raises(ValueError, match=reason):
        parse_grant(text)
