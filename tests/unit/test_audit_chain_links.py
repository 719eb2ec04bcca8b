"""The audit chain's links as the client computes them (bot.store.chain, pure)."""

from __future__ import annotations

import hashlib

from bot.store.chain import GENESIS, chain_hash, link, parse_head


def test_an_entry_hash_is_sha256_of_prev_seq_and_the_body_digest() -> None:
    """hash = SHA-256(prev:seq:SHA-256(body)), the audit format every version writes."""
    digest = hashlib.sha256(b"{}").hexdigest()
    assert (
        chain_hash(GENESIS, 1, "{}") == hashlib.sha256(f"{GENESIS}:1:{digest}".encode()).hexdigest()
    )


def test_linking_bodies_after_a_head_numbers_and_chains_them() -> None:
    """Bodies linked after a head get the next sequence numbers, each chained to the one
    before, and the head they leave names the last."""
    first, head = link("", ["a"])
    assert first == [chain_hash(GENESIS, 1, "a")] and head == f"1 {first[0]}"
    more, after = link(head, ["b", "c"])
    assert more == [chain_hash(first[0], 2, "b"), chain_hash(chain_hash(first[0], 2, "b"), 3, "c")]
    assert after == f"3 {more[1]}"
    assert parse_head(after) == (3, more[1]) and parse_head("") == (0, GENESIS)
