"""The stand-in subject kind "test": its effect is only remembered, its check follows a flag."""

from __future__ import annotations

from apps.approvals.rules import Rules

recorded_effects: list[int] = []
check_flag = {"check_passes": True}


def record_effect(request) -> None:
    recorded_effects.append(request.pk)


def two_of_risk(**overrides) -> Rules:
    return Rules(**{"required_approvals": 2, "reviewer_teams": ("risk", "owners"), **overrides})
