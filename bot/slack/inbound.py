"""What Slack sent: a request body read by its real form keys, and its shape checked.

Pure. Used by :mod:`bot.slack.edge` for HTTP deliveries (after the signature check) and for
Socket Mode envelopes, before anything else sees the body: before slack_bolt builds its
request, before any listener. It answers three questions:

- **What is it?** :func:`read_http` decodes the bytes (UTF-8, or it is refused) by
  their content type. A form whose *field* is ``payload`` is an interactivity payload; any
  other form is a slash command (or Slack's ``ssl_check``). slack_bolt 1.30's ``parse_body``
  instead looks for the *substring* "payload" anywhere in the body, so ``/access help
  payload`` or a command from ``#payload-team`` lost every field and got a 404; reading the
  fields first makes a slash command a slash command whatever its text, channel or user name.
- **Is it a shape Slack sends, for a surface grantbot handles?** :func:`read_command`,
  :func:`read_interaction` and :func:`read_events_api` validate it (pydantic, strict types)
  or raise :class:`~bot.errors.MalformedRequest` naming the wrong part. Besides what the
  listeners read, every field slack_bolt itself reads while building a request's context
  (``request/internals.py`` ``build_context``: ``team``, ``user``, ``channel``,
  ``authorizations``, ``event``, ``view``, ``response_urls`` ...) must have the type Bolt
  assumes there, at every level Bolt descends into; a wrong one made Bolt raise (a 500).
- **Which workspace does it claim to come from?** :class:`Claim`: the team, actor team and
  Enterprise Grid organisation ids it carries, judged by :mod:`bot.slack.workspace`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Final, Literal, TypeVar
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from bot.errors import MalformedRequest
from bot.slack import ids

FORM_CONTENT_TYPE: Final = "application/x-www-form-urlencoded"
JSON_CONTENT_TYPE: Final = "application/json"
#: A slash command has 15 fields, an interactivity form one; far more is not Slack.
MAX_FORM_FIELDS: Final = 64
#: The form field that holds an interactivity payload (JSON), and Slack's SSL check field.
PAYLOAD_FIELD: Final = "payload"
SSL_CHECK_FIELD: Final = "ssl_check"


class Kind(StrEnum):
    """What a delivery is, as far as the edge is concerned."""

    COMMAND = "slash_command"
    SSL_CHECK = "ssl_check"  # Slack checking the certificate; answered 200 by Bolt
    URL_VERIFICATION = "url_verification"  # the Events API handshake; answered by Bolt
    BLOCK_ACTIONS = "block_actions"
    VIEW_SUBMISSION = "view_submission"
    SHORTCUT = "shortcut"  # the global shortcut "Request access"
    BLOCK_SUGGESTION = "block_suggestion"  # the form's external_select, searching
    EVENT = "event"  # an Events API event grantbot listens to
    IGNORED = "ignored"  # Events API traffic grantbot does not handle: 200, nothing done


@dataclass(frozen=True, slots=True)
class Claim:
    """The workspace ids a delivery carries. ``teams``: the workspace it was made in (every
    such id it carries); ``actor_teams``: the acting person's home workspace; ``enterprises``:
    Enterprise Grid organisations named anywhere in it."""

    teams: frozenset[str] = frozenset()
    actor_teams: frozenset[str] = frozenset()
    enterprises: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Inbound:
    """A delivery whose shape was checked: what it is, a name for log lines (never user
    text), and the workspace it claims to come from."""

    kind: Kind
    name: str
    claim: Claim

    @property
    def checks_workspace(self) -> bool:
        """Whether the workspace must be the installed one: everything that can act."""
        return self.kind not in {Kind.SSL_CHECK, Kind.URL_VERIFICATION, Kind.IGNORED}


M = TypeVar("M", bound=BaseModel)


# --- Reading the bytes -----------------------------------------------------------------------
def read_http(raw: bytes, *, content_type: str) -> tuple[dict[str, Any], Inbound]:
    """An HTTP delivery's body as Slack meant it, and what it is: an Events API JSON object,
    an interactivity payload (the JSON in the form's ``payload`` field), or a slash command's
    form fields. Raises MalformedRequest for anything else: not UTF-8, not a JSON object, a
    form field given twice, a content type Slack does not send, a shape it does not send."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise MalformedRequest("the body is not UTF-8") from e
    if content_type == JSON_CONTENT_TYPE:
        body = _json_object(text, what="the JSON body")
        return body, read_events_api(body)
    if content_type != FORM_CONTENT_TYPE:
        raise MalformedRequest(f"content type {content_type[:64]!r} is not one Slack sends")
    fields = _form_fields(text)
    if PAYLOAD_FIELD in fields:
        if len(fields) != 1:
            raise MalformedRequest("an interactivity form carries only its payload field")
        payload = _json_object(fields[PAYLOAD_FIELD], what="the payload field")
        return payload, read_interaction(payload)
    return fields, read_command(fields)


def read_envelope(envelope_type: str, payload: dict[str, Any]) -> Inbound:
    """What a Socket Mode envelope's ``payload`` is: the same fields as over HTTP, already
    JSON (a slash command's form fields, an interaction's payload, an Events API body)."""
    if envelope_type == "slash_commands":
        return read_command(payload)
    if envelope_type == "interactive":
        return read_interaction(payload)
    if envelope_type == "events_api":
        return read_events_api(payload)
    raise MalformedRequest(f"grantbot handles no {envelope_type[:40]!r} envelopes")


def _form_fields(text: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=bool(text),
            errors="strict",
            max_num_fields=MAX_FORM_FIELDS,
        )
    except ValueError as e:  # a bad pair, too many fields, percent-escapes that are not UTF-8
        raise MalformedRequest("the form body is not well formed") from e
    fields: dict[str, str] = {}
    for key, value in pairs:
        if key in fields:
            raise MalformedRequest(f"form field {key[:64]!r} is given twice")
        fields[key] = value
    return fields


def _json_object(text: str, *, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise MalformedRequest(f"{what} is not JSON") from e
    if not isinstance(value, dict):
        raise MalformedRequest(f"{what} is not a JSON object")
    return value


# --- The shapes ------------------------------------------------------------------------------
NonEmpty = Annotated[str, StringConstraints(min_length=1)]


class _Shape(BaseModel):
    """Slack adds fields over time: unknown ones are allowed, known ones are typed strictly."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)


class _Team(_Shape):
    id: str | None = None
    enterprise_id: str | None = None


class _Enterprise(_Shape):
    id: str | None = None


class _User(_Shape):
    id: str | None = None
    team_id: str | None = None


class _Actor(_User):
    id: NonEmpty


class _Channel(_Shape):
    id: str | None = None
    name: str | None = None


class _ResponseUrl(_Shape):
    response_url: str | None = None


class _View(_Shape):
    id: str | None = None
    type: str | None = None
    callback_id: str | None = None
    private_metadata: str | None = None
    team_id: str | None = None
    app_installed_team_id: str | None = None
    state: dict[str, Any] | None = None


class _Scope(_Shape):
    """The fields slack_bolt reads, in every object it descends into, to build a request's
    context, typed as Bolt assumes them (it calls ``.get`` on them, ``len``, ``[0]``)."""

    type: str | None = None
    team: str | _Team | None = None
    enterprise: str | _Enterprise | None = None
    user: str | _User | None = None
    channel: str | _Channel | None = None
    team_id: str | None = None
    enterprise_id: str | None = None
    user_id: str | None = None
    channel_id: str | None = None
    thread_ts: str | None = None
    is_enterprise_install: bool | str | None = None
    is_ext_shared_channel: bool | None = None
    authorizations: list[_Scope] | None = None
    event: _Scope | None = None
    message: _Scope | None = None
    previous_message: _Scope | None = None
    item: _Scope | None = None
    assistant_thread: _Scope | None = None
    view: _View | None = None
    function_data: dict[str, Any] | None = None
    response_url: str | None = None
    response_urls: list[_ResponseUrl] | None = None


class _SlashCommand(_Scope):
    command: NonEmpty
    text: str = ""
    user_id: NonEmpty
    team_id: NonEmpty


class _SslCheck(_Shape):
    ssl_check: Literal["1"]


class _Action(_Shape):
    action_id: NonEmpty
    block_id: str | None = None
    type: str | None = None
    value: str | None = None


class _Interaction(_Scope):
    user: _Actor
    team: _Team | None = None
    enterprise: _Enterprise | None = None
    channel: _Channel | None = None
    container: dict[str, Any] | None = None
    trigger_id: str | None = None


class _BlockActions(_Interaction):
    type: Literal["block_actions"]
    actions: list[_Action] = Field(min_length=1)


class _SubmittedView(_View):
    callback_id: NonEmpty


class _ViewSubmission(_Interaction):
    type: Literal["view_submission"]
    view: _SubmittedView


class _Shortcut(_Interaction):
    type: Literal["shortcut"]
    callback_id: NonEmpty


class _BlockSuggestion(_Interaction):
    type: Literal["block_suggestion"]
    action_id: NonEmpty
    value: str = ""


class _PersonEvent(_Scope):
    """An event a person caused: ``team`` / ``user_team`` are their workspace."""

    user: NonEmpty
    team: str | None = None
    user_team: str | None = None


class _Mention(_PersonEvent):
    type: Literal["app_mention"]
    channel: NonEmpty
    text: str
    ts: NonEmpty


class _HomeOpened(_PersonEvent):
    type: Literal["app_home_opened"]
    tab: str | None = None


class _Envelope(_Scope):
    """An Events API body: only its type is needed to know whether grantbot handles it."""

    type: NonEmpty


class _EventOnly(_Shape):
    type: NonEmpty


class _EventCallbackHead(_Shape):
    type: Literal["event_callback"]
    event: _EventOnly


class _EventCallback(_Scope):
    type: Literal["event_callback"]
    event_id: NonEmpty
    team_id: NonEmpty
    context_team_id: str | None = None
    context_enterprise_id: str | None = None


class _UrlVerification(_Shape):
    type: Literal["url_verification"]
    challenge: NonEmpty


#: The events grantbot listens to, each with the shape its listener reads.
_EVENTS: Final[dict[str, type[_PersonEvent]]] = {
    ids.MENTION_EVENT: _Mention,
    ids.HOME_OPENED_EVENT: _HomeOpened,
}


# --- Reading each kind of delivery -----------------------------------------------------------
def read_command(fields: dict[str, Any]) -> Inbound:
    """A slash command's fields (an HTTP form, or a Socket Mode ``slash_commands`` payload),
    or Slack's ``ssl_check``."""
    if SSL_CHECK_FIELD in fields:
        _validate(_SslCheck, fields, "ssl_check")
        return Inbound(Kind.SSL_CHECK, "ssl_check", Claim())
    command = _validate(_SlashCommand, fields, "slash command")
    name = f"slash command {command.command[:32]}"
    return Inbound(
        Kind.COMMAND,
        name,
        Claim(teams=_ids(command.team_id), enterprises=_ids(command.enterprise_id)),
    )


def read_interaction(payload: dict[str, Any]) -> Inbound:
    """An interactivity payload: a button click, a modal submission, the global shortcut or
    the form's external_select asking for options (grantbot handles no other kinds)."""
    kind = payload.get("type")
    if kind == "block_actions":
        actions = _validate(_BlockActions, payload, "block_actions")
        return Inbound(Kind.BLOCK_ACTIONS, "block_actions", _interaction_claim(actions))
    if kind == "view_submission":
        submission = _validate(_ViewSubmission, payload, "view_submission")
        return Inbound(Kind.VIEW_SUBMISSION, "view_submission", _interaction_claim(submission))
    if kind == "shortcut":
        shortcut = _validate(_Shortcut, payload, "shortcut")
        return Inbound(Kind.SHORTCUT, "shortcut", _interaction_claim(shortcut))
    if kind == "block_suggestion":
        suggestion = _validate(_BlockSuggestion, payload, "block_suggestion")
        return Inbound(Kind.BLOCK_SUGGESTION, "block_suggestion", _interaction_claim(suggestion))
    if not isinstance(kind, str) or not kind:
        raise MalformedRequest("the payload has no type")
    raise MalformedRequest(f"grantbot handles no {kind[:40]!r} interactions")


def read_events_api(body: dict[str, Any]) -> Inbound:
    """An Events API delivery: the URL handshake, an event grantbot listens to, or anything
    else Slack may send there (other events, ``app_rate_limited``), which is ignored."""
    envelope = _validate(_Envelope, body, "Events API body")
    if envelope.type == "url_verification":
        _validate(_UrlVerification, body, "url_verification")
        return Inbound(Kind.URL_VERIFICATION, "url_verification", Claim())
    if envelope.type != "event_callback":
        return Inbound(Kind.IGNORED, envelope.type[:40], Claim())
    head = _validate(_EventCallbackHead, body, "event_callback")
    shape = _EVENTS.get(head.event.type)
    if shape is None:
        return Inbound(Kind.IGNORED, f"event {head.event.type[:40]}", Claim())
    callback = _validate(_EventCallback, body, "event_callback")
    event = _validate(shape, body["event"], f"{head.event.type} event")
    teams = {callback.team_id, callback.context_team_id}
    enterprises = {callback.enterprise_id, callback.context_enterprise_id}
    for auth in callback.authorizations or ():
        teams.add(auth.team_id)
        enterprises.add(auth.enterprise_id)
    claim = Claim(
        teams=_ids(*teams),
        actor_teams=_ids(event.team, event.user_team),
        enterprises=_ids(*enterprises),
    )
    return Inbound(Kind.EVENT, f"event {head.event.type}", claim)


def _interaction_claim(payload: _Interaction) -> Claim:
    team = payload.team
    view = payload.view
    return Claim(
        teams=_ids(
            team.id if team else None,
            view.team_id if view else None,
            view.app_installed_team_id if view else None,
        ),
        actor_teams=_ids(payload.user.team_id),
        enterprises=_ids(
            payload.enterprise.id if payload.enterprise else None,
            team.enterprise_id if team else None,
        ),
    )


def _ids(*values: str | None) -> frozenset[str]:
    return frozenset(v for v in values if v)


def _validate(model: type[M], data: Any, what: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise MalformedRequest(f"{what}: {_first_problem(e)}") from e
    except RecursionError as e:
        raise MalformedRequest(f"{what}: nested too deeply") from e


def _first_problem(error: ValidationError) -> str:
    """Where the first problem is and what it is, without the offending value (a signed
    body's content is still not ours to log)."""
    first = error.errors(include_url=False, include_input=False, include_context=False)[0]
    where = ".".join(str(part) for part in first["loc"][:6]) or "body"
    return f"{where[:120]}: {first['msg']}"
