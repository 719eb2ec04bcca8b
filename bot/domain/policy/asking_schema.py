"""The shapes of issue 13's policy keys ``may_request_for`` and ``bundles`` (strict pydantic,
like :mod:`bot.domain.policy.schema`); what they mean is :mod:`bot.domain.policy.asking`."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field

from bot.domain.policy.schema import Requesters, Strict, _matching

#: One bundle item: ``resource/role``.
BundleItem = Annotated[
    str,
    BeforeValidator(
        _matching(
            r"[a-z0-9][a-z0-9_-]*/[a-z0-9][a-z0-9_-]*",
            "a resource/role pair like orders-db/read",
        )
    ),
]


class OnBehalfRule(Strict):
    """``requesters`` may ask on behalf of ``beneficiaries`` (e.g. incident commanders for
    responders). The grant is the beneficiary's: they must be allowed to request it."""

    requesters: Requesters
    beneficiaries: Requesters


Bundle = Annotated[list[BundleItem], Field(min_length=1, max_length=20)]
