"""Demo protection for `make run`: `champion` needs two approvals, one from risk review."""

from __future__ import annotations

from django.db import transaction

from apps.accounts.models import Team
from apps.approvals.models import AliasPolicy
from apps.audit.services import record


@transaction.atomic
def seed_alias_policies() -> list[AliasPolicy]:
    policy, created = AliasPolicy.objects.get_or_create(
        alias_pattern="champion",
        defaults={
            "description": "The version serving real traffic.",
            "required_approvals": 2,
            "include_owning_team": True,
            "required_tags": "validation_status=passed",
            "metric_rules": "auc higher 0.01",
            "wait_minutes": 0,
            "expires_after_hours": 72,
        },
    )
    if created:
        risk = Team.objects.filter(slug="risk-review").first()
        if risk is not None:
            policy.reviewer_teams.add(risk)
            policy.required_teams.add(risk)
        record("seed", "alias_policy.created", policy, alias_pattern=policy.alias_pattern)
    return [policy]
