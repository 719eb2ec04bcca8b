"""The Slack workspace grantbot is installed in, and whether a delivery comes from it.

Slack signs every delivery of an app with the app's one signing secret, whichever workspace
the app was installed in; the signature therefore proves "Slack sent this", not "our
workspace sent this". A person in another workspace (another installation of the same app,
an Enterprise Grid organisation's other workspaces, a Slack Connect partner) must not be able
to ask for access or approve a request, however their user id happens to read.

Where the installed workspace comes from:

- ``SLACK_TEAM_ID`` (and, for Enterprise Grid, ``SLACK_ENTERPRISE_ID``): known at once, and
  authoritative. When ``auth.test`` later names another team or organisation the token
  belongs elsewhere: that is reported (readiness fails) and every delivery is refused. An
  organisation the settings leave out is taken from auth.test (until it answers, a Grid
  workspace's deliveries, which name their organisation, are refused).
- Otherwise ``auth.test`` at start (retried until it answers): its ``team_id`` and
  ``enterprise_id``. An org-wide installation (``is_enterprise_install``) is known by its
  organisation alone: any of its workspaces may act.
- Until one of them has answered, nothing is admitted (fail closed).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

from bot.slack.inbound import Claim

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WorkspaceIds:
    """A workspace (``team_id``) and its Enterprise Grid organisation (``enterprise_id``,
    None outside Grid). ``team_id`` is None only for an org-wide installation."""

    team_id: str | None
    enterprise_id: str | None = None

    def __str__(self) -> str:
        team = self.team_id or "any workspace"
        return f"{team} (organisation {self.enterprise_id})" if self.enterprise_id else team


class Verdict(StrEnum):
    ADMIT = "admit"
    FOREIGN = "foreign"  # from another workspace or organisation
    UNKNOWN = "unknown"  # the installed workspace is not known (yet, or is in conflict)


class InstalledWorkspace:
    """Which workspace is ours; :meth:`judge` tells a delivery's claim against it."""

    def __init__(self, *, team_id: str | None = None, enterprise_id: str | None = None) -> None:
        """``team_id`` / ``enterprise_id`` from the settings; with neither, the workspace is
        unknown until :meth:`learn` is given auth.test's answer."""
        self.configured: WorkspaceIds | None = (
            WorkspaceIds(team_id, enterprise_id) if team_id or enterprise_id else None
        )
        self.known: WorkspaceIds | None = self.configured
        #: Why nothing is admitted although a workspace was configured (auth.test disagreed).
        self.conflict: str | None = None

    def learn(
        self, *, team_id: str | None, enterprise_id: str | None, org_wide: bool = False
    ) -> str | None:
        """Take auth.test's answer. Returns None when it is consistent with the settings
        (or there are none, and it is adopted); otherwise why it is not, and from then on
        nothing is admitted until an answer agrees."""
        learned = WorkspaceIds(None if org_wide else (team_id or None), enterprise_id or None)
        if learned.team_id is None and learned.enterprise_id is None:
            return self._conflicting("auth.test named no team and no organisation")
        configured = self.configured
        if configured is None:
            self.known, self.conflict = learned, None
            return None
        team_differs = configured.team_id is not None and configured.team_id != team_id
        org_differs = (
            configured.enterprise_id is not None and configured.enterprise_id != enterprise_id
        )
        if team_differs or org_differs:
            return self._conflicting(
                f"the bot token belongs to {learned}, but the settings say {configured}"
            )
        # A setting that names only the team leaves the organisation to auth.test.
        self.known = WorkspaceIds(
            configured.team_id, configured.enterprise_id or learned.enterprise_id
        )
        self.conflict = None
        return None

    def _conflicting(self, why: str) -> str:
        self.known, self.conflict = None, why
        return why

    def judge(self, claim: Claim) -> Verdict:
        """ADMIT when every id in ``claim`` is ours; FOREIGN when one is not; UNKNOWN when we
        do not know which workspace is ours.

        A delivery must name its workspace (a team id) unless the installation is org-wide.
        The acting person's own workspace must be ours too, except inside our Enterprise
        Grid organisation, whose members may belong to its other workspaces.
        """
        ours = self.known
        if ours is None:
            return Verdict.UNKNOWN
        our_org = frozenset({ours.enterprise_id}) if ours.enterprise_id else frozenset[str]()
        if claim.enterprises - our_org:
            return Verdict.FOREIGN
        in_our_org = bool(our_org) and claim.enterprises == our_org
        if ours.team_id is None:  # org-wide: the organisation is what is checked
            return Verdict.ADMIT if in_our_org else Verdict.FOREIGN
        if claim.teams != {ours.team_id}:
            return Verdict.FOREIGN
        if claim.actor_teams - {ours.team_id} and not in_our_org:
            return Verdict.FOREIGN
        return Verdict.ADMIT
