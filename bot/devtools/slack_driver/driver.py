"""The driver: what people do in Slack (commands, clicks, form submissions, mentions, opening
App Home), sent to the bot as Slack sends it."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from bot.devtools.slack_driver.elements import action_payload, find_element
from bot.devtools.slack_driver.payloads import Payloads
from bot.devtools.slack_driver.signing import Delivery
from bot.devtools.slack_driver.transport import SlackTransport
from bot.devtools.slack_driver.wire import (
    FORM_CONTENT_TYPE,
    JSON_CONTENT_TYPE,
    DriverResponse,
)
from bot.devtools.slack_emulator.directory import DEFAULT_TEAM_ID

JSON = dict[str, Any]


class SlackDriver(SlackTransport):
    """Sends signed Slack requests to ``events_url`` and reports the bot's answers.

    ``emulator_url`` (an emulator's root, ``emu.base_url``) is where trigger ids and
    response_urls are minted; without it they are made up and lead nowhere. Close with
    ``close()`` or use ``async with``.
    """

    def __init__(
        self,
        events_url: str,
        *,
        signing_secret: str,
        emulator_url: str | None = None,
        team_id: str = DEFAULT_TEAM_ID,
        team_domain: str = "grantbot-demo",
        api_app_id: str = "A0GRANTBOT",
        bot_user_id: str = "U0GRANTBOT",
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.time,
        socket_mode: bool = False,
        enterprise_id: str | None = None,
        actor_team_id: str | None = None,
    ) -> None:
        """``socket_mode``: deliver through the emulator's Socket Mode connection to the bot
        (``emulator_url`` required) instead of posting to ``events_url``; the same methods,
        the same payloads, wrapped in Socket Mode envelopes (and unsigned, as there).

        ``team_id`` / ``enterprise_id``: the workspace (and Enterprise Grid organisation) the
        payloads come from; ``actor_team_id``: the acting person's home workspace when it is
        another (a Slack Connect guest). :meth:`from_workspace` makes a sibling driver for
        another workspace."""
        super().__init__(
            events_url,
            signing_secret=signing_secret,
            payloads=Payloads(
                team_id,
                team_domain,
                api_app_id,
                bot_user_id,
                clock=clock,
                enterprise_id=enterprise_id,
                actor_team_id=actor_team_id,
            ),
            emulator_url=emulator_url,
            timeout_s=timeout_s,
            clock=clock,
            socket_mode=socket_mode,
        )

    def from_workspace(
        self,
        *,
        team_id: str,
        enterprise_id: str | None = None,
        actor_team_id: str | None = None,
        team_domain: str = "elsewhere",
    ) -> SlackDriver:
        """A driver like this one (same bot, secret, emulator, mode) whose payloads come from
        workspace ``team_id`` (in organisation ``enterprise_id``), as another installation of
        the same app would send them: validly signed. Close it (or ``async with`` it)."""
        sibling = SlackDriver(
            self.events_url,
            signing_secret=self._signing_secret,
            emulator_url=self._emulator_url,
            timeout_s=self._timeout_s,
            clock=self._clock,
            socket_mode=self.socket_mode,
        )
        # The same app and bot (api_app_id, bot_user_id), from another workspace.
        sibling.payloads = dataclasses.replace(
            self.payloads,
            team_id=team_id,
            team_domain=team_domain,
            enterprise_id=enterprise_id,
            actor_team_id=actor_team_id,
        )
        return sibling

    # --- what users do ---
    async def slash_command(
        self,
        user_id: str,
        text: str,
        *,
        channel_id: str,
        channel_name: str,
        command: str = "/access",
        user_name: str | None = None,
        delivery: Delivery | None = None,
    ) -> DriverResponse:
        body = self.payloads.slash_command(
            user_id=user_id,
            user_name=user_name,
            text=text,
            channel_id=channel_id,
            channel_name=channel_name,
            command=command,
            trigger_id=await self.trigger_id(user_id),
            response_url=await self.response_url(user_id, channel_id),
        )
        return await self.send(body, FORM_CONTENT_TYPE, delivery=delivery)

    async def block_action(
        self,
        user_id: str,
        action_id: str,
        value: str | None = None,
        *,
        message: Mapping[str, Any] | None = None,
        channel_id: str | None = None,
        channel_name: str | None = None,
        is_ephemeral: bool = False,
        view: Mapping[str, Any] | None = None,
        state_values: Mapping[str, Any] | None = None,
        block_id: str | None = None,
        trigger_id: str | None = None,
        user_name: str | None = None,
        delivery: Delivery | None = None,
    ) -> DriverResponse:
        """A click (or selection) on an element in a ``message`` or a ``view``.

        The element is looked up by ``action_id`` in the container's blocks and sent as Slack
        would send it. ``value`` overrides what the element carries, and an explicit
        ``block_id`` allows an element that is not there: both forge a payload, as an attacker
        could. (A ``block_id`` whose block has the element clicks that one: a real click on one
        of several buttons alike.) ``message`` is Slack's message JSON
        (``Message.as_slack()``), in ``channel_id``.
        """
        if (message is None) == (view is None):
            raise ValueError("a block action comes from exactly one of a message or a view")
        container_blocks = (message or view or {}).get("blocks", [])
        try:
            found_block_id, element = find_element(container_blocks, action_id, in_block=block_id)
        except LookupError:
            if block_id is None:
                raise
            found_block_id, element = block_id, {"type": "button", "action_id": action_id}
        action = action_payload(element, block_id or found_block_id, value, self.payloads.ts())
        trigger = trigger_id or await self.trigger_id(user_id)
        payload = self.payloads.interaction_base("block_actions", user_id, user_name, trigger)
        payload["actions"] = [action]
        if view is not None:
            full_view = {**view, "state": {"values": dict(state_values or {})}}
            payload.update(container={"type": "view", "view_id": view.get("id")}, view=full_view)
        else:
            assert message is not None
            payload.update(
                await self._message_container(
                    user_id, message, channel_id, channel_name, is_ephemeral
                )
            )
            payload["state"] = {"values": dict(state_values or {})}
        return await self.send(
            self.payloads.interactive(payload), FORM_CONTENT_TYPE, delivery=delivery
        )

    async def _message_container(
        self,
        user_id: str,
        message: Mapping[str, Any],
        channel_id: str | None,
        channel_name: str | None,
        is_ephemeral: bool,
    ) -> JSON:
        channel = channel_id or message.get("channel")
        if not isinstance(channel, str):
            raise ValueError("a message's block action needs its channel_id")
        ts = str(message["ts"])
        name = channel_name or ("directmessage" if channel.startswith("D") else channel)
        part: JSON = {
            "container": {
                "type": "message",
                "message_ts": ts,
                "channel_id": channel,
                "is_ephemeral": is_ephemeral,
            },
            "channel": {"id": channel, "name": name},
            "response_url": await self.response_url(
                user_id, channel, message_ts=ts, is_ephemeral=is_ephemeral
            ),
        }
        if not is_ephemeral:  # Slack does not echo an ephemeral message back
            part["message"] = {k: v for k, v in message.items() if k != "channel"}
        return part

    async def view_submission(
        self,
        user_id: str,
        view: Mapping[str, Any],
        *,
        values: Mapping[str, Mapping[str, Any]] | None = None,
        user_name: str | None = None,
        delivery: Delivery | None = None,
    ) -> DriverResponse:
        """Submit ``view`` (Slack's view JSON, e.g. ``View.as_slack()``) with ``values``:
        ``{block_id: {action_id: plain_text_value("...")}}``, as ``view.state.values``."""
        payload = self.payloads.interaction_base(
            "view_submission", user_id, user_name, await self.trigger_id(user_id)
        )
        state = dict(view.get("state", {}).get("values", {}))
        state.update(values or {})
        payload["view"] = {**view, "state": {"values": state}}
        payload["response_urls"] = []
        return await self.send(
            self.payloads.interactive(payload), FORM_CONTENT_TYPE, delivery=delivery
        )

    async def global_shortcut(
        self, user_id: str, callback_id: str, *, delivery: Delivery | None = None
    ) -> DriverResponse:
        """A global shortcut (the lightning menu, or a search) chosen by ``user_id``."""
        payload = self.payloads.interaction_base(
            "shortcut", user_id, None, await self.trigger_id(user_id)
        )
        payload.update(callback_id=callback_id, action_ts=self.payloads.ts())
        return await self.send(
            self.payloads.interactive(payload), FORM_CONTENT_TYPE, delivery=delivery
        )

    async def block_suggestion(
        self,
        user_id: str,
        view: Mapping[str, Any],
        action_id: str,
        typed: str,
        *,
        delivery: Delivery | None = None,
    ) -> DriverResponse:
        """``user_id`` typing ``typed`` into the external_select ``action_id`` of ``view``
        (a modal): Slack asks the app for options (block_suggestion); its answer is JSON."""
        block_id, _ = find_element(view.get("blocks", []), action_id)
        payload = self.payloads.interaction_base("block_suggestion", user_id, None, "")
        payload.pop("trigger_id")
        payload.update(
            action_id=action_id,
            block_id=block_id,
            value=typed,
            container={"type": "view", "view_id": view.get("id")},
            view={**view, "state": {"values": {}}},
        )
        return await self.send(
            self.payloads.interactive(payload), FORM_CONTENT_TYPE, delivery=delivery
        )

    async def app_mention(
        self,
        user_id: str,
        text: str,
        *,
        channel: str,
        thread_ts: str | None = None,
        event_id: str | None = None,
        delivery: Delivery | None = None,
    ) -> DriverResponse:
        """``@grantbot text`` in ``channel``; the mention is added when ``text`` lacks it."""
        mention = f"<@{self.payloads.bot_user_id}>"
        ts = self.payloads.ts()
        event: JSON = {
            "type": "app_mention",
            "user": user_id,
            "text": text if mention in text else f"{mention} {text}",
            "ts": ts,
            "client_msg_id": str(uuid.uuid4()),
            "team": self.payloads.actor_team,
            "channel": channel,
            "event_ts": ts,
        }
        if thread_ts:
            event["thread_ts"] = thread_ts
        if self.payloads.actor_team != self.payloads.team_id:
            event["user_team"] = self.payloads.actor_team  # as Slack sends for a guest
        return await self.send_event(event, event_id=event_id, delivery=delivery)

    async def app_home_opened(
        self,
        user_id: str,
        *,
        view: Mapping[str, Any] | None = None,
        event_id: str | None = None,
        delivery: Delivery | None = None,
    ) -> DriverResponse:
        """The user opens the App Home tab; ``view`` is the home view they currently have."""
        event: JSON = {
            "type": "app_home_opened",
            "user": user_id,
            "channel": f"D{user_id[1:]}",
            "tab": "home",
            "event_ts": self.payloads.ts(),
        }
        if view is not None:
            event["view"] = dict(view)
        return await self.send_event(event, event_id=event_id, delivery=delivery)

    async def url_verification(self, challenge: str) -> DriverResponse:
        """The handshake Slack sends when the Request URL is saved."""
        body = json.dumps(
            {
                "token": self.payloads.verification_token,
                "challenge": challenge,
                "type": "url_verification",
            }
        ).encode()
        return await self.send(body, JSON_CONTENT_TYPE)

    async def send_event(
        self,
        event: Mapping[str, Any],
        *,
        event_id: str | None = None,
        delivery: Delivery | None = None,
    ) -> DriverResponse:
        """Any Events API ``event``, wrapped in its event_callback envelope."""
        body = self.payloads.event_callback(event, event_id=event_id)
        return await self.send(body, JSON_CONTENT_TYPE, delivery=delivery)
