"""The one orchestrator: the only part that knows every other.

Slack listeners and the CLI call :class:`GrantService`; it consults the policy (pure), changes
state through the store (atomic, audited), asks providers for credentials, hands expiry to the
scheduler and tells the notifier. One module per job:

- ``facade.py``: :class:`GrantService`, which builds the parts below and delegates to them;
- ``context.py``: :class:`ServiceContext`, what every part shares (store, policy, notifier,
  directories, on-call, clock, providers), and the habits they keep;
- ``providers.py``: :class:`PolicyProviders`, the current policy's providers (the revoker's
  resolver, the reconciler's inventory);
- ``requests.py`` and ``extensions.py``: filing requests and extensions, applying extensions;
- ``asking.py``: requests on someone's behalf (``may_request_for``), what the form offers;
- ``bundles.py``: a bundle's items, each filed as its own request;
- ``explaining.py``: what the policy would do with a request, from the decision's own code;
- ``auto_approval.py``: the ``auto_approve`` verdict and approval;
- ``decisions.py``: approver checks; approve, deny, cancel;
- ``issuing.py``: activate, issue again (:class:`CredentialAgain`, also a bundle DM's), take
  back; :class:`RevocationReports`, what the revoker reports to;
- ``confirmation.py``: a credential leaves only once Redis confirmed its grant on a replica
  (``WAIT``); otherwise it is taken back and the grant ended (issue 12);
- ``ending.py``: revoke (from Slack, as an operator, all of a person's), force-close;
- ``sweeps.py``: time-outs, escalations, stuck approvals;
- ``queries.py``: reads for people and for the Slack side.

The protocols it talks through and their null objects are in bot/ports.py (re-exported here
for the importers that found them here); bot/wiring.py builds it.
"""

from bot.ports import (
    NO_USERGROUPS,
    NobodyOnCall,
    NoPeople,
    NoUsergroups,
    PeopleDirectory,
    UsergroupDirectory,
)
from bot.service.auto_approval import AUTO_APPROVE_UNAVAILABLE, AutoApproval
from bot.service.bundles import BundleResult
from bot.service.context import ServiceContext, usergroups_of
from bot.service.facade import GrantService
from bot.service.issuing import CredentialAgain, RevocationReports
from bot.service.providers import PolicyProviders
from bot.service.requests import RequestResult
from bot.service.sweeps import ESCALATED, STUCK_APPROVED_S

__all__ = [
    "AUTO_APPROVE_UNAVAILABLE",
    "ESCALATED",
    "NO_USERGROUPS",
    "STUCK_APPROVED_S",
    "AutoApproval",
    "BundleResult",
    "CredentialAgain",
    "GrantService",
    "NoPeople",
    "NoUsergroups",
    "NobodyOnCall",
    "PeopleDirectory",
    "PolicyProviders",
    "RequestResult",
    "RevocationReports",
    "ServiceContext",
    "UsergroupDirectory",
    "usergroups_of",
]
