"""Who may see and work an incident; views, API and templates all ask these.

An incident belongs to the teams owning the models it touches. Staff and members of an on-call
team (`Team.on_call`) see and work every incident; the person who opened it and whoever holds a
role in it keep access; an incident that touches no model yet is open to everyone signed in
(it is platform-wide until someone says which model is hurt).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import rules

from apps.accounts.models import Membership, User
from apps.accounts.permissions import is_on_call

if TYPE_CHECKING:
    from apps.incidents.models import Incident


@rules.predicate
def is_involved(user: User, incident: Incident | None) -> bool:
    """Opened it, holds a role in it, or is in a team owning one of its models."""
    if incident is None:
        return False
    people = (
        incident.created_by_id,
        incident.commander_id,
        incident.scribe_id,
        incident.communications_id,
    )
    if user.pk in people:
        return True
    owners = incident.registered_models.values("owner_team_id")
    if not owners.exists():
        return True
    return Membership.objects.filter(user=user, team_id__in=owners).exists()


can_open_incident = rules.is_authenticated
can_see_all_incidents = rules.is_authenticated & (rules.is_staff | is_on_call)
can_work_incident = rules.is_authenticated & (rules.is_staff | is_on_call | is_involved)
