"""``grantbot audit ...``: verify (against signed checkpoints), keygen, checkpoint, export.

``verify`` exits 0 when the chain holds, 1 when it was tampered with (naming the first bad
entry or checkpoint), 3 when it could not be read (Redis down or not configured), 2 for
bad usage (a malformed public key).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from bot.cli.common import parse_since
from bot.config import Settings
from bot.domain.duration import format_utc, parse_duration
from bot.errors import AuditChainError, ConfigError, StoreUnavailable, UsageError

EXIT_OK: Final = 0
EXIT_TAMPERED: Final = 1
EXIT_USAGE: Final = 2
EXIT_UNREADABLE: Final = 3
#: Entries may wait this long for a checkpoint before verify calls their absence tampering:
#: three of serve's default 5-minute intervals.
DEFAULT_MAX_UNCOVERED: Final = "15m"


async def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    from bot.audit.signing import key_id, load_public_key
    from bot.audit.verify import verify_with_checkpoints
    from bot.wiring import open_store

    try:
        keys = {key_id(k): k for k in (load_public_key(v) for v in args.public_key or [])}
        max_uncovered_s = parse_duration(args.max_uncovered)
    except (ConfigError, UsageError) as e:
        print(f"grantbot: {e}", file=sys.stderr)
        return EXIT_USAGE
    try:
        async with open_store(settings) as store:
            report = await verify_with_checkpoints(
                store.audit,
                store.checkpoints,
                public_keys=keys,
                log=store.keys.prefix,
                now=time.time(),
                max_uncovered_s=max_uncovered_s,
            )
    except AuditChainError as e:
        print(f"audit chain TAMPERED: {e}", file=sys.stderr)
        return EXIT_TAMPERED
    except (StoreUnavailable, ConfigError) as e:
        print(f"grantbot: could not read the audit log: {e}", file=sys.stderr)
        return EXIT_UNREADABLE
    chain = report.chain
    print(f"audit chain intact: {chain.entries} entries, head {chain.head_hash[:16]}")
    cps = report.checkpoints
    if cps is None:
        print("checkpoints not checked: pass --public-key to check the signed checkpoints")
    elif cps.last is None:
        print(f"no checkpoints yet; {cps.uncovered} entries are recent enough to wait for one")
    else:
        print(
            f"checkpoints intact: {cps.count}, the newest at seq {cps.last.seq} signed "
            f"{format_utc(cps.last.at)} by key {cps.last.key_id}; {cps.uncovered} newer entries"
        )
    return EXIT_OK


async def cmd_keygen(args: argparse.Namespace, settings: Settings) -> int:
    from bot.audit.signing import generate, public_text

    out = Path(args.out)
    pem, key = generate()
    try:
        _write_new(out, pem)
    except FileExistsError:
        print(f"grantbot: {out} exists; not overwriting a key", file=sys.stderr)
        return EXIT_TAMPERED
    print(f"private key written to {out} (keep it out of Redis; GRANTBOT_AUDIT_SIGNING_KEY)")
    print(f"key id:     {key.key_id}")
    print(f"public key: {public_text(key.public)}")
    return EXIT_OK


async def cmd_checkpoint(args: argparse.Namespace, settings: Settings) -> int:
    from bot.audit.duties import checkpointer_for
    from bot.audit.signing import load_signing_key
    from bot.wiring import open_store

    if settings.audit_signing_key is None:
        raise ConfigError("GRANTBOT_AUDIT_SIGNING_KEY is not set")
    key = load_signing_key(settings.audit_signing_key.get_secret_value())
    async with open_store(settings) as store:
        written = await checkpointer_for(store, key, clock=time.time).write()
    if written is None:
        print("the newest checkpoint already names the head; nothing written")
    else:
        print(f"checkpoint {written.n}: seq {written.seq}, head {written.hash[:16]}")
    return EXIT_OK


async def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from bot.audit.export import export_line, read_from, start_after
    from bot.wiring import open_store

    if args.since and args.after is not None:
        raise UsageError("--since and --after exclude each other")
    since_ms = None
    if args.since:
        since_ms = int(parse_since(args.since, now=datetime.now(tz=UTC).timestamp()) * 1000)
    async with open_store(settings) as store:
        after_id = await start_after(store.audit, after_seq=args.after, since_ms=since_ms)
        out = sys.stdout
        async for entry in read_from(store.audit, after_id=after_id, follow=args.follow):
            out.write(export_line(entry) + "\n")
            if args.follow:
                out.flush()  # a pipe reader sees each entry as it is written
    return EXIT_OK


def _write_new(path: Path, data: bytes) -> None:
    """Create ``path`` readable by its owner only; FileExistsError if it is there."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def add_audit_commands(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """The ``audit`` subcommands, on ``sub`` (the top-level subparsers)."""
    au = sub.add_parser("audit", help="the tamper-evident audit log").add_subparsers(
        dest="audit_command", required=True, parser_class=parser_class
    )
    v = au.add_parser(
        "verify",
        help="walk the hash chain (and the signed checkpoints): exit 0 intact, 1 tampered, "
        "3 unreadable",
    )
    v.add_argument(
        "--public-key",
        action="append",
        metavar="K",
        help="a checkpoint signing key's public half (base64, PEM, or a file); repeat for "
        "rotated keys",
    )
    v.add_argument(
        "--max-uncovered",
        default=DEFAULT_MAX_UNCOVERED,
        metavar="DURATION",
        help=f"how long entries may wait for a checkpoint (default {DEFAULT_MAX_UNCOVERED})",
    )
    v.set_defaults(handler=cmd_verify)
    kg = au.add_parser("keygen", help="make an Ed25519 key for signing checkpoints")
    kg.add_argument("--out", required=True, help="file for the private key (created 0600)")
    kg.set_defaults(handler=cmd_keygen)
    cp = au.add_parser("checkpoint", help="write a signed checkpoint of the chain's head now")
    cp.set_defaults(handler=cmd_checkpoint)
    ex = au.add_parser("export", help="stream entries as JSON lines")
    ex.add_argument("--since", help="ISO time, epoch seconds, or a duration ago (e.g. 24h)")
    ex.add_argument(
        "--after", type=int, metavar="SEQ", help="start after this sequence number (resume)"
    )
    ex.add_argument("--follow", action="store_true", help="keep printing new entries")
    ex.add_argument("--format", choices=["jsonl"], default="jsonl")
    ex.set_defaults(handler=cmd_export)
