"""Who may see and change environments and deploys; views, API and templates all ask these."""

from __future__ import annotations

from typing import TYPE_CHECKING

import rules

from apps.accounts.models import Membership, User
from apps.accounts.permissions import is_on_call

if TYPE_CHECKING:
    from apps.catalog.models import RegisteredModel
    from apps.deployments.models import DeployRequest


@rules.predicate
def is_model_team_member(user: User, model: RegisteredModel | None) -> bool:
    """A member (any role) of the team that owns the model."""
    return (
        model is not None
        and model.owner_team_id is not None
        and Membership.objects.filter(team_id=model.owner_team_id, user=user).exists()
    )


@rules.predicate
def is_requester(user: User, deploy: DeployRequest | None) -> bool:
    return deploy is not None and deploy.requester_id == user.pk


@rules.predicate
def is_team_member_of_deploy(user: User, deploy: DeployRequest | None) -> bool:
    return deploy is not None and is_model_team_member(user, deploy.model)


# Environments name clusters and credentials: everyone signed in may look, staff change them.
can_view_environments = rules.is_authenticated
can_manage_environments = rules.is_authenticated & rules.is_staff

# A model's owning team deploys it; staff deploy anything.
can_request_deploy = rules.is_authenticated & (rules.is_staff | is_model_team_member)
# Abort a rollout or roll a release back: the team, the requester, staff (on-call work).
can_operate_deploy = rules.is_authenticated & (
    rules.is_staff | is_requester | is_team_member_of_deploy
)
# Roll a live release back to its last good one: the team, staff, and on-call (who may need to
# do it for any model at night).
can_roll_back_release = rules.is_authenticated & (
    rules.is_staff | is_model_team_member | is_on_call
)
# Withdraw a request that has not started: whoever asked, or staff (as the approvals engine).
can_cancel_deploy = rules.is_authenticated & (rules.is_staff | is_requester)
# Go round freezes, deny windows and promotion order, with a reason that is audited.
can_bypass_deploy_policy = rules.is_authenticated & rules.is_staff
