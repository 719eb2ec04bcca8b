"""Issue 13's additions to the request form, kept apart from the form itself
(:mod:`bot.slack.modals.request`): the bundles the person may ask for, as one more option
group of the target select (``bundle:<name>``), and "Request for", a user picker shown to
those ``may_request_for`` lets ask for someone else.

Pure. The submission is read as untrusted input: a bundle name must be name-shaped and a
user id user-shaped; the policy decides the rest after.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from bot.slack import ids
from bot.slack.blocks.kit import OPTION_TEXT_MAX, OPTIONS_MAX, Block, option, plain
from bot.slack.commands.grammar import NAME_RE

_USER_ID_RE: Final = re.compile(r"[UW][A-Z0-9]{2,20}")
#: A dummy target the core form parser accepts while a bundle is chosen instead.
_PLACEHOLDER_TARGET: Final = f"bundle{ids.TARGET_SEPARATOR}bundle"


def with_extras(
    view: dict[str, Any],
    *,
    bundles: Sequence[str],
    may_ask_for_others: bool,
    targets: int = 0,
) -> dict[str, Any]:
    """``view`` (the request form) with the bundles offered among its targets and, when
    ``may_ask_for_others``, a "Request for" picker after the target. When the person may
    ask for more than Slack's 100 options (``targets`` resource/role pairs plus the
    bundles), the target becomes an ``external_select`` that searches as they type
    (:func:`search_targets`, answered by the ``app.options`` listener)."""
    out = copy.deepcopy(view)
    blocks: list[Block] = out.get("blocks", [])
    target = next((b for b in blocks if b.get("block_id") == ids.FORM_TARGET_BLOCK), None)
    if target is None:
        return out  # the form offers nothing: nothing to add to
    if targets + len(bundles) > OPTIONS_MAX:
        target["element"] = {
            "type": "external_select",
            "action_id": ids.FORM_TARGET_ACTION,
            "placeholder": plain("Type to search resources, roles, bundles", limit=150),
            "min_query_length": 0,
        }
        # The core form's "showing 100 of N" note no longer applies: all are searchable.
        out["blocks"] = blocks = [b for b in blocks if b.get("type") != "context"]
        bundles = ()
    element = target["element"]
    groups = element.setdefault("option_groups", []) if "options" not in element else []
    used = sum(len(g.get("options", [])) for g in groups)
    room = max(0, OPTIONS_MAX - used)
    if bundles and room and len(groups) < OPTIONS_MAX:
        groups.insert(
            0,
            {
                "label": plain("Bundles", limit=OPTION_TEXT_MAX),
                "options": [
                    option(f"bundle {name}", f"{ids.BUNDLE_TARGET_PREFIX}{name}")
                    for name in bundles[:room]
                ],
            },
        )
    if element.get("type") == "external_select":
        element.pop("option_groups", None)
    if may_ask_for_others:
        picker: Block = {
            "type": "input",
            "block_id": ids.FORM_FOR_BLOCK,
            "optional": True,
            "label": plain("Request for", limit=2000),
            "hint": plain(
                "Leave empty to ask for yourself. The credential goes only to them.", limit=2000
            ),
            "element": {"type": "users_select", "action_id": ids.FORM_FOR_ACTION},
        }
        blocks.insert(blocks.index(target) + 1, picker)
    return out


def search_targets(
    pairs: Sequence[tuple[str, str, str]], bundles: Sequence[str], query: str
) -> list[Block]:
    """Option groups for the external_select: the bundles and (resource, role, label)
    ``pairs`` whose name contains every word of ``query`` (case-insensitive), at most 100
    options in all, bundles first, grouped by resource."""
    words = query.lower().split()

    def matches(text: str) -> bool:
        return all(w in text.lower() for w in words)

    groups: dict[str, list[Block]] = {}
    room = OPTIONS_MAX
    found = [n for n in bundles if matches(f"bundle {n}")][:room]
    if found:
        groups["Bundles"] = [option(f"bundle {n}", f"{ids.BUNDLE_TARGET_PREFIX}{n}") for n in found]
        room -= len(found)
    for resource, role, label in pairs:
        if room <= 0:
            break
        if matches(f"{resource} {role}"):
            value = f"{resource}{ids.TARGET_SEPARATOR}{role}"
            groups.setdefault(resource, []).append(option(label, value))
            room -= 1
    return [
        {"label": plain(name, limit=OPTION_TEXT_MAX), "options": options}
        for name, options in list(groups.items())[:OPTIONS_MAX]
    ]


@dataclass(frozen=True, slots=True)
class Extras:
    """What the additions say: the bundle chosen (instead of a resource) and for whom."""

    bundle: str | None
    beneficiary: str | None
    #: The submitted values as the core parser should read them (a placeholder target
    #: while a bundle is chosen, so it checks the other fields as usual).
    values: Mapping[str, Any]


def read_extras(values: Mapping[str, Any]) -> Extras | dict[str, str]:
    """The additions from a submitted form, or field errors."""
    errors: dict[str, str] = {}
    picked = (values.get(ids.FORM_FOR_BLOCK) or {}).get(ids.FORM_FOR_ACTION) or {}
    user = picked.get("selected_user") if isinstance(picked, Mapping) else None
    beneficiary = None
    if isinstance(user, str) and user:
        if _USER_ID_RE.fullmatch(user) is None:
            errors[ids.FORM_FOR_BLOCK] = "Choose a person from the list."
        beneficiary = user
    target = (values.get(ids.FORM_TARGET_BLOCK) or {}).get(ids.FORM_TARGET_ACTION) or {}
    chosen = target.get("selected_option") if isinstance(target, Mapping) else None
    value = chosen.get("value") if isinstance(chosen, Mapping) else None
    bundle = None
    if isinstance(value, str) and value.startswith(ids.BUNDLE_TARGET_PREFIX):
        bundle = value.removeprefix(ids.BUNDLE_TARGET_PREFIX)
        if NAME_RE.fullmatch(bundle) is None:
            errors[ids.FORM_TARGET_BLOCK] = "Choose a resource, role or bundle from the list."
        elif beneficiary is not None:
            errors[ids.FORM_FOR_BLOCK] = "A bundle is asked for yourself; leave this empty."
    if errors:
        return errors
    if bundle is None:
        return Extras(bundle=None, beneficiary=beneficiary, values=values)
    replaced = dict(values)
    replaced[ids.FORM_TARGET_BLOCK] = {
        ids.FORM_TARGET_ACTION: {
            "type": "static_select",
            "selected_option": {"value": _PLACEHOLDER_TARGET},
        }
    }
    return Extras(bundle=bundle, beneficiary=None, values=replaced)
