"""The SHA-256 the audit script computes inside Redis agrees with hashlib."""

from __future__ import annotations

import hashlib

import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.store.scripts import _lua

_PROBE = _lua("sha256.lua") + "\nreturn sha256hex(ARGV[1])"

# Lengths around the padding boundaries (55/56/64 bytes) are where implementations break.
BOUNDARY_LENGTHS = [0, 1, 3, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000]


async def test_matches_hashlib_at_padding_boundaries(redis_client: aioredis.Redis) -> None:
    """Messages of every length around SHA-256's padding boundaries hash exactly as hashlib."""
    for n in BOUNDARY_LENGTHS:
        msg = bytes((i * 37 + 11) % 256 for i in range(n))
        got = await redis_client.eval(_PROBE, 0, msg)
        assert got == hashlib.sha256(msg).hexdigest(), n


async def test_matches_known_vector(redis_client: aioredis.Redis) -> None:
    """The FIPS 180-2 "abc" test vector comes out right."""
    got = await redis_client.eval(_PROBE, 0, "abc")
    assert got == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(msg=st.binary(max_size=300))
async def test_matches_hashlib_for_arbitrary_bytes(
    redis_client: aioredis.Redis, msg: bytes
) -> None:
    """Arbitrary byte strings (including UTF-8 and NUL) hash exactly as hashlib."""
    got = await redis_client.eval(_PROBE, 0, msg)
    assert got == hashlib.sha256(msg).hexdigest()
