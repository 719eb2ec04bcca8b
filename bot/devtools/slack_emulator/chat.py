"""``chat.*``: posting, ephemeral posts and updates; and the posts a bot makes to a
response_url (a new message, ephemeral or in channel, or an edit of the original)."""

from __future__ import annotations

from typing import Any

from bot.devtools.slack_emulator.limits import RESPONSE_URL_MAX_USES, RESPONSE_URL_TTL_S
from bot.devtools.slack_emulator.model import Ephemeral, Message, MessageVersion, ResponseUrl
from bot.devtools.slack_emulator.paths import RESPONSE_URL_METHOD
from bot.devtools.slack_emulator.workspace import ApiError, Workspace, str_arg, truthy

JSON = dict[str, Any]


def chat_post_message(ws: Workspace, args: JSON) -> JSON:
    channel = ws.channel_arg(args)
    text, blocks = ws.message_content(args)
    message = ws.post(channel, text, blocks, str_arg(args, "thread_ts"))
    if isinstance(args.get("metadata"), dict):
        message.metadata = args["metadata"]
    return {
        "ok": True,
        "channel": channel,
        "ts": message.ts,
        "message": ws.message_echo(message),
    }


def chat_post_ephemeral(ws: Workspace, args: JSON) -> JSON:
    channel = ws.channel_arg(args)
    user = str_arg(args, "user")
    if user not in ws.directory.users:
        raise ApiError("user_not_in_channel")
    text, blocks = ws.message_content(args)
    ephemeral = Ephemeral(
        channel,
        user,
        ws.ids.ts(),
        text,
        blocks,
        "chat.postEphemeral",
        str_arg(args, "thread_ts") or None,
    )
    ws.ephemerals.append(ephemeral)
    return {"ok": True, "message_ts": ephemeral.ts}


def chat_update(ws: Workspace, args: JSON) -> JSON:
    channel = ws.channel_arg(args)
    message = ws.find_message(channel, str_arg(args, "ts"))
    if message is None:
        raise ApiError("message_not_found")
    text, blocks = ws.message_content(args)
    # Like attachments and metadata, blocks left out of an update are kept.
    new_blocks = blocks if "blocks" in args else message.blocks
    message.replace(text=text, blocks=new_blocks, at=ws.clock(), by="chat.update")
    return {
        "ok": True,
        "channel": channel,
        "ts": message.ts,
        "text": message.text,
        "message": ws.message_echo(message),
    }


# --- response_url posts ---
def respond(ws: Workspace, token: str, body: JSON) -> JSON:
    """A post to a response_url: a new (ephemeral or in-channel) message, or an edit."""
    url = ws.response_urls.get(token)
    now = ws.clock()
    if url is None:
        raise ApiError("invalid_token", status=404)
    if url.uses >= RESPONSE_URL_MAX_USES or now - url.issued_at > RESPONSE_URL_TTL_S:
        raise ApiError("expired_url", status=404)
    delete = truthy(body.get("delete_original"))
    try:
        text, blocks = ws.message_content(body, required=not delete)
    except ApiError as e:
        e.status = 400
        raise
    url.uses += 1
    if delete or truthy(body.get("replace_original")):
        _edit_original(ws, url, text, blocks, delete=delete)
    elif body.get("response_type") == "in_channel":
        ws.post(url.channel, text, blocks, str_arg(body, "thread_ts"))
    else:
        ws.ephemerals.append(
            Ephemeral(url.channel, url.user, ws.ids.ts(), text, blocks, RESPONSE_URL_METHOD)
        )
    return {"ok": True}


def _edit_original(
    ws: Workspace, url: ResponseUrl, text: str, blocks: list[JSON], *, delete: bool
) -> None:
    original: Message | Ephemeral | None
    if url.is_ephemeral:
        found = (e for e in ws.ephemerals if e.ts == url.message_ts and not e.deleted)
        original = next(found, None)
    else:
        original = ws.find_message(url.channel, url.message_ts or "")
    if original is None:
        raise ApiError("message_not_found", status=404)
    if delete:
        original.deleted = True
    else:
        original.history.append(
            MessageVersion(original.text, original.blocks, ws.clock(), RESPONSE_URL_METHOD)
        )
        original.text, original.blocks = text, blocks
