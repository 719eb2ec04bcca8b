"""A fake Slack, faked only at the wire and in Slack's own formats.

One emulator serves the integration tests and ``grantbot demo``. It is an aiohttp server on
127.0.0.1 that answers the Web API methods grantbot calls (``/api/<method>``) and the
``response_url`` posts a bot makes, enforces Slack's Block Kit limits with Slack's error codes,
injects faults in every shape Slack fails in (429 + Retry-After, 5xx with a JSON error, slow
answers, a non-JSON body, an HTML error page, a plain-text body, no answer at all, a reset
connection) and records every call, so a test can read back exactly what the bot did.

In process::

    async with SlackEmulator() as emu:
        client = AsyncWebClient(token=emu.bot_token, base_url=emu.api_url)
        ...
        call = await emu.wait_for("chat.postMessage")

Standalone, ``python -m bot.devtools.slack_emulator --port 0`` prints
``SLACK_API_URL=http://127.0.0.1:PORT/api/`` and serves control endpoints under
``/_emulator/`` (calls, state, reset, triggers, response_urls, faults, latency);
``EmulatorControl`` is their client, used by the driver and by tests whose bot runs in another
process. ``--latency-ms 150`` answers every Web API call and response_url post 150 ms late, as
Slack typically does (``latency_s`` in process, ``/_emulator/latency`` over HTTP).

The package, by job: :mod:`.limits` (Slack's limits), :mod:`.directory` (users, channels,
usergroups, the bot's identity), :mod:`.model` and :mod:`.ids` (what the emulator keeps, and
the ids it mints), :mod:`.blockkit` (Block Kit checks), :mod:`.faults` (fault kinds and the
injector), :mod:`.workspace` (Slack's state and the checks the methods share) with the Web API
methods by family (:mod:`.chat`, :mod:`.views`, :mod:`.conversations`, :mod:`.users`, listed
in :mod:`.methods`), :mod:`.wire` (arguments and answers on the wire), :mod:`.core` (state and
in-process read-back), :mod:`.server` (:class:`SlackEmulator`, the HTTP edge), :mod:`.control`
(the control endpoints and :class:`EmulatorControl`), :mod:`.paths`, and ``__main__``. The
names below are the package's public face; import them from here.
"""

from bot.devtools.slack_emulator.blockkit import BlockKitValidator
from bot.devtools.slack_emulator.control import MAX_LATENCY_MS, ControlEndpoints, EmulatorControl
from bot.devtools.slack_emulator.directory import (
    DEFAULT_BOT_TOKEN,
    DEFAULT_TEAM_ID,
    DEMO_CHANNELS,
    DEMO_USERGROUPS,
    DEMO_USERS,
    Directory,
    FakeChannel,
    FakeUser,
    Identity,
)
from bot.devtools.slack_emulator.faults import (
    DEFAULT_TIMEOUT_HOLD_S,
    HTML_ERROR_BODY,
    NON_JSON_BODY,
    PLAIN_TEXT_BODY,
    Fault,
    FaultInjector,
    FaultKind,
)
from bot.devtools.slack_emulator.ids import SlackIds
from bot.devtools.slack_emulator.limits import (
    MAX_ACTION_ID_CHARS,
    MAX_ACTIONS_ELEMENTS,
    MAX_BLOCK_ID_CHARS,
    MAX_BUTTON_TEXT_CHARS,
    MAX_BUTTON_URL_CHARS,
    MAX_BUTTON_VALUE_CHARS,
    MAX_CALLBACK_ID_CHARS,
    MAX_CONTEXT_ELEMENTS,
    MAX_HEADER_TEXT_CHARS,
    MAX_INPUT_LABEL_CHARS,
    MAX_MESSAGE_BLOCKS,
    MAX_MESSAGE_TEXT_CHARS,
    MAX_MODAL_BUTTON_TEXT_CHARS,
    MAX_MODAL_TITLE_CHARS,
    MAX_PRIVATE_METADATA_CHARS,
    MAX_SECTION_FIELD_TEXT_CHARS,
    MAX_SECTION_FIELDS,
    MAX_SECTION_TEXT_CHARS,
    MAX_SELECT_OPTIONS,
    MAX_VIEW_BLOCKS,
    RESPONSE_URL_MAX_USES,
    RESPONSE_URL_TTL_S,
    TRIGGER_ID_TTL_S,
)
from bot.devtools.slack_emulator.model import (
    Call,
    Ephemeral,
    Message,
    MessageVersion,
    ResponseUrl,
    Trigger,
    View,
)
from bot.devtools.slack_emulator.paths import (
    API_PREFIX,
    APPS_CONNECTIONS_OPEN,
    CONTROL_PREFIX,
    RESPONSE_URL_METHOD,
    RESPONSE_URL_PATH,
)
from bot.devtools.slack_emulator.server import SlackEmulator
from bot.devtools.slack_emulator.workspace import Workspace

__all__ = [
    "API_PREFIX",
    "APPS_CONNECTIONS_OPEN",
    "CONTROL_PREFIX",
    "DEFAULT_BOT_TOKEN",
    "DEFAULT_TEAM_ID",
    "DEFAULT_TIMEOUT_HOLD_S",
    "DEMO_CHANNELS",
    "DEMO_USERGROUPS",
    "DEMO_USERS",
    "HTML_ERROR_BODY",
    "MAX_ACTIONS_ELEMENTS",
    "MAX_ACTION_ID_CHARS",
    "MAX_BLOCK_ID_CHARS",
    "MAX_BUTTON_TEXT_CHARS",
    "MAX_BUTTON_URL_CHARS",
    "MAX_BUTTON_VALUE_CHARS",
    "MAX_CALLBACK_ID_CHARS",
    "MAX_CONTEXT_ELEMENTS",
    "MAX_HEADER_TEXT_CHARS",
    "MAX_INPUT_LABEL_CHARS",
    "MAX_LATENCY_MS",
    "MAX_MESSAGE_BLOCKS",
    "MAX_MESSAGE_TEXT_CHARS",
    "MAX_MODAL_BUTTON_TEXT_CHARS",
    "MAX_MODAL_TITLE_CHARS",
    "MAX_PRIVATE_METADATA_CHARS",
    "MAX_SECTION_FIELDS",
    "MAX_SECTION_FIELD_TEXT_CHARS",
    "MAX_SECTION_TEXT_CHARS",
    "MAX_SELECT_OPTIONS",
    "MAX_VIEW_BLOCKS",
    "NON_JSON_BODY",
    "PLAIN_TEXT_BODY",
    "RESPONSE_URL_MAX_USES",
    "RESPONSE_URL_METHOD",
    "RESPONSE_URL_PATH",
    "RESPONSE_URL_TTL_S",
    "TRIGGER_ID_TTL_S",
    "BlockKitValidator",
    "Call",
    "ControlEndpoints",
    "Directory",
    "EmulatorControl",
    "Ephemeral",
    "FakeChannel",
    "FakeUser",
    "Fault",
    "FaultInjector",
    "FaultKind",
    "Identity",
    "Message",
    "MessageVersion",
    "ResponseUrl",
    "SlackEmulator",
    "SlackIds",
    "Trigger",
    "View",
    "Workspace",
]
