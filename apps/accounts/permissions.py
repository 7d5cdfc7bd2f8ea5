"""Who may do what to teams and tokens; views, API and templates all ask these."""

import rules

from apps.accounts.models import Membership, Team, User


@rules.predicate
def is_team_maintainer(user: User, team: Team) -> bool:
    return Membership.objects.filter(team=team, user=user, role=Membership.Role.MAINTAINER).exists()


@rules.predicate
def is_on_call(user: User) -> bool:
    """A member of an on-call team (`Team.on_call`): works incidents and rolls back anywhere."""
    return Membership.objects.filter(user=user, team__on_call=True).exists()


can_create_team = rules.is_staff
can_manage_team = rules.is_authenticated & (rules.is_staff | is_team_maintainer)
