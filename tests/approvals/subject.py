"""The stand-in subject kind "test": its effect is only remembered, its check follows a flag."""

from __future__ import annotations

from apps.approvals.rules import Rules

EFFECTS: list[int] = []
FLAGS = {"check_passes": True}


def record_effect(request) -> None:
    EFFECTS.append(request.pk)


def two_of_risk(**overrides) -> Rules:
    return Rules(**{"required_approvals": 2, "reviewer_teams": ("risk", "owners"), **overrides})
