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


def conversations_history(ws: Workspace, args: JSON) -> JSON:
    """The channel's messages, newest first, between ``oldest`` and ``latest`` (``inclusive``
    keeps the bounds), at most ``limit`` (Slack's default 100); thread replies are not part
    of a channel's history. Deleted messages are gone."""
    channel = ws.directory.resolve_channel(str_arg(args, "channel"))
    if channel is None:
        raise ApiError("channel_not_found")
    inclusive = str(args.get("inclusive", "")).lower() in ("1", "true")
    latest = float(args["latest"]) if args.get("latest") else float("inf")
    oldest = float(args["oldest"]) if args.get("oldest") else 0.0
    limit = int(args.get("limit") or 100)

    def within(ts: float) -> bool:
        if inclusive:
            return oldest <= ts <= latest
        return oldest < ts < latest

    found = [
        m
        for m in ws.messages.get(channel, [])
        if not m.deleted and m.thread_ts in (None, m.ts) and within(float(m.ts))
    ]
    found.sort(key=lambda m: float(m.ts), reverse=True)
    return {
        "ok": True,
        "messages": [m.as_slack() for m in found[:limit]],
        "has_more": len(found) > limit,
    }
