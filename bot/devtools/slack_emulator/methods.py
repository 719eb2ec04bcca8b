"""The Web API methods the emulator answers, by name (``/api/<method>``), each a function of
the workspace and the call's arguments."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bot.devtools.slack_emulator import chat, conversations, users, views
from bot.devtools.slack_emulator.workspace import Workspace

JSON = dict[str, Any]
Method = Callable[[Workspace, JSON], JSON]

WEB_API: Mapping[str, Method] = {
    "auth.test": users.auth_test,
    "chat.postMessage": chat.chat_post_message,
    "chat.postEphemeral": chat.chat_post_ephemeral,
    "chat.update": chat.chat_update,
    "views.open": views.views_open,
    "views.update": views.views_update,
    "views.publish": views.views_publish,
    "conversations.open": conversations.conversations_open,
    "conversations.info": conversations.conversations_info,
    "users.info": users.users_info,
    "users.lookupByEmail": users.users_lookup_by_email,
    "usergroups.users.list": users.usergroups_users_list,
}
