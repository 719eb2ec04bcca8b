"""Block Kit checked against Slack's limits (:mod:`.limits`), each problem worded as Slack words
it (``must be less than 3001 characters [json-pointer:/blocks/0/text/text]``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

import bot.devtools.slack_emulator.limits as limits

JSON = dict[str, Any]
#: Checks one item of an array at a JSON pointer; the problems found.
ItemCheck = Callable[[object, str], list[str]]

_TEXT_TYPES = ("plain_text", "mrkdwn")
_KNOWN_BLOCK_TYPES = frozenset(
    {
        "section",
        "header",
        "actions",
        "context",
        "input",
        "divider",
        "image",
        "rich_text",
        "file",
        "video",
        "markdown",
    }
)
#: Blocks made of a list of elements: how many they hold, and whether they are interactive.
_ELEMENT_LISTS: Final[Mapping[str, tuple[int, bool]]] = {
    "actions": (limits.MAX_ACTIONS_ELEMENTS, True),
    "context": (limits.MAX_CONTEXT_ELEMENTS, False),
}
_SELECT_TYPES = frozenset(
    {"static_select", "multi_static_select", "radio_buttons", "checkboxes", "overflow"}
)


def _too_long(limit: int, pointer: str) -> str:
    return f"must be less than {limit + 1} characters [json-pointer:{pointer}]"


def _too_many(limit: int, pointer: str) -> str:
    return f"no more than {limit} items allowed [json-pointer:{pointer}]"


def _array(items: object, ptr: str, limit: int, check: ItemCheck | None) -> list[str]:
    """An array of at most ``limit`` items, each passing ``check`` (if any)."""
    if not isinstance(items, list):
        return [f"must be an array [json-pointer:{ptr}]"]
    if len(items) > limit:
        return [_too_many(limit, ptr)]
    if check is None:
        return []
    problems: list[str] = []
    for i, item in enumerate(items):
        problems += check(item, f"{ptr}/{i}")
    return problems


class BlockKitValidator:
    """Checks Block Kit JSON against Slack's limits; each problem is worded as Slack words it."""

    def message_blocks(self, blocks: object) -> list[str]:
        if blocks is None:
            return []
        return self._blocks(blocks, "/blocks", limits.MAX_MESSAGE_BLOCKS)

    def view(self, view: object, *, expected_type: str | None = None) -> list[str]:
        ptr = "/view"
        if not isinstance(view, dict):
            return [f"must be an object [json-pointer:{ptr}]"]
        problems: list[str] = []
        kind = view.get("type")
        allowed = (expected_type,) if expected_type else ("modal", "home")
        if kind not in allowed:
            problems.append(f"must be one of: {', '.join(allowed)} [json-pointer:{ptr}/type]")
        if kind == "modal":
            if "title" not in view:
                problems.append(f"missing required field: title [json-pointer:{ptr}]")
            else:
                problems += self._text(
                    view["title"], f"{ptr}/title", limits.MAX_MODAL_TITLE_CHARS, True
                )
            for key in ("submit", "close"):
                if view.get(key) is not None:
                    problems += self._text(
                        view[key], f"{ptr}/{key}", limits.MAX_MODAL_BUTTON_TEXT_CHARS, True
                    )
        problems += self._max_len(
            view.get("private_metadata"),
            f"{ptr}/private_metadata",
            limits.MAX_PRIVATE_METADATA_CHARS,
        )
        problems += self._max_len(
            view.get("callback_id"), f"{ptr}/callback_id", limits.MAX_CALLBACK_ID_CHARS
        )
        if "blocks" not in view:
            problems.append(f"missing required field: blocks [json-pointer:{ptr}]")
        else:
            problems += self._blocks(view["blocks"], f"{ptr}/blocks", limits.MAX_VIEW_BLOCKS)
        return problems

    def _blocks(self, blocks: object, ptr: str, max_blocks: int) -> list[str]:
        return _array(blocks, ptr, max_blocks, self._block)

    def _block(self, block: object, ptr: str) -> list[str]:
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            return [f"missing required field: type [json-pointer:{ptr}]"]
        kind = block["type"]
        if kind not in _KNOWN_BLOCK_TYPES:
            return [f"unsupported type: {kind} [json-pointer:{ptr}/type]"]
        problems = self._max_len(
            block.get("block_id"), f"{ptr}/block_id", limits.MAX_BLOCK_ID_CHARS
        )
        if kind == "section":
            problems += self._section(block, ptr)
        elif kind == "header":
            problems += self._text(
                block.get("text"), f"{ptr}/text", limits.MAX_HEADER_TEXT_CHARS, True
            )
        elif kind in _ELEMENT_LISTS:
            limit, interactive = _ELEMENT_LISTS[kind]
            problems += self._elements(
                block.get("elements"), f"{ptr}/elements", limit, interactive=interactive
            )
        elif kind == "input":
            problems += self._text(
                block.get("label"), f"{ptr}/label", limits.MAX_INPUT_LABEL_CHARS, True
            )
            problems += self._element(block.get("element"), f"{ptr}/element")
        return problems

    def _section(self, block: JSON, ptr: str) -> list[str]:
        if "text" not in block and "fields" not in block:
            return [f"missing required field: text [json-pointer:{ptr}]"]
        problems: list[str] = []
        if "text" in block:
            problems += self._text(block["text"], f"{ptr}/text", limits.MAX_SECTION_TEXT_CHARS)
        fields = block.get("fields")
        if fields is not None:
            if not isinstance(fields, list):
                return [*problems, f"must be an array [json-pointer:{ptr}/fields]"]
            if len(fields) > limits.MAX_SECTION_FIELDS:
                problems.append(_too_many(limits.MAX_SECTION_FIELDS, f"{ptr}/fields"))
            for i, f in enumerate(fields):
                problems += self._text(f, f"{ptr}/fields/{i}", limits.MAX_SECTION_FIELD_TEXT_CHARS)
        if "accessory" in block:
            problems += self._element(block["accessory"], f"{ptr}/accessory")
        return problems

    def _elements(self, elements: object, ptr: str, limit: int, *, interactive: bool) -> list[str]:
        # Only interactive elements carry action_ids and texts with limits of their own.
        return _array(elements, ptr, limit, self._element if interactive else None)

    def _element(self, element: object, ptr: str) -> list[str]:
        if not isinstance(element, dict) or not isinstance(element.get("type"), str):
            return [f"missing required field: type [json-pointer:{ptr}]"]
        problems = self._max_len(
            element.get("action_id"), f"{ptr}/action_id", limits.MAX_ACTION_ID_CHARS
        )
        if element["type"] == "button":
            problems += self._text(
                element.get("text"), f"{ptr}/text", limits.MAX_BUTTON_TEXT_CHARS, True
            )
            problems += self._max_len(
                element.get("value"), f"{ptr}/value", limits.MAX_BUTTON_VALUE_CHARS
            )
            problems += self._max_len(element.get("url"), f"{ptr}/url", limits.MAX_BUTTON_URL_CHARS)
        elif element["type"] in _SELECT_TYPES:
            options = element.get("options")
            if isinstance(options, list) and len(options) > limits.MAX_SELECT_OPTIONS:
                problems.append(_too_many(limits.MAX_SELECT_OPTIONS, f"{ptr}/options"))
        return problems

    def _text(self, obj: object, ptr: str, limit: int, plain_only: bool = False) -> list[str]:
        allowed = ("plain_text",) if plain_only else _TEXT_TYPES
        if not isinstance(obj, dict):
            return [f"missing required field: text [json-pointer:{ptr}]"]
        if obj.get("type") not in allowed:
            return [f"must be one of: {', '.join(allowed)} [json-pointer:{ptr}/type]"]
        text = obj.get("text")
        if not isinstance(text, str):
            return [f"must be a string [json-pointer:{ptr}/text]"]
        if not text:
            return [f"must be more than 0 characters [json-pointer:{ptr}/text]"]
        return self._max_len(text, f"{ptr}/text", limit)

    @staticmethod
    def _max_len(value: object, ptr: str, limit: int) -> list[str]:
        if isinstance(value, str) and len(value) > limit:
            return [_too_long(limit, ptr)]
        return []
