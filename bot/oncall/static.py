"""A static rotation from policies.yaml: pure arithmetic on the time passed in.

The rotation's epoch is ``start`` at ``handoff`` UTC (the schema has no time zone, so handoff
is always UTC). Shift ``k`` is the half-open interval ``[epoch + k*length, epoch +
(k+1)*length)`` and belongs to ``members[k % len(members)]``: the first shift goes to the
first member, and the rotation wraps around the list. At exactly a handoff instant the
incoming member is on call. Before the epoch nobody is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from bot.domain.policy.schema import StaticSchedule


@dataclass(frozen=True, slots=True)
class Shift:
    """One shift of a rotation: ``member`` is on call for ``start_s <= t < end_s``.

    ``number`` counts shifts from the rotation's epoch (the first shift is 0).
    """

    member: str
    number: int
    start_s: int
    end_s: int


def rotation_epoch_s(schedule: StaticSchedule) -> int:
    """The Unix second the first shift starts: ``start`` at ``handoff`` UTC."""
    return int(datetime.combine(schedule.start, schedule.handoff, tzinfo=UTC).timestamp())


def shift_at(schedule: StaticSchedule, now: float) -> Shift | None:
    """The shift covering ``now`` (Unix seconds), or None before the rotation starts."""
    epoch = rotation_epoch_s(schedule)
    length = schedule.length
    if length <= 0:  # the schema only admits positive durations; stay total anyway
        raise ValueError(f"a rotation's length must be positive, not {length}")
    if now < epoch:
        return None
    # float // is the exact floor of the quotient, so a handoff instant lands in the new shift.
    number = int((now - epoch) // length)
    start = epoch + number * length
    members = schedule.members
    return Shift(members[number % len(members)], number, start, start + length)


def on_call_at(schedule: StaticSchedule, now: float) -> str | None:
    """The member on call at ``now``, or None before the rotation starts."""
    shift = shift_at(schedule, now)
    return shift.member if shift is not None else None


class StaticSource:
    """An :class:`~bot.oncall.base.OnCallSource` for a static rotation; it cannot fail."""

    label = "static rotation"

    def __init__(self, schedule: StaticSchedule) -> None:
        self.schedule = schedule

    async def on_call(self, *, now: float) -> frozenset[str]:
        member = on_call_at(self.schedule, now)
        return frozenset() if member is None else frozenset({member})

    def __repr__(self) -> str:
        return f"StaticSource(members={self.schedule.members!r})"
