"""``grantbot request``: the client side of the pipelines API, for a CI step.

``grantbot request --api URL --token-env VAR orders-db migrate 20m --reason "..."
--deployment D-123 --wait 10m`` makes a key pair, asks, waits for people to decide in Slack,
opens the sealed credential and prints it as shell ``export`` lines (or writes them to
``--output FILE``: always mode 0600, never through a symlink, its directory checked before
asking; should writing fail, the access is given back). ``grantbot request done ID`` gives
the access back. Needs only
the package (aiohttp and PyNaCl); it never reads grantbot's settings or Redis.

Exit codes: 0 done; 1 an error (the API refused, could not be reached, the credential could
not be opened); 2 bad usage; 3 denied; 4 not decided in time (the request is cancelled).
Every failure is one line on stderr; the credential goes only to stdout or the file.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiohttp

from bot.api.sealing import new_key_pair, unseal
from bot.cli.secret_file import check_destination, write_secret
from bot.domain.duration import format_duration, parse_duration
from bot.domain.ids import is_grant_id
from bot.errors import UsageError

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_DENIED: Final = 3
EXIT_TIMED_OUT: Final = 4
API_ENV: Final = "GRANTBOT_API_URL"
TOKEN_ENV: Final = "GRANTBOT_TOKEN"  # noqa: S105 (the variable's name, not a token)
#: One state read waits at most this long on the server; the client asks again until --wait.
POLL_WAIT_S: Final = 60
#: Connection failures and 5xx answers are tried again this many times, a second apart.
RETRIES: Final = 3
ASK_USAGE: Final = "grantbot request [options] RESOURCE [ROLE] [DURATION]"
DONE_USAGE: Final = "grantbot request [--api URL] [--token-env VAR] done ID"


class RequestFailed(Exception):
    """One line for stderr, and the exit code."""

    def __init__(self, message: str, *, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Api:
    """The API at ``base`` (…/api/v1) called with ``token``."""

    http: aiohttp.ClientSession
    base: str
    token: str

    async def call(
        self, method: str, path: str, *, body: Any = None, timeout_s: float = 30.0
    ) -> tuple[int, dict[str, Any]]:
        """(status, JSON body); connection failures and 5xx retried, then RequestFailed."""
        headers = {"Authorization": f"Bearer {self.token}"}
        last = ""
        for attempt in range(RETRIES + 1):
            if attempt:
                await asyncio.sleep(1.0)
            try:
                async with self.http.request(
                    method,
                    f"{self.base}{path}",
                    json=body,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=timeout_s),
                ) as r:
                    if r.status == 429:
                        await asyncio.sleep(float(r.headers.get("Retry-After", "5")))
                        last = "rate limited"
                        continue
                    answer = await _json_of(r)
                    if r.status >= 500:
                        last = f"HTTP {r.status}: {answer.get('message', '')}".strip()
                        continue
                    return r.status, answer
            except (aiohttp.ClientError, TimeoutError) as e:
                last = f"{type(e).__name__}: {e}".rstrip(": ")
        raise RequestFailed(f"the API at {self.base} did not answer ({last})")


async def _json_of(r: aiohttp.ClientResponse) -> dict[str, Any]:
    try:
        data = await r.json(content_type=None)
    except ValueError:
        return {"message": f"not JSON (HTTP {r.status})"}
    return data if isinstance(data, dict) else {"message": "not a JSON object"}


def _refusal(status: int, answer: dict[str, Any]) -> RequestFailed:
    return RequestFailed(f"{answer.get('message') or 'refused'} (HTTP {status})")


def env_name(label: str, *, prefix: str) -> str:
    """``connection string`` -> ``GRANTBOT_CONNECTION_STRING``."""
    return prefix + re.sub(r"[^A-Z0-9]+", "_", label.upper()).strip("_")


def export_lines(grant_id: str, document: dict[str, Any], *, prefix: str) -> str:
    """The credential as shell ``export`` lines, values quoted for the shell."""
    lines = [
        f"export {prefix}REQUEST_ID={shlex.quote(grant_id)}",
        f"export {prefix}EXPIRES_AT={shlex.quote(str(int(document['expires_at'])))}",
    ]
    for field in document.get("fields", []):
        name = env_name(str(field["label"]), prefix=prefix)
        lines.append(f"export {name}={shlex.quote(str(field['value']))}")
    return "\n".join(lines) + "\n"


def split_words(words: list[str]) -> tuple[str, str | None, str | None]:
    """RESOURCE [ROLE] [DURATION] (a lone second word that reads as a duration is one)."""
    if not words or len(words) > 3:
        raise UsageError("give RESOURCE [ROLE] [DURATION], e.g. orders-db migrate 20m")
    resource, rest = words[0], words[1:]
    if len(rest) == 2:
        return resource, rest[0], rest[1]
    if len(rest) == 1:
        try:
            parse_duration(rest[0])
        except UsageError:
            return resource, rest[0], None
        return resource, None, rest[0]
    return resource, None, None


def _deployment(args: argparse.Namespace) -> dict[str, str] | None:
    if args.deployment is None:
        if args.deployment_url or args.commit:
            raise UsageError("--deployment-url and --commit need --deployment ID")
        return None
    found = {"id": args.deployment, "url": args.deployment_url, "commit": args.commit}
    return {k: v for k, v in found.items() if v}


async def ask(api: Api, args: argparse.Namespace, *, out: Any) -> int:
    """Ask, wait, open the credential and write it; the exit code."""
    resource, role, duration = split_words(args.words)
    wait_s = parse_duration(args.wait)
    if args.output:
        check_destination(Path(args.output))
    key, public_key = new_key_pair()
    body: dict[str, Any] = {"resource": resource, "reason": args.reason, "public_key": public_key}
    if role is not None:
        body["role"] = role
    if duration is not None:
        body["duration"] = duration
    deployment = _deployment(args)
    if deployment is not None:
        body["deployment"] = deployment
    status, state = await api.call("POST", "/requests", body=body)
    if status != 201:
        raise _refusal(status, state)
    grant_id = str(state["id"])
    print(f"{grant_id}: {state['state'].lower()}; waiting up to {args.wait}", file=sys.stderr)
    deadline = time.monotonic() + wait_s
    while not _settled(state):
        left = deadline - time.monotonic()
        if left <= 0:
            await api.call("POST", f"/requests/{grant_id}/done")  # nobody may approve it now
            raise RequestFailed(
                f"{grant_id} was not decided within {format_duration(wait_s)}; cancelled",
                code=EXIT_TIMED_OUT,
            )
        step = max(1, min(POLL_WAIT_S, int(left)))
        status, state = await api.call(
            "GET", f"/requests/{grant_id}?wait={step}s", timeout_s=step + 30
        )
        if status != 200:
            raise _refusal(status, state)
    return await _deliver(api, grant_id, state, key=key, args=args, out=out)


def _settled(state: dict[str, Any]) -> bool:
    return bool(state["decided"]) and (state["state"] != "ACTIVE" or state["credential_ready"])


async def _deliver(
    api: Api, grant_id: str, state: dict[str, Any], *, key: Any, args: argparse.Namespace, out: Any
) -> int:
    outcome = state["state"]
    why = f": {state['end_reason']}" if state.get("end_reason") else ""
    if outcome == "DENIED":
        raise RequestFailed(
            f"{grant_id} denied by {state.get('decided_by') or 'an approver'}{why}",
            code=EXIT_DENIED,
        )
    if outcome == "TIMED_OUT":
        raise RequestFailed(f"{grant_id} lapsed: nobody decided in time", code=EXIT_TIMED_OUT)
    if outcome != "ACTIVE":
        raise RequestFailed(f"{grant_id} is {outcome.lower()}{why}")
    status, answer = await api.call("GET", f"/requests/{grant_id}/credential")
    if status != 200:
        raise _refusal(status, answer)
    document = unseal(base64.b64decode(answer["sealed"]), private_key=key)
    text = export_lines(grant_id, document, prefix=args.prefix)
    if args.output:
        path = Path(args.output)
        try:
            write_secret(path, text)
        except OSError as e:
            # Access nobody can use must not stay live: give it back, then say why.
            problem = f"{grant_id}: could not write {path} ({e.strerror or type(e).__name__})"
            try:
                status, _ = await api.call("POST", f"/requests/{grant_id}/done")
            except RequestFailed:
                status = 0
            if status != 200:
                raise RequestFailed(
                    f"{problem}, and giving the access back failed: run grantbot request"
                    f" done {grant_id}"
                ) from None
            raise RequestFailed(f"{problem}; the access was given back") from None
        print(f"{grant_id}: active; credential written to {path}", file=sys.stderr)
    else:
        out.write(text)
        out.flush()
    return EXIT_OK


def done_id(words: list[str]) -> str:
    """The one request id ``done`` takes, checked for shape before it goes into a URL."""
    if len(words) != 1:
        raise UsageError(f"usage: {DONE_USAGE} (exactly one request id)")
    if not is_grant_id(words[0]):
        shown = words[0] if len(words[0]) <= 40 else words[0][:37] + "..."
        raise UsageError(f'"{shown}" is not a request id; ids look like g-7k3p9xqm')
    return words[0]


async def give_back(api: Api, grant_id: str) -> int:
    status, state = await api.call("POST", f"/requests/{grant_id}/done")
    if status != 200:
        raise _refusal(status, state)
    if state["state"] == "REVOKE_FAILED":  # the target refused; grantbot keeps retrying
        raise RequestFailed(f"{grant_id}: ending it at the target failed; grantbot retries")
    print(f"{grant_id}: {state['state'].lower()}", file=sys.stderr)
    return EXIT_OK


async def run(args: argparse.Namespace, *, out: Any = None) -> int:
    """``grantbot request``: the exit code; every failure one line on stderr."""
    out = out if out is not None else sys.stdout
    try:
        if not args.api:
            raise UsageError(f"give --api URL (or set {API_ENV})")
        token = os.environ.get(args.token_env)
        if not token:
            raise UsageError(f"environment variable {args.token_env} (--token-env) is not set")
        base = args.api.rstrip("/")
        if not base.endswith("/api/v1"):
            base += "/api/v1"
        async with aiohttp.ClientSession() as http:
            api = Api(http, base, token)
            if args.words[0] == "done":
                return await give_back(api, done_id(args.words[1:]))
            return await ask(api, args, out=out)
    except UsageError as e:
        print(f"grantbot request: {e}", file=sys.stderr)
        return EXIT_USAGE
    except RequestFailed as e:
        print(f"grantbot request: {e}", file=sys.stderr)
        return e.code


async def _handler(args: argparse.Namespace, settings: Any) -> int:
    return await run(args)


def add_request_command(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """``grantbot request`` on the CLI's subparsers (bot.cli's one hook)."""
    r = sub.add_parser(
        "request",
        help="ask for access from a pipeline through the API (or: request done ID)",
        description="Ask through grantbot's API, wait for approval in Slack, print the "
        "credential as export lines. `grantbot request done ID` gives it back.",
        # argparse would repeat the metavar of nargs="+" ("WORD [WORD ...]").
        usage=f"{ASK_USAGE}\n       {DONE_USAGE}",
    )
    r.add_argument(
        "words", nargs="+", metavar="WORD", help="RESOURCE [ROLE] [DURATION], or: done ID"
    )
    r.add_argument("--api", default=os.environ.get(API_ENV), help=f"default: ${API_ENV}")
    r.add_argument(
        "--token-env", default=TOKEN_ENV, help=f"the variable holding the token ({TOKEN_ENV})"
    )
    r.add_argument("--reason", default="", help="why (shown to the approvers)")
    r.add_argument("--deployment", help="the deployment id, e.g. D-123")
    r.add_argument("--deployment-url", help="a link to the deployment")
    r.add_argument("--commit", help="the commit being deployed")
    r.add_argument("--wait", default="10m", help="how long to wait for a decision (10m)")
    r.add_argument("--output", help="write the export lines to this file (0600), not stdout")
    r.add_argument("--prefix", default="GRANTBOT_", help="prefix of the exported names")
    r.set_defaults(handler=_handler)
