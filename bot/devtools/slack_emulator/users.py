"""``auth.test``, ``users.*`` and ``usergroups.users.list``: who the bot is and who is who,
answered from the directory."""

from __future__ import annotations

from typing import Any

from bot.devtools.slack_emulator.workspace import ApiError, Workspace, str_arg

JSON = dict[str, Any]


def auth_test(ws: Workspace, args: JSON) -> JSON:
    ident = ws.identity
    return {
        "ok": True,
        "url": f"https://{ident.team_domain}.slack.com/",
        "team": ident.team_domain,
        "user": ident.bot_name,
        "team_id": ident.team_id,
        "user_id": ident.bot_user_id,
        "bot_id": ident.bot_id,
        "is_enterprise_install": False,
        # Slack names the organisation only for a workspace on Enterprise Grid.
        **({"enterprise_id": ident.enterprise_id} if ident.enterprise_id else {}),
    }


def users_info(ws: Workspace, args: JSON) -> JSON:
    user = ws.directory.users.get(str_arg(args, "user"))
    if user is None:
        raise ApiError("user_not_found")
    return {"ok": True, "user": user.as_slack(ws.identity.team_id)}


def users_lookup_by_email(ws: Workspace, args: JSON) -> JSON:
    user = ws.directory.user_by_email(str_arg(args, "email"))
    # Deactivated accounts are not found by email.
    if user is None or user.deleted:
        raise ApiError("users_not_found")
    return {"ok": True, "user": user.as_slack(ws.identity.team_id)}


def usergroups_users_list(ws: Workspace, args: JSON) -> JSON:
    users = ws.directory.usergroups.get(str_arg(args, "usergroup"))
    if users is None:
        raise ApiError("no_such_subteam")
    return {"ok": True, "users": list(users)}
