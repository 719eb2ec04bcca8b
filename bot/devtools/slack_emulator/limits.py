"""Slack's limits, as Slack documents them; the emulator refuses what Slack would refuse.

Block Kit, from docs.slack.dev/reference/block-kit/ (the page named on each line).
"""

from __future__ import annotations

MAX_MESSAGE_BLOCKS = 50  # "Blocks": up to 50 blocks in each message
MAX_VIEW_BLOCKS = 100  # "Blocks": up to 100 blocks in modals or Home tabs
MAX_BLOCK_ID_CHARS = 255  # "Blocks": block_id, maximum length 255 characters
MAX_SECTION_TEXT_CHARS = 3000  # "Section block": text, maximum length 3000 characters
MAX_SECTION_FIELDS = 10  # "Section block": fields, maximum number of items is 10
MAX_SECTION_FIELD_TEXT_CHARS = 2000  # "Section block": each field's text, maximum 2000 characters
MAX_HEADER_TEXT_CHARS = 150  # "Header block": text, maximum length 150 characters
MAX_ACTIONS_ELEMENTS = 25  # "Actions block": elements, maximum of 25 elements
MAX_CONTEXT_ELEMENTS = 10  # "Context block": elements, maximum number of items is 10
MAX_INPUT_LABEL_CHARS = 2000  # "Input block": label, maximum length 2000 characters
MAX_ACTION_ID_CHARS = 255  # "Block elements": action_id, maximum length 255 characters
MAX_BUTTON_TEXT_CHARS = 75  # "Button element": text, maximum length 75 characters
MAX_BUTTON_VALUE_CHARS = 2000  # "Button element": value, maximum length 2000 characters
MAX_BUTTON_URL_CHARS = 3000  # "Button element": url, maximum length 3000 characters
MAX_SELECT_OPTIONS = 100  # "Select menu element": options, maximum number of options is 100
MAX_MODAL_TITLE_CHARS = 24  # "View object" (modal): title, maximum length 24 characters
MAX_MODAL_BUTTON_TEXT_CHARS = 24  # "View object" (modal): submit / close, maximum 24 characters
MAX_PRIVATE_METADATA_CHARS = 3000  # "View object": private_metadata, maximum 3000 characters
MAX_CALLBACK_ID_CHARS = 255  # "View object": callback_id, maximum length 255 characters
# Web API, from docs.slack.dev/reference/methods/chat.postMessage: "we'll truncate messages
# containing more than 40,000 characters"; chat.postMessage / chat.update list msg_too_long.
MAX_MESSAGE_TEXT_CHARS = 40_000
# Interactivity, from docs.slack.dev/interactivity/handling-user-interaction: a trigger_id
# expires 3 seconds after it was sent; a response_url works up to 5 times within 30 minutes.
TRIGGER_ID_TTL_S = 3.0
RESPONSE_URL_MAX_USES = 5
RESPONSE_URL_TTL_S = 30 * 60.0
