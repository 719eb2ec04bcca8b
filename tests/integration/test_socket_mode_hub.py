"""The emulator's Socket Mode, checked against slack_sdk's own aiohttp Socket Mode client."""

from __future__ import annotations

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.devtools.slack_emulator import DEFAULT_BOT_TOKEN, SlackEmulator
from bot.devtools.socket_mode import DEFAULT_APP_TOKEN


async def test_only_the_app_token_opens_a_connection() -> None:
    """apps.connections.open answers as Slack does: the bot token is the wrong kind of
    token, an unknown app token is invalid, the right one gets a one-time ws:// URL."""
    async with SlackEmulator() as emu:
        client = AsyncWebClient(base_url=emu.api_url)
        for token, error in (
            (DEFAULT_BOT_TOKEN, "not_allowed_token_type"),
            ("xapp-1-x", "invalid_auth"),
        ):
            with pytest.raises(SlackApiError) as refused:
                await client.apps_connections_open(app_token=token)
            assert refused.value.response.data == {"ok": False, "error": error}
        ok = await client.apps_connections_open(app_token=DEFAULT_APP_TOKEN)
        assert str(ok["url"]).startswith(f"ws://127.0.0.1:{emu.port}/")


async def test_envelopes_reach_slack_sdks_client_and_its_acks_come_back() -> None:
    """slack_sdk's client connects, receives each envelope type with its payload, and its ack
    (with a response payload) is what the delivery reports; an unacked envelope is reported
    unacked after the deadline."""
    async with SlackEmulator() as emu:
        seen: list[tuple[str, dict[str, object]]] = []
        web = AsyncWebClient(token=emu.bot_token, base_url=emu.api_url)
        client = SocketModeClient(app_token=DEFAULT_APP_TOKEN, web_client=web)

        async def listener(c: SocketModeClient, req: SocketModeRequest) -> None:
            seen.append((req.type, req.payload))
            if req.payload.get("text") == "silent":
                return  # never acked
            await c.send_socket_mode_response(
                SocketModeResponse(envelope_id=req.envelope_id, payload={"text": "got it"})
            )

        client.socket_mode_request_listeners.append(listener)
        await client.connect()
        try:
            hub = emu.socket_mode
            acked = await hub.deliver("slash_commands", {"command": "/access", "text": "help"})
            assert acked.acked and acked.ack == {
                "envelope_id": acked.envelope_id,
                "payload": {"text": "got it"},
            }
            event = await hub.deliver("events_api", {"type": "event_callback", "event": {}})
            assert event.acked
            silent = await hub.deliver("slash_commands", {"text": "silent"}, timeout_s=0.3)
            assert not silent.acked
            assert [t for t, _ in seen] == ["slash_commands", "events_api", "slash_commands"]
            assert seen[0][1] == {"command": "/access", "text": "help"}
        finally:
            await client.close()
