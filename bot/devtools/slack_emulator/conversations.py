"""``conversations.*``: opening DMs (and group DMs) and describing a channel or a DM."""

from __future__ import annotations

from typing import Any

from bot.devtools.slack_emulator.workspace import ApiError, Workspace, str_arg

JSON = dict[str, Any]


def conversations_open(ws: Workspace, args: JSON) -> JSON:
    raw = args.get("users", "")
    users = raw if isinstance(raw, list) else [u for u in str(raw).split(",") if u]
    if not users:
        raise ApiError("users_list_not_supplied")
    unknown = [u for u in users if u not in ws.directory.users]
    if unknown:
        raise ApiError("user_not_found")
    if len(users) > 1:
        group = "G" + "".join(sorted(u[1:] for u in users))[:20]
        return {"ok": True, "channel": {"id": group}}
    user = users[0]
    channel = {"id": ws.directory.dm_channel_id(user)}
    if user in ws.open_dms:
        return {"ok": True, "no_op": True, "already_open": True, "channel": channel}
    ws.open_dms.add(user)
    return {"ok": True, "channel": channel}


def conversations_info(ws: Workspace, args: JSON) -> JSON:
    channel_id = str_arg(args, "channel")
    channel = ws.directory.channels.get(channel_id)
    if channel is not None:
        return {"ok": True, "channel": channel.as_slack()}
    user = ws.directory.dm_user(channel_id)
    if user is not None:
        return {
            "ok": True,
            "channel": {
                "id": channel_id,
                "is_im": True,
                "user": user,
                "is_open": user in ws.open_dms,
            },
        }
    raise ApiError("channel_not_found")
