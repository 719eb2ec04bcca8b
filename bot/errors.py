"""One error family for grantbot.

Every error the bot raises on purpose is a :class:`GrantbotError`. Third-party errors
(redis, asyncpg, slack_sdk, ...) are translated into one of these at the edge that calls
the library, keeping the cause (``raise X(...) from e``). The message of every error is
written for the person who will read it: one line, specific, with no secret in it.
"""

from __future__ import annotations

from dataclasses import dataclass


class GrantbotError(Exception):
    """Base of every error grantbot raises on purpose."""


class ConfigError(GrantbotError):
    """A setting is missing or malformed; the message names the key."""


class UsageError(GrantbotError):
    """A command was malformed. The message says what was wrong and what is accepted."""


@dataclass(frozen=True, slots=True)
class PolicyIssue:
    """One problem found in a policy file, located by file, line and key path."""

    file: str
    line: int | None
    path: str
    message: str
    severity: str = "error"  # "error" | "warning"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        key = f" {self.path}" if self.path else ""
        return f"{where}{key}: {self.message}"


class PolicyError(GrantbotError):
    """A policy file failed validation. ``issues`` lists every error found."""

    def __init__(self, issues: list[PolicyIssue]) -> None:
        self.issues = issues
        first = str(issues[0]) if issues else "invalid policy"
        more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
        super().__init__(first + more)


class PolicyDenied(GrantbotError):
    """The policy refuses a request; the message names the rule and what is allowed."""


class MalformedRequest(GrantbotError):
    """A request that passed Slack's signature check is not in a shape Slack sends (or not
    one grantbot handles). The message names the part that is wrong, never its content."""


class NotFound(GrantbotError):
    """The named request or grant does not exist."""


class NotAuthorized(GrantbotError):
    """The actor may not do this (not an approver, self-approval, not the owner...)."""


class TransitionError(GrantbotError):
    """The request is not in a state that allows this event (e.g. already decided)."""


class ConcurrencyError(GrantbotError):
    """An optimistic update kept losing to concurrent writers; safe to retry later."""


class StoreUnavailable(GrantbotError):
    """Redis could not be reached. Users are told to try again shortly; nothing was changed."""


class AuditChainError(GrantbotError):
    """The audit chain does not verify; the message names the first bad entry."""


class ProviderError(GrantbotError):
    """A credential target refused or failed an operation."""


class TargetUnavailable(ProviderError):
    """The credential target could not be reached; the operation should be retried."""


class SlackError(GrantbotError):
    """A Slack Web API call or ``response_url`` post failed for good (after the client's
    retries). ``code`` is Slack's error code when Slack answered with one
    (``channel_not_found``, ``ratelimited``), else what happened on the wire (``http_503``,
    ``non_json_body``, ``timeout``, ``connection_reset``...); ``method`` names the call and
    ``status`` the HTTP status (None when no answer came). Never carries a body: a message
    sent or received may hold a credential. Raised by :mod:`bot.slack.api`."""

    method: str = ""
    code: str = "unknown"
    status: int | None = None


class SinkUnavailable(GrantbotError):
    """An audit sink (a file, a SIEM endpoint) did not take a batch; it is sent again."""
