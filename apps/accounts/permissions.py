"""Who may do what to teams and tokens; views, API and templates all ask these."""

import rules

from apps.accounts.models import Membership, Team, User


@rules.predicate
def is_team_maintainer(user: User, team: Team) -> bool:
    return Membership.objects.filter(team=team, user=user, role=Membership.Role.MAINTAINER).exists()


can_create_team = rules.is_staff
can_manage_team = rules.is_authenticated & (rules.is_staff | is_team_maintainer)
