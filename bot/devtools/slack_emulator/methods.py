"""The Web API methods the emulator answers, by name (``/api/<method>``), each a function of
the workspace and the call's arguments."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bot.devtools.slack_emulator.chat import chat_post_ephemeral, chat_post_message, chat_update
from bot.devtools.slack_emulator.conversations import (
    conversations_history,
    conversations_info,
    conversations_open,
)
from bot.devtools.slack_emulator.users import (
    auth_test,
    usergroups_users_list,
    users_info,
    users_lookup_by_email,
)
from bot.devtools.slack_emulator.views import views_open, views_publish, views_update
from bot.devtools.slack_emulator.workspace import Workspace

JSON = dict[str, Any]
Method = Callable[[Workspace, JSON], JSON]

WEB_API: Mapping[str, Method] = {
    "auth.test": auth_test,
    "chat.postMessage": chat_post_message,
    "chat.postEphemeral": chat_post_ephemeral,
    "chat.update": chat_update,
    "views.open": views_open,
    "views.update": views_update,
    "views.publish": views_publish,
    "conversations.open": conversations_open,
    "conversations.info": conversations_info,
    "conversations.history": conversations_history,
    "users.info": users_info,
    "users.lookupByEmail": users_lookup_by_email,
    "usergroups.users.list": usergroups_users_list,
}
