"""``views.*``: modals opened with a trigger_id and updated by id or external_id (with hash
checks), and each user's App Home."""

from __future__ import annotations

from typing import Any

from bot.devtools.slack_emulator.limits import TRIGGER_ID_TTL_S
from bot.devtools.slack_emulator.model import Trigger, View
from bot.devtools.slack_emulator.workspace import (
    ApiError,
    Workspace,
    invalid_view,
    str_arg,
)

JSON = dict[str, Any]


def _checked_view(ws: Workspace, args: JSON, expected_type: str | None = None) -> JSON:
    view = args.get("view")
    problems = ws.validator.view(view, expected_type=expected_type)
    if problems:
        raise invalid_view(problems)
    assert isinstance(view, dict)
    return view


def _exchange_trigger(ws: Workspace, trigger_id: str) -> Trigger:
    trigger = ws.triggers.get(trigger_id)
    if trigger is None:
        raise ApiError("invalid_trigger_id")
    if trigger.exchanged:
        raise ApiError("exchanged_trigger_id")
    if ws.clock() - trigger.issued_at > TRIGGER_ID_TTL_S:
        raise ApiError("expired_trigger_id")
    return trigger


def views_open(ws: Workspace, args: JSON) -> JSON:
    trigger = _exchange_trigger(ws, str_arg(args, "trigger_id"))
    view = _checked_view(ws, args, "modal")
    if view.get("external_id") and _view_by_external_id(ws, str(view["external_id"])):
        raise ApiError("duplicate_external_id")
    trigger.exchanged = True
    opened = _new_view(ws, trigger.user, view)
    ws.views[opened.id] = opened
    return {"ok": True, "view": opened.as_slack()}


def _new_view(ws: Workspace, user: str, view: JSON) -> View:
    external_id = str(view.get("external_id", ""))
    return View(ws.ids.view_id(), user, view, ws.ids.view_hash(), ws.identity, external_id)


def _view_by_external_id(ws: Workspace, external_id: str) -> View | None:
    return next((v for v in ws.views.values() if v.external_id == external_id), None)


def views_update(ws: Workspace, args: JSON) -> JSON:
    view_id, external_id = str_arg(args, "view_id"), str_arg(args, "external_id")
    found = ws.views.get(view_id) if view_id else _view_by_external_id(ws, external_id)
    if found is None:
        raise ApiError("not_found")
    if args.get("hash") and args["hash"] != found.hash:
        raise ApiError("hash_conflict")
    found.replace(_checked_view(ws, args, "modal"), ws.ids.view_hash())
    return {"ok": True, "view": found.as_slack()}


def views_publish(ws: Workspace, args: JSON) -> JSON:
    user = str_arg(args, "user_id")
    if user not in ws.directory.users:
        raise ApiError("user_not_found")
    view = _checked_view(ws, args, "home")
    current = ws.home_views.get(user)
    if current is not None and args.get("hash") and args["hash"] != current.hash:
        raise ApiError("hash_conflict")
    if current is None:
        current = ws.home_views[user] = _new_view(ws, user, view)
    else:
        current.replace(view, ws.ids.view_hash())
    return {"ok": True, "view": current.as_slack()}
