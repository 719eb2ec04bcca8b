"""The provider contract's value types and the names derived from grant ids."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain import ids
from bot.domain.credentials import REDACTED
from bot.errors import ProviderError
from bot.providers.base import GrantContext, scrub
from bot.providers.naming import (
    ID_CHARS,
    MAX_ID_CHARS,
    cert_serial,
    grant_id_from_login,
    grant_id_from_serial,
    login_name,
)
from tests.factories import NOW, make_grant

PASSWORD = "s3cr3t-Pa55w0rd-value"


def test_scrub_replaces_every_secret_occurrence() -> None:
    """scrub() removes each secret from a text (used on target error messages)."""
    assert (
        scrub(f"bad {PASSWORD} near {PASSWORD}", [PASSWORD, ""])
        == f"bad {REDACTED} near {REDACTED}"
    )


def test_context_from_an_approved_grant_carries_its_expiry() -> None:
    """GrantContext.from_grant copies id, requester, resource, role and expiry."""
    grant = make_grant(expires_at=NOW + 60)
    ctx = GrantContext.from_grant(grant, role_settings={"grant_roles": ["r"]})
    assert (ctx.grant_id, ctx.user, ctx.expires_at) == (grant.id, grant.requester, NOW + 60)
    assert ctx.role_settings == {"grant_roles": ["r"]}


def test_context_from_a_grant_without_expiry_is_refused() -> None:
    """A grant that has no expiry yet (still pending) cannot be issued."""
    with pytest.raises(ProviderError, match="no expiry"):
        GrantContext.from_grant(make_grant(), role_settings={})


def test_login_name_is_a_plain_identifier_mapped_back_to_its_grant() -> None:
    """g-7k3p9xqm <-> gb_g_7k3p9xqm; other names are not grantbot logins."""
    assert login_name("g-7k3p9xqm") == "gb_g_7k3p9xqm"
    assert grant_id_from_login("gb_g_7k3p9xqm") == "g-7k3p9xqm"
    assert grant_id_from_login("postgres") is None
    assert grant_id_from_login("gb_g_") is None


@pytest.mark.parametrize("bad", ["", "g-", "x-7k3p9xqm", "g-7K3P", "g-abc;drop", "g-" + "a" * 13])
def test_grant_ids_that_cannot_name_a_login_are_refused(bad: str) -> None:
    """Anything but g- plus 1..12 of [a-z2-9] is refused before it reaches a target."""
    with pytest.raises(ProviderError):
        login_name(bad)


def test_domain_grant_ids_fit_the_naming_limits() -> None:
    """Every id the domain generates is nameable (alphabet and length within the limits)."""
    assert set(ids.ALPHABET) <= set(ID_CHARS)
    assert ids.ID_LENGTH <= MAX_ID_CHARS
    assert login_name(ids.new_grant_id()).startswith("gb_g_")


@given(st.text(alphabet=ID_CHARS, min_size=1, max_size=MAX_ID_CHARS))
def test_cert_serial_round_trips_and_fits_a_signed_64_bit_integer(suffix: str) -> None:
    """Each grant id has a positive serial below 2**63 that maps back to it (so serials of
    different grants never collide)."""
    serial = cert_serial("g-" + suffix)
    assert 0 < serial < 2**63
    assert grant_id_from_serial(serial) == "g-" + suffix


def test_cert_serials_of_different_lengths_do_not_collide() -> None:
    """Bijective numeration: g-2 and g-22 (a leading 'zero' digit) get different serials."""
    assert len({cert_serial("g-2"), cert_serial("g-22"), cert_serial("g-222")}) == 3
