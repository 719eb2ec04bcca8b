"""Block Kit's primitives, Slack's documented limits and the text helpers every builder uses.

Pure. Everything is cut to Slack's documented limits, each cut naming its limit, so a long
reason or a huge policy never makes Slack reject a message. Text a person typed goes through
:func:`escape` so that a typed ``<!here>`` cannot ping.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

Block = dict[str, Any]

# -- Slack's limits (https://docs.slack.dev/reference/block-kit) -----------------------------

#: A section's text: 3000 characters.
SECTION_TEXT_MAX: Final = 3000
#: Each of a section's fields: 2000 characters; at most 10 fields.
FIELD_TEXT_MAX: Final = 2000
FIELDS_MAX: Final = 10
#: A header block's plain_text: 150 characters.
HEADER_TEXT_MAX: Final = 150
#: A context block's elements: at most 10, each text at most 2000 characters.
CONTEXT_ELEMENTS_MAX: Final = 10
CONTEXT_TEXT_MAX: Final = 2000
#: A button's text: 75 characters; its value: 2000.
BUTTON_TEXT_MAX: Final = 75
#: An option's text: 75 characters; its value: 150. A select holds at most 100 options and
#: at most 100 option groups.
OPTION_TEXT_MAX: Final = 75
OPTION_VALUE_MAX: Final = 150
OPTIONS_MAX: Final = 100
#: A modal's title, submit and close texts: 24 characters each.
MODAL_TITLE_MAX: Final = 24
#: A view's private_metadata: 3000 characters.
PRIVATE_METADATA_MAX: Final = 3000
#: Blocks in a message: 50; in a modal or the App Home tab: 100.
MESSAGE_BLOCKS_MAX: Final = 50
VIEW_BLOCKS_MAX: Final = 100
#: A message's top-level ``text`` (the notification fallback). Slack truncates at 40,000;
#: we keep it to the length Slack recommends for readable notifications.
MESSAGE_TEXT_MAX: Final = 4000
#: An input's placeholder: 150 characters; its hint and label: 2000.
PLACEHOLDER_MAX: Final = 150
#: A plain_text_input's max_length may be at most 3000.
TEXT_INPUT_MAX: Final = 3000

ELLIPSIS: Final = "…"
_USER_ID_RE: Final = re.compile(r"[UW][A-Z0-9]{2,20}")
_CHANNEL_ID_RE: Final = re.compile(r"[CGD][A-Z0-9]{2,20}")


@dataclass(frozen=True, slots=True)
class Message:
    """A chat message: ``text`` is the notification fallback, ``blocks`` what Slack shows."""

    text: str
    blocks: list[Block] = field(default_factory=list)

    def as_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for chat.postMessage / chat.update / respond()."""
        return {"text": self.text, "blocks": self.blocks}


# -- text helpers -----------------------------------------------------------------------------


def truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending in an ellipsis when cut."""
    if limit <= 0:
        return ""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def escape(text: str) -> str:
    """Plain text made safe inside mrkdwn: Slack reads ``<...>`` as links and mentions."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_ESCAPED_MENTION_RE: Final = re.compile(r"&lt;@([UW][A-Z0-9]{2,20})&gt;")


def escape_keeping_mentions(text: str) -> str:
    """Like :func:`escape`, but user mentions (``<@U123>``) stay mentions. For grantbot's own
    messages, which name people that way; never for text a person typed."""
    return _ESCAPED_MENTION_RE.sub(r"<@\1>", escape(text))


def user(user_id: str | None) -> str:
    """A mention for a Slack user id; anything not shaped like one is shown escaped."""
    if user_id is None:
        return "someone"
    if _USER_ID_RE.fullmatch(user_id):
        return f"<@{user_id}>"
    return escape(user_id)


def channel(channel_id: str) -> str:
    """A channel link for a channel id; anything else escaped."""
    return f"<#{channel_id}>" if _CHANNEL_ID_RE.fullmatch(channel_id) else escape(channel_id)


def when(ts: float, *, style: str = "{date_short_pretty} at {time}") -> str:
    """A time as Slack renders it in each reader's own zone, with a UTC fallback."""
    fallback = datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(ts)}^{style}|{fallback}>"


# -- Block Kit primitives ---------------------------------------------------------------------


def mrkdwn(text: str, *, limit: int = SECTION_TEXT_MAX) -> Block:
    """A mrkdwn text object, cut to ``limit``."""
    return {"type": "mrkdwn", "text": truncate(text, limit)}


def plain(text: str, *, limit: int, emoji: bool = True) -> Block:
    """A plain_text object, cut to ``limit``."""
    return {"type": "plain_text", "text": truncate(text, limit), "emoji": emoji}


def section(text: str, *, block_id: str | None = None, accessory: Block | None = None) -> Block:
    """A section of mrkdwn text (cut to Slack's 3000), with an optional accessory."""
    block: Block = {"type": "section", "text": mrkdwn(text)}
    if block_id is not None:
        block["block_id"] = block_id
    if accessory is not None:
        block["accessory"] = accessory
    return block


def fields_section(pairs: Sequence[tuple[str, str]]) -> Block:
    """A section of (label, value) fields (the first 10: Slack's limit)."""
    shown = pairs[:FIELDS_MAX]  # Slack: at most 10 fields per section
    return {
        "type": "section",
        "fields": [mrkdwn(f"*{k}*\n{v}", limit=FIELD_TEXT_MAX) for k, v in shown],
    }


def context(*texts: str) -> Block:
    """A context block of mrkdwn texts (the first 10: Slack's limit)."""
    return {
        "type": "context",
        "elements": [mrkdwn(t, limit=CONTEXT_TEXT_MAX) for t in texts[:CONTEXT_ELEMENTS_MAX]],
    }


def header(text: str) -> Block:
    """A header block, cut to Slack's 150 characters."""
    return {"type": "header", "text": plain(text, limit=HEADER_TEXT_MAX)}


def button(
    text: str, *, action_id: str, value: str, style: str | None = None, confirm: Block | None = None
) -> Block:
    """A button; its ``value`` is all a click carries back (grantbot's: a grant id)."""
    element: Block = {
        "type": "button",
        "text": plain(text, limit=BUTTON_TEXT_MAX),
        "action_id": action_id,
        "value": value,
    }
    if style is not None:
        element["style"] = style
    if confirm is not None:
        element["confirm"] = confirm
    return element


def text_input(
    block_id: str,
    action_id: str,
    *,
    label: str,
    max_length: int,
    hint: str | None = None,
    placeholder: str | None = None,
    optional: bool = False,
    multiline: bool = False,
) -> Block:
    """An input block holding one plain_text_input, its texts cut to Slack's limits."""
    element: Block = {"type": "plain_text_input", "action_id": action_id, "max_length": max_length}
    if multiline:
        element["multiline"] = True
    if placeholder is not None:
        element["placeholder"] = plain(placeholder, limit=PLACEHOLDER_MAX)
    block: Block = {"type": "input", "block_id": block_id, "label": plain(label, limit=2000)}
    if optional:
        block["optional"] = True
    if hint is not None:
        block["hint"] = plain(hint, limit=2000)
    block["element"] = element
    return block


def confirm_dialog(title: str, text: str, *, ok: str) -> Block:
    """A button's "are you sure?" dialog."""
    return {
        "title": plain(title, limit=100),  # confirm dialog title: 100 characters
        "text": plain(text, limit=300),  # confirm dialog text: 300 characters
        "confirm": plain(ok, limit=30),  # confirm button: 30 characters
        "deny": plain("Cancel", limit=30),
    }


def option(text: str, value: str) -> Block:
    """A select option (text cut to 75, value to 150 characters)."""
    return {
        "text": plain(text, limit=OPTION_TEXT_MAX),
        "value": value[:OPTION_VALUE_MAX],
    }


def fallback_text(text: str) -> str:
    """A message's notification ``text``, cut to :data:`MESSAGE_TEXT_MAX`."""
    return truncate(text, MESSAGE_TEXT_MAX)


def fit(blocks: list[Block], *, limit: int, more: str) -> list[Block]:
    """At most ``limit`` blocks; when cut, the last one says what was left out."""
    if len(blocks) <= limit:
        return blocks
    return [*blocks[: limit - 1], context(more)]


def chunked_sections(text: str) -> list[Block]:
    """``text`` as sections of at most 3000 characters, split at line ends where possible."""
    out: list[Block] = []
    rest = text
    while rest:
        if len(rest) <= SECTION_TEXT_MAX:
            out.append(section(rest))
            break
        cut = rest.rfind("\n", 0, SECTION_TEXT_MAX)
        cut = cut if cut > 0 else SECTION_TEXT_MAX
        out.append(section(rest[:cut]))
        rest = rest[cut:].lstrip("\n")
    return out
