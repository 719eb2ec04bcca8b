"""Logging: one JSON object a line, context bound per request, secrets redacted.

Secrets are never passed to a logger on purpose; the redaction filter is the second line of
defence. It masks Slack tokens (``xoxb-``, ``xoxp-``, ``xapp-``, ...), private key blocks
(OpenSSH, PKCS#8, PEM; a block cut short is masked to its end), ``password=...``-style pairs,
URLs with credentials (``postgres://u:pw@h``, ``redis://:pw@h``), ``Authorization`` values
(``Bearer``, ``Basic``, PagerDuty's ``Token token=``, Opsgenie's ``GenieKey``), the value of any
field whose name says it is secret, and any value registered with :func:`register_secret`
(issued passwords, the signing secret, resolved ``${VAR}`` settings).

It covers the message after ``%`` formatting, extra fields, bound context and exception
tracebacks: each string is redacted before it is JSON-encoded (so JSON escaping cannot hide a
secret from a pattern), and the encoded line is checked once more.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any, Final

REDACTED: Final = "[REDACTED]"
_MAX_REGISTERED: Final = 10_000

_KEY_WORDS: Final = r"(?:password|passwd|pwd|passphrase|secret|token|api[_-]?key)"

#: (pattern, replacement). Replacements keep the part that says *what* was masked.
_PATTERNS: Final[list[tuple[re.Pattern[str], str]]] = [
    # Slack tokens: bot (xoxb-), user (xoxp-), app-level (xapp-), refresh (xoxe-), legacy.
    (re.compile(r"xox[abposre]-[A-Za-z0-9-]{6,}"), REDACTED),
    (re.compile(r"xapp-[A-Za-z0-9-]{6,}"), REDACTED),
    # Private key blocks (OPENSSH, RSA, EC, ENCRYPTED, or PKCS#8's bare PRIVATE KEY) ...
    (
        re.compile(
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?-----END [A-Z0-9 ]*PRIVATE KEY-----", re.S
        ),
        REDACTED,
    ),
    # ... and one cut short (a truncated message): masked through the end of its body.
    (re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[A-Za-z0-9+/=\s\\:,-]*"), REDACTED),
    # Authorization schemes: Bearer / Basic credentials (as HTTP writes them, so prose such
    # as "basic checks" is left alone) and Opsgenie's GenieKey.
    (re.compile(r"((?:\b[Bb]earer|\bBasic)\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1" + REDACTED),
    (re.compile(r"(?i)(geniekey\s+)[A-Za-z0-9-]{4,}"), r"\1" + REDACTED),
    # A whole Authorization header value, whatever its scheme.
    (re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)([^\"'\r\n\\]+)"), r"\1" + REDACTED),
    # password=..., "token": "...", api-key: ... (also PagerDuty's "Token token=...").
    (
        re.compile(r"(?i)(" + _KEY_WORDS + r"[\"']?\s*[:=]\s*[\"']?)([^\s\"',;}]+)"),
        r"\1" + REDACTED,
    ),
    # AWS: the secret key and session token as the CLI, the credentials file, the SDKs' JSON
    # and STS's XML write them (export AWS_SECRET_ACCESS_KEY=..., aws_session_token = ...,
    # "SecretAccessKey": "...", <SessionToken>...</SessionToken>) ...
    (
        re.compile(
            r"(?i)((?:aws_)?(?:secret_?access_?key|session_?token)[\"']?\s*[:=]\s*[\"']?)"
            r"([^\s\"',;}]+)"
        ),
        r"\1" + REDACTED,
    ),
    (re.compile(r"(<(SecretAccessKey|SessionToken)>)[^<]*"), r"\1" + REDACTED),
    # ... and a session token on its own, by the prefixes STS gives them.
    (re.compile(r"\b(?:IQoJb3JpZ2luX2Vj|FwoGZXIvYXdz|FQoGZXIvYXdz)[A-Za-z0-9+/=]{16,}"), REDACTED),
    # scheme://user:PASSWORD@host, user optional (redis://:PASSWORD@host).
    (re.compile(r"(?i)([a-z][a-z0-9+.-]*://[^:/@\s]*:)([^@\s]+)(@)"), r"\1" + REDACTED + r"\3"),
]

#: A mapping key (extra field, bound field, nested dict) whose value is masked whole.
_SECRET_KEY_RE: Final = re.compile(
    r"(?i)(?:^|[_.-])(?:password|passwd|pwd|passphrase|secret|token|api[_-]?key|apikey|"
    r"authorization|private[_-]?key|signing[_-]?secret|secret_?access_?key|session_?token)"
    r"(?:$|[_.-])"
)
#: ...unless it only names or points at one (``token_id``, ``secret_ref``, ``ca_key_file``).
_NOT_SECRET_SUFFIX_RE: Final = re.compile(r"(?i)[_.-](?:id|ref|file|path|name|count|expires_at)$")

_EMPTY: Final[Mapping[str, Any]] = MappingProxyType({})
_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "log_context", default=_EMPTY
)
_registered: OrderedDict[str, None] = OrderedDict()
_registered_lock = threading.Lock()
#: What redact() reads: replaced whole on each registration, so logging never takes the lock.
_registered_snapshot: tuple[str, ...] = ()


def register_secret(value: str) -> None:
    """Remember a secret (e.g. an issued password) so any log line containing it is masked.

    Values shorter than 6 characters are ignored (masking them would mangle ordinary text);
    the newest 10,000 are kept.
    """
    global _registered_snapshot
    if len(value) < 6:
        return
    with _registered_lock:
        _registered[value] = None
        _registered.move_to_end(value)
        while len(_registered) > _MAX_REGISTERED:
            _registered.popitem(last=False)
        _registered_snapshot = tuple(_registered)


def redact(text: str) -> str:
    """``text`` with every registered secret and known secret shape replaced."""
    found = [secret for secret in _registered_snapshot if secret in text]
    # Longest first, so a secret that contains another is masked whole.
    for secret in sorted(found, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return _redact_shapes(text)


def _redact_shapes(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _secret_key(key: str) -> bool:
    return bool(_SECRET_KEY_RE.search(key)) and not _NOT_SECRET_SUFFIX_RE.search(key)


def _redact_value(value: Any, *, depth: int = 0) -> Any:
    """A JSON-ready copy of ``value`` with every string redacted and every secret-named
    mapping key's value masked whole. Other objects become their (redacted) ``str``."""
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth > 8:
        return redact(str(value))
    if isinstance(value, Mapping):
        return {
            str(k): REDACTED if _secret_key(str(k)) else _redact_value(v, depth=depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact_value(v, depth=depth + 1) for v in value]
    return redact(str(value))


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Bind fields (request_id, user, resource, ...) to every log line in this context."""
    token = _context.set({**_context.get(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


_STD_ATTRS: Final = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, msg, bound context, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {"msg": record.getMessage()}
        fields.update(_context.get())
        for key, value in vars(record).items():
            if key not in _STD_ATTRS and not key.startswith("_"):
                fields[key] = value
        if record.exc_info:
            fields["exc"] = record.exc_text or self.formatException(record.exc_info)
        elif record.exc_text:
            fields["exc"] = record.exc_text
        if record.stack_info:
            fields["stack"] = record.stack_info
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        out.update(_redact_value(fields))
        # Every string was redacted above; the encoded line gets the shape patterns once more.
        return _redact_shapes(json.dumps(out, default=str, ensure_ascii=False))


class RedactingFilter(logging.Filter):
    """Masks secrets in a record in place, so every handler sees the masked record: the
    message (after ``%`` formatting), string extra fields, the exception text and stack."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            # logging.Formatter uses exc_text when set, so plain handlers print this one.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key in _STD_ATTRS or key.startswith("_"):
                continue
            if _secret_key(key):
                setattr(record, key, REDACTED)
            elif isinstance(value, str):
                setattr(record, key, redact(value))
        return True


def configure_logging(*, level: str = "INFO", stream: Any = None) -> None:
    """Route the root logger to one JSON handler on stderr (idempotent)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_grantbot", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    handler._grantbot = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Third-party chatter at INFO is noise for operators.
    for name in ("aiohttp.access", "apscheduler", "slack_bolt", "slack_sdk"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
