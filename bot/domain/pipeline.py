"""What a machine client's request carries beyond a person's: its deployment and the public
key its credential is sealed to (bot.api). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.domain.model import Deployment


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineAsk:
    """A pipeline's additions to a request; stored on the grant with it, in one step."""

    public_key: str
    deployment: Deployment | None = None

    def grant_fields(self) -> dict[str, Any]:
        """The :class:`~bot.domain.model.Grant` fields this sets."""
        return {"public_key": self.public_key, "deployment": self.deployment}
