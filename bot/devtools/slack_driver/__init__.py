"""Slack's side of the HTTP conversation: requests to a bot's ``/slack/events``, sent as Slack
sends them.

Each request is signed the way Slack signs (``X-Slack-Signature: v0=<HMAC-SHA256 of
"v0:{timestamp}:{body}">`` and ``X-Slack-Request-Timestamp``), with Slack's content types:
slash commands and interactivity are ``application/x-www-form-urlencoded`` (interactivity as one
``payload=<JSON>`` field), Events API callbacks are ``application/json`` ``event_callback``
envelopes. Trigger ids and response_urls come from a ``SlackEmulator`` (by URL), so the bot's
``views.open`` and ``respond()`` land on the emulator just as they would land on Slack.

    async with SlackDriver(events_url, signing_secret=SECRET, emulator_url=emu.base_url) as slack:
        resp = await slack.slash_command("U0ALICE", "request orders-db read 30m INC-42 debugging",
                                         channel_id="C0ACCESS", channel_name="access-requests")
        assert resp.status == 200 and resp.latency_s < 3

``Delivery`` bends a request the way an attacker or a flaky network would: a bad or missing
signature, a stale timestamp, Slack's retry headers; ``replay`` resends a request byte for byte.

The package, by job: :mod:`.signing` (signatures and how a request travels), :mod:`.wire`
(content types, the request as sent, the answer, its Socket Mode envelope), :mod:`.elements`
(what a click clicked), :mod:`.payloads` (Slack's bodies), :mod:`.transport` (sending,
trigger_ids and response_urls), :mod:`.driver` (:class:`SlackDriver`). The names below are
the package's public face; import them from here.
"""

from bot.devtools.slack_driver.driver import SlackDriver
from bot.devtools.slack_driver.elements import (
    find_element,
    plain_text_value,
    static_select_value,
    users_select_value,
)
from bot.devtools.slack_driver.payloads import Payloads
from bot.devtools.slack_driver.signing import (
    DEFAULT_RETRY_REASON,
    STALE_TIMESTAMP_OFFSET_S,
    Delivery,
    RequestSigner,
    SignatureMode,
)
from bot.devtools.slack_driver.transport import SlackTransport
from bot.devtools.slack_driver.wire import (
    FORM_CONTENT_TYPE,
    JSON_CONTENT_TYPE,
    SLACK_USER_AGENT,
    DriverResponse,
    SlackRequest,
    socket_envelope,
)

__all__ = [
    "DEFAULT_RETRY_REASON",
    "FORM_CONTENT_TYPE",
    "JSON_CONTENT_TYPE",
    "SLACK_USER_AGENT",
    "STALE_TIMESTAMP_OFFSET_S",
    "Delivery",
    "DriverResponse",
    "Payloads",
    "RequestSigner",
    "SignatureMode",
    "SlackDriver",
    "SlackRequest",
    "SlackTransport",
    "find_element",
    "plain_text_value",
    "socket_envelope",
    "static_select_value",
    "users_select_value",
]
