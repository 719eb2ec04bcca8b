"""Bundle requests (issue 13, policy ``bundles:``).

``/access request bundle incident-responder 1h <reason>`` files one request per item, each
an ordinary grant judged by its own rule (approvers, N, self-approval, auto-approval) and
issued when its rule is satisfied; each ends on its own (its own revocation job). They are
tied together by a bundle record (:mod:`bot.store.bundles`) and ``Grant.bundle``, so Slack
shows one approval message for all of them and sends one DM carrying every credential
(:mod:`bot.slack.bundle_notifier`). Asking is all or nothing: every item must be one the
requester may request, else nothing is filed and the refusal names the item.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from bot import metrics
from bot.domain.ids import ALPHABET
from bot.domain.model import Origin
from bot.domain.policy.asking import bundle_items
from bot.errors import GrantbotError, PolicyDenied
from bot.service.context import ServiceContext, safe
from bot.service.requests import Asked, RequestResult, Requests

#: A bundle record outlives its items: the longest request timeout plus the longest grant
#: and a day of slack; after that it goes by itself.
_RECORD_SLACK_S: Final = 86_400


def new_bundle_id() -> str:
    """``b-`` and 8 unguessable characters (the grant ids' alphabet)."""
    return "b-" + "".join(secrets.choice(ALPHABET) for _ in range(8))


@dataclass(frozen=True, slots=True)
class BundleResult:
    """A filed bundle: its id and name and each item's result, in the bundle's order."""

    bundle_id: str
    name: str
    items: tuple[RequestResult, ...]
    #: Items that could not be filed after the check passed (the policy changed meanwhile,
    #: the store failed): ``resource role`` -> why. The other items proceed.
    unfiled: tuple[tuple[str, str], ...] = ()


class Bundles:
    """Files every item of a bundle."""

    def __init__(self, context: ServiceContext, *, requests: Requests) -> None:
        self._c = context
        self._requests = requests

    async def check_bundle(
        self,
        *,
        user: str,
        bundle: str,
        duration_s: int | None,
        reason: str,
        tickets: Iterable[str] = (),
    ) -> None:
        """What :meth:`request_bundle` would refuse (PolicyDenied), filing nothing: the
        request form checks with this before it closes, so a refusal shows on the field."""
        items = self._items(bundle, duration_s=duration_s, reason=reason, tickets=tickets)
        await self._check_items(user=user, bundle=bundle, items=items)

    def _items(
        self, bundle: str, *, duration_s: int | None, reason: str, tickets: Iterable[str]
    ) -> list[Asked]:
        """What each item of ``bundle`` asks (PolicyDenied for an unknown bundle)."""
        tickets = list(tickets)
        return [
            Asked(
                resource=resource, role=role, duration_s=duration_s, reason=reason, tickets=tickets
            )
            for resource, role in bundle_items(self._c.policy.current.policy, bundle)
        ]

    async def _check_items(self, *, user: str, bundle: str, items: list[Asked]) -> int:
        """PolicyDenied naming the first item ``user`` may not request; else the longest a
        bundle record must last (request timeout plus duration, seconds)."""
        now = self._c.clock()
        longest = 0
        for item in items:
            try:
                decision = await self._requests.check_request(user=user, now=now, **item)
            except PolicyDenied as e:
                metrics.record_request("refused")
                raise PolicyDenied(
                    f"you may not request bundle {bundle}: its item {_named(item)} is refused: {e}"
                ) from e
            longest = max(longest, decision.request_timeout_s + decision.duration_s)
        return longest

    async def request_bundle(
        self,
        *,
        user: str,
        bundle: str,
        duration_s: int | None,
        reason: str,
        tickets: Iterable[str] = (),
        origin: Origin | None = None,
    ) -> BundleResult:
        """File bundle ``bundle`` for ``user`` (see the module docstring). PolicyDenied,
        filing nothing, for an unknown bundle or an item ``user`` may not request (named)."""
        c = self._c
        items = self._items(bundle, duration_s=duration_s, reason=reason, tickets=tickets)
        longest = await self._check_items(user=user, bundle=bundle, items=items)
        bundle_id = new_bundle_id()
        ttl_s = longest + _RECORD_SLACK_S
        book = c.store.bundles
        await book.start(bundle_id, name=bundle, requester=user, ttl_s=ttl_s)
        results = []
        unfiled = []
        try:
            for item in items:
                try:
                    result = await self._requests.request_access(
                        user=user, origin=origin, bundle=f"{bundle} {bundle_id}", **item
                    )
                except GrantbotError as e:
                    unfiled.append((_named(item), str(e)))
                    continue
                await book.add_item(bundle_id, result.grant.id, ttl_s=ttl_s)
                results.append(result)
        finally:
            await book.finish(bundle_id)
        # A notification never undoes what was filed.
        await safe(c.notifier.bundle_filed(bundle_id), about=f"announcing bundle {bundle_id}")
        return BundleResult(
            bundle_id=bundle_id, name=bundle, items=tuple(results), unfiled=tuple(unfiled)
        )


def _named(item: Asked) -> str:
    """``resource role``, as a refusal names a bundle's item."""
    return f"{item['resource']} {item['role']}"
